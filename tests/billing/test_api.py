"""Billing over the API: the seed walkthrough, refusals that change nothing, roles and scope."""

import datetime as dt
import json

import pytest
import time_machine

from clientbase.accounts.models import Role, User
from clientbase.billing import services
from clientbase.billing.models import Invoice, LedgerEntry, Payment, Service
from clientbase.billing.pdf import client_snapshot
from clientbase.clients.services import client_create

from .conftest import billing_counts, line, rub

API = "/api/v1"
SEED = dt.datetime(2019, 2, 1, 9, tzinfo=dt.UTC)
UPGRADE_DAY = dt.datetime(2019, 3, 4, 10, tzinfo=dt.UTC)
FORBIDDEN = {
    "type": "about:blank",
    "title": "Forbidden",
    "status": 403,
    "detail": "Your role does not allow this action.",
    "errors": [],
}
NOT_FOUND = {
    "type": "about:blank",
    "title": "Not found",
    "status": 404,
    "detail": "No such record, or not one you may see.",
    "errors": [],
}


def RUB(amount: str) -> dict:
    return {"amount": amount, "currency": "RUB"}


def _post(http, path: str, data=None, headers=None):
    return http.post(
        API + path, json.dumps(data or {}), content_type="application/json", headers=headers
    )


def _patch(http, path: str, data):
    return http.patch(API + path, json.dumps(data), content_type="application/json")


def http_user(http) -> User:
    """The user whose token a test client sends."""
    from clientbase.accounts.models import ApiToken
    from clientbase.accounts.services import token_digest

    secret = http.defaults["HTTP_AUTHORIZATION"].removeprefix("Bearer ")
    return ApiToken.objects.get(digest=token_digest(secret)).user


def _ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.content
    return response.json()


def _problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    return response.json()


def _refused(response, *errors: tuple[str, str], status: int = 422) -> dict:
    """A refusal with these field errors."""
    body = _problem(response, status)
    assert [(e["field"], e["message"]) for e in body["errors"]] == list(errors)
    return body


@pytest.fixture
def http(api_client, clerk):
    return api_client(clerk)


def _order_body(client, catalog, users: int = 5, **fields) -> dict:
    return {
        "client_id": client.pk,
        "items": [
            {"product_id": catalog.standard.pk, "cycle": "semi_annual", "options": {"users": users}}
        ],
        "promo_code": "REF5",
        "send_email": False,
        **fields,
    }


def _issued_order_invoice(http, client, catalog) -> dict:
    """Order 5 users on the seed day, accept and issue: the 3800.00 invoice."""
    with time_machine.travel(SEED, tick=False):
        order = _ok(_post(http, "/orders", _order_body(client, catalog)), 201)
        order = _ok(_post(http, f"/orders/{order['id']}/accept"))
        return _ok(_post(http, f"/invoices/{order['invoice_id']}/issue"))


# ----------------------------------------------------------------------------- walkthrough


def test_seed_walkthrough_through_the_api(http, clerk, rub_client, catalog, promos):
    client = rub_client
    period = ("2019-02-01", "2019-07-31")
    with time_machine.travel(SEED, tick=False):
        # given an order for 5 users with the 5 % recurring promo code
        order = _ok(_post(http, "/orders", _order_body(client, catalog)), 201)
        assert order == {
            "id": order["id"],
            "number": "ORD-00001",
            "client_id": client.pk,
            "status": "pending",
            "currency": "RUB",
            "payment_method": "bank_transfer",
            "promo_code": "REF5",
            "send_email": False,
            "note": "",
            "created_at": "2019-02-01T09:00:00Z",
            "decided_at": None,
            "cancel_reason": "",
            "invoice_id": None,
            "invoice_ids": [],
            "items": [
                {
                    "id": order["items"][0]["id"],
                    "product_id": catalog.standard.pk,
                    "cycle": "semi_annual",
                    "quantity": 1,
                    "options": {"users": 5},
                    "price_override": None,
                }
            ],
        }
        # when it is accepted
        accepted = _ok(_post(http, f"/orders/{order['id']}/accept"))
        assert (accepted["status"], accepted["decided_at"]) == ("accepted", "2019-02-01T09:00:00Z")
        assert accepted["invoice_ids"] == [accepted["invoice_id"]]
        # then the draft has the product at 0, 5 users at 800.00 and the promo line
        draft = _ok(http.get(f"{API}/invoices/{accepted['invoice_id']}"))
        assert (draft["status"], draft["number"], draft["snapshot"]) == ("draft", "", {})
        assert [
            (ln["description"], ln["quantity"], ln["unit_price"], ln["net"], ln["tax"])
            for ln in draft["lines"]
        ] == [
            (f'{catalog.standard.name} (01/02/2019 – 31/07/2019)', "1.000", "0.0000",
             RUB("0.00"), RUB("0.00")),
            ("Количество пользователей: 5 × 800.00 RUB", "5.000", "800.0000",
             RUB("4000.00"), RUB("0.00")),
            ("Promo code REF5: 5 %", "1.000", "-200.0000", RUB("-200.00"), RUB("0.00")),
        ]  # fmt: skip
        assert {(ln["period_start"], ln["period_end"]) for ln in draft["lines"]} == {period}
        assert (draft["subtotal"], draft["tax"], draft["total"], draft["balance"]) == (
            RUB("3800.00"), RUB("0.00"), RUB("3800.00"), RUB("0.00")
        )  # fmt: skip
        # when it is issued
        first = _ok(_post(http, f"/invoices/{draft['id']}/issue"))
        assert (first["status"], first["number"], first["balance"]) == (
            "unpaid", "1", RUB("3800.00")
        )  # fmt: skip
        assert first["issued_on"] == first["period_start"] == "2019-02-01"
        assert first["due_on"] == "2019-02-08"
        assert first["snapshot"] == client_snapshot(client)
    service = Service.objects.get(client=client)

    with time_machine.travel(UPGRADE_DAY, tick=False):
        # given a preview of 6 users on 4 March: 150 of 181 days left
        before = billing_counts()
        preview = _ok(_post(http, f"/services/{service.pk}/upgrade",
                            {"options": {"users": 6}, "preview": True}))  # fmt: skip
        assert {k: preview[k] for k in ("applied", "days_left", "cycle_days", "old_recurring",
                                        "new_recurring", "charge", "total", "invoice")} == {
            "applied": False,
            "days_left": 150,
            "cycle_days": 181,
            "old_recurring": RUB("4000.00"),
            "new_recurring": RUB("4800.00"),
            "charge": RUB("662.98"),
            "total": RUB("629.83"),
            "invoice": None,
        }  # fmt: skip
        assert preview["service"]["options"] == {"users": 5}
        assert billing_counts() == before
        # when it is confirmed
        done = _ok(_post(http, f"/services/{service.pk}/upgrade", {"options": {"users": 6}}))
    # then the service has 6 users and an issued invoice of 662.98 less the 5 %
    assert (done["applied"], done["charge"], done["total"]) == (True, RUB("662.98"), RUB("629.83"))
    assert (done["service"]["options"], done["service"]["recurring"]) == (
        {"users": 6}, RUB("4800.00")
    )  # fmt: skip
    second = done["invoice"]
    assert (second["status"], second["number"], second["total"], second["balance"]) == (
        "unpaid", "2", RUB("629.83"), RUB("629.83")
    )  # fmt: skip
    assert [(ln["net"], ln["period_start"], ln["period_end"]) for ln in second["lines"]] == [
        (RUB("662.98"), "2019-03-04", "2019-07-31"),
        (RUB("-33.15"), "2019-03-04", "2019-07-31"),
    ]

    # when 1000.00 is paid against the first invoice
    paid = _ok(_post(http, "/payments", {
        "client_id": client.pk, "amount": "1000.00", "currency": "RUB",
        "method": "bank_transfer", "reference": "п/п 17",
        "invoices": [{"invoice_id": first["id"], "amount": None}],
    }), 201)  # fmt: skip
    assert (paid["amount"], paid["to_credit"], paid["reference"]) == (
        RUB("1000.00"), RUB("0.00"), "п/п 17"
    )  # fmt: skip
    assert [(a["invoice_id"], a["invoice_number"], a["amount"]) for a in paid["allocations"]] == [
        (first["id"], "1", RUB("1000.00"))
    ]
    first = _ok(http.get(f"{API}/invoices/{first['id']}"))
    assert (first["status"], first["paid"], first["balance"]) == (
        "partially_paid", RUB("1000.00"), RUB("2800.00")
    )  # fmt: skip

    # when 20000.00 is paid over both
    big = _ok(_post(http, "/payments", {
        "client_id": client.pk, "amount": "20000.00", "currency": "RUB", "method": "bank_transfer",
        "invoices": [{"invoice_id": first["id"]}, {"invoice_id": second["id"]}],
    }), 201)  # fmt: skip
    assert [a["amount"] for a in big["allocations"]] == [RUB("2800.00"), RUB("629.83")]
    assert big["to_credit"] == RUB("16570.17")
    for invoice_id in (first["id"], second["id"]):
        got = _ok(http.get(f"{API}/invoices/{invoice_id}"))
        assert (got["status"], got["balance"]) == ("paid", RUB("0.00"))

    # when the upgrade invoice is refunded to credit
    refund = _ok(_post(http, "/refunds", {
        "invoice_id": second["id"], "amount": "629.83", "currency": "RUB",
        "destination": "credit", "reason": "Upgrade withdrawn",
    }), 201)  # fmt: skip
    assert (refund["number"], refund["amount"], refund["destination"], refund["method"]) == (
        "REF-00001", RUB("629.83"), "credit", ""
    )  # fmt: skip
    assert _ok(http.get(f"{API}/invoices/{second['id']}"))["status"] == "refunded"

    # then the client holds 17200.00 of credit and owes nothing
    account = _ok(http.get(f"{API}/clients/{client.pk}/balance"))
    assert account["balances"] == {
        "RUB": {"owed": RUB("0.00"), "credit": RUB("17200.00"), "balance": RUB("-17200.00")}
    }
    assert account["summary"] == {
        "currency": "RUB",
        "paid": {"count": 1, "amount": RUB("3800.00")},
        "unpaid": {"count": 0, "amount": RUB("0.00")},
        "cancelled": {"count": 0, "amount": RUB("0.00")},
        "refunded": {"count": 1, "amount": RUB("629.83")},
        "income": RUB("21000.00"),
        "credit": RUB("17200.00"),
        "owed": RUB("0.00"),
    }
    # and the ledger lists every movement with the running balance
    ledger = _ok(http.get(f"{API}/clients/{client.pk}/ledger"))
    assert ledger["count"] == LedgerEntry.objects.count() == 9
    assert [
        (e["seq"], e["kind"], e["account"], e["amount"]["amount"], e["invoice_number"],
         e["reference"], e["running_balance"]["amount"])
        for e in ledger["items"]
    ] == [
        (1, "invoice", "receivable", "3800.00", "1", "1", "3800.00"),
        (2, "invoice", "receivable", "629.83", "2", "2", "4429.83"),
        (3, "payment", "receivable", "-1000.00", "1", "PAY-000001", "3429.83"),
        (4, "payment", "receivable", "-2800.00", "1", "PAY-000002", "629.83"),
        (5, "payment", "receivable", "-629.83", "2", "PAY-000002", "0.00"),
        (6, "overpayment", "credit", "-16570.17", None, "PAY-000002", "-16570.17"),
        (7, "refund", "receivable", "629.83", "2", "REF-00001", "-15940.34"),
        (8, "refund_release", "receivable", "-629.83", "2", "REF-00001", "-16570.17"),
        (9, "refund", "credit", "-629.83", None, "REF-00001", "-17200.00"),
    ]  # fmt: skip


def test_the_ledger_pages_keep_the_running_balance(http, rub_client, catalog, promos):
    # given the invoice of 3800.00 and two payments of 100.00
    invoice = _issued_order_invoice(http, rub_client, catalog)
    for _ in range(2):
        _ok(_post(http, "/payments", {
            "client_id": rub_client.pk, "amount": "100.00", "currency": "RUB",
            "method": "cash", "invoices": [{"invoice_id": invoice["id"]}],
        }), 201)  # fmt: skip
    # when the second page of one entry is read
    page = _ok(http.get(f"{API}/clients/{rub_client.pk}/ledger?limit=1&offset=2"))
    # then its running balance counts the entries before it
    assert page["count"] == 3
    assert [
        (e["seq"], e["amount"], e["running_balance"], e["reference"]) for e in page["items"]
    ] == [(3, RUB("-100.00"), RUB("3600.00"), "PAY-000002")]


# ----------------------------------------------------------------------------- refusals


@pytest.fixture
def first_invoice(http, rub_client, catalog, promos) -> dict:
    """The seed's issued invoice of 3800.00."""
    return _issued_order_invoice(http, rub_client, catalog)


def _payment(client, amount: str, currency: str = "RUB", invoices=(), **fields) -> dict:
    return {
        "client_id": client.pk,
        "amount": amount,
        "currency": currency,
        "method": "bank_transfer",
        "invoices": [{"invoice_id": i} for i in invoices],
        **fields,
    }


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("0", "The amount must be above zero."),
        ("-5.00", "The amount must be above zero."),
        ("12,50", "Write the amount as a number such as 120.50."),
        ("1e30", "The amount is too large."),
    ],
)
def test_a_payment_of_nothing_or_less_is_refused(http, rub_client, first_invoice, amount, message):
    before = billing_counts()
    response = _post(
        http, "/payments", _payment(rub_client, amount, invoices=[first_invoice["id"]])
    )
    _refused(response, ("amount", message))
    assert billing_counts() == before
    assert Invoice.objects.get(pk=first_invoice["id"]).balance_minor == 380000


def test_a_payment_in_an_unknown_currency_is_refused(http, rub_client, first_invoice):
    before = billing_counts()
    response = _post(http, "/payments", _payment(rub_client, "10.00", "ABC"))
    _refused(response, ("currency", "Unknown currency ABC."))
    assert billing_counts() == before


def test_a_payment_in_the_no_currency_code_xxx_is_refused(http, rub_client, first_invoice):
    before = billing_counts()
    response = _post(http, "/payments", _payment(rub_client, "10.00", "XXX"))
    _refused(response, ("currency", "Unknown currency XXX."))
    assert billing_counts() == before


def test_a_payment_in_another_currency_than_the_invoice_is_refused(http, rub_client, first_invoice):
    before = billing_counts()
    response = _post(http, "/payments", _payment(rub_client, "50.00", "EUR", [first_invoice["id"]]))
    _refused(response, ("currency", "The client is billed in RUB; the payment is in EUR."))
    assert billing_counts() == before


def test_allocations_beyond_the_payment_are_refused(http, rub_client, first_invoice):
    before = billing_counts()
    body = _payment(rub_client, "50.00")
    body["invoices"] = [{"invoice_id": first_invoice["id"], "amount": "50.01"}]
    response = _post(http, "/payments", body)
    _refused(response, ("invoices", "The allocations add up to more than the payment."))
    assert billing_counts() == before


def test_a_refund_larger_than_what_was_paid_is_refused(http, rub_client, first_invoice):
    # given 1000.00 paid on the invoice
    _ok(
        _post(http, "/payments", _payment(rub_client, "1000.00", invoices=[first_invoice["id"]])),
        201,
    )
    before = billing_counts()
    # when 1000.01 is refunded
    response = _post(http, "/refunds", {
        "invoice_id": first_invoice["id"], "amount": "1000.01", "currency": "RUB",
        "destination": "out", "method": "bank_transfer", "reason": "Overcharged",
    })  # fmt: skip
    # then it is refused and the invoice is as it was
    _refused(
        response, ("amount", "Only 1000.00 RUB was paid on this invoice and not yet refunded.")
    )
    assert billing_counts() == before
    invoice = Invoice.objects.get(pk=first_invoice["id"])
    assert (invoice.status, invoice.paid_minor, invoice.refunded_minor, invoice.balance_minor) == (
        "partially_paid", 100000, 0, 280000
    )  # fmt: skip


def test_an_issued_invoice_cannot_be_patched(http, first_invoice):
    before = billing_counts()
    stored = Invoice.objects.get(pk=first_invoice["id"])
    response = _patch(http, f"/invoices/{first_invoice['id']}", {
        "due_on": "2019-03-01", "notes": "changed", "lines": [
            {"description": "Other", "unit_price": "1.00"}
        ]
    })  # fmt: skip
    body = _problem(response, 409)
    assert (body["title"], body["detail"]) == (
        "Conflict",
        "Invoice 1 is issued: it changes only by payments, credit notes and adjustments.",
    )
    assert billing_counts() == before
    again = Invoice.objects.get(pk=first_invoice["id"])
    assert (again.due_on, again.notes, again.version, again.lines.count()) == (
        stored.due_on, stored.notes, stored.version, 3
    )  # fmt: skip


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("OLD10", "Promo code OLD10 expired on 2019-01-31."),
        ("ONCE", "Promo code ONCE has been used up (1 of 1)."),
        ("SOON10", "Promo code SOON10 is valid from 2019-02-02."),
        ("NOPE", "There is no promo code NOPE."),
    ],
)
def test_an_order_with_a_promo_code_that_cannot_be_used_is_refused(
    http, rub_client, catalog, promos, code, message
):
    before = billing_counts()
    with time_machine.travel(SEED, tick=False):
        response = _post(http, "/orders", _order_body(rub_client, catalog, promo_code=code))
    _refused(response, ("promo_code", message))
    assert billing_counts() == before


def test_the_last_use_of_a_promo_code_goes_to_the_first_order_accepted(
    http, make_client, catalog, promos
):
    # given two pending orders with a code that has one use left
    with time_machine.travel(SEED, tick=False):
        a, b = (
            _ok(_post(http, "/orders", _order_body(make_client(f"C{i}"), catalog,
                                                   promo_code="LAST")), 201)
            for i in range(2)
        )  # fmt: skip
        _ok(_post(http, f"/orders/{a['id']}/accept"))
        before = billing_counts()
        # when the second is accepted
        response = _post(http, f"/orders/{b['id']}/accept")
    # then it is a conflict at the promo code and the order is still pending
    assert _problem(response, 409)["detail"] == "Promo code LAST has been used up."
    assert billing_counts() == before
    assert _ok(http.get(f"{API}/orders/{b['id']}"))["status"] == "pending"


def test_an_order_naming_an_unknown_product_or_option_is_refused(http, rub_client, catalog):
    before = billing_counts()
    body = _order_body(rub_client, catalog, promo_code="")
    body["items"][0]["product_id"] = 999_999
    _refused(_post(http, "/orders", body), ("items.0.product_id", "No such product."))
    body = _order_body(rub_client, catalog, promo_code="")
    body["items"][0]["options"] = {"disks": 2}
    _refused(
        _post(http, "/orders", body),
        ("options", f"{catalog.standard.name} has no option disks."),
    )
    body = _order_body(rub_client, catalog, users=51, promo_code="")
    _refused(
        _post(http, "/orders", body),
        ("options", "Количество пользователей must be between 1 and 50."),
    )
    assert billing_counts() == before


# ----------------------------------------------------------------------------- roles and scope


def test_writes_need_the_role_s_billing_action(http, make_user, api_client, rub_client,
                                               first_invoice, catalog):  # fmt: skip
    reader = api_client(make_user("reader", role="read-only", unit="company"))
    before = billing_counts()
    invoice = first_invoice["id"]
    for path, data in [
        ("/orders", _order_body(rub_client, catalog)),
        ("/invoices", {"client_id": rub_client.pk}),
        (f"/invoices/{invoice}/cancel", {"reason": "x"}),
        ("/payments", _payment(rub_client, "10.00")),
        ("/refunds", {"invoice_id": invoice, "amount": "1.00", "currency": "RUB",
                      "destination": "credit", "reason": "x"}),
        ("/credit-notes", {"invoice_id": invoice, "amount": "1.00", "currency": "RUB",
                           "reason": "x"}),
    ]:  # fmt: skip
        assert _problem(_post(reader, path, data), 403) == FORBIDDEN, path
    # the reader still reads
    assert _ok(reader.get(f"{API}/invoices/{invoice}"))["number"] == "1"
    assert billing_counts() == before


def test_a_seller_may_sell_but_not_take_money(make_user, api_client, http, rub_client,
                                              first_invoice):  # fmt: skip
    seller = api_client(make_user("sam", role="sales", unit="team_a"))
    clerk_client = rub_client
    # a seller sees only own clients: the clerk's invoice is absent, not forbidden
    before = billing_counts()
    invoice = first_invoice["id"]
    assert _problem(seller.get(f"{API}/invoices/{invoice}"), 404) == NOT_FOUND
    assert _problem(_post(seller, f"/invoices/{invoice}/issue"), 404) == NOT_FOUND
    assert _problem(_post(seller, f"/invoices/{invoice}/cancel", {"reason": "x"}), 404) == NOT_FOUND
    assert _problem(seller.get(f"{API}/clients/{clerk_client.pk}/balance"), 404) == NOT_FOUND
    assert _problem(seller.get(f"{API}/clients/{clerk_client.pk}/ledger"), 404) == NOT_FOUND
    service = Service.objects.get()
    assert _problem(seller.get(f"{API}/services/{service.pk}"), 404) == NOT_FOUND
    assert _ok(seller.get(f"{API}/invoices"))["count"] == 0
    assert _ok(seller.get(f"{API}/payments"))["count"] == 0
    # and may not pay for a client it cannot see
    assert _problem(_post(seller, "/payments", _payment(clerk_client, "1.00")), 403) == FORBIDDEN
    assert billing_counts() == before


def test_a_cashier_names_only_clients_and_invoices_in_sight(
    make_user, api_client, rub_client, first_invoice
):
    # given a cashier who may take payments but sees only own clients
    Role.objects.create(name="Cashier", slug="cashier", scope="own",
                        permissions=["billing.payment", "billing.refund"])  # fmt: skip
    http = api_client(make_user("tess", role="cashier", unit="team_b"))
    before = billing_counts()
    # when a payment names the clerk's client, or the clerk's invoice
    response = _post(http, "/payments", _payment(rub_client, "1.00"))
    _refused(response, ("client_id", "No client you may see has this id."))
    mine = client_create(by=http_user(http), name="Own", email="own@example.com", currency="RUB")
    response = _post(http, "/payments", _payment(mine, "1.00", invoices=[first_invoice["id"]]))
    _refused(response, ("invoices.0.invoice_id", "No invoice you may see has this id."))
    refund = {"invoice_id": first_invoice["id"], "amount": "1.00", "currency": "RUB",
              "destination": "credit", "reason": "x"}  # fmt: skip
    _refused(_post(http, "/refunds", refund), ("invoice_id", "No invoice you may see has this id."))
    # then nothing was recorded
    assert billing_counts() == before


# ----------------------------------------------------------------------------- idempotency


def test_a_payment_retried_with_the_same_key_is_recorded_once(http, rub_client, first_invoice):
    body = _payment(rub_client, "1000.00", invoices=[first_invoice["id"]])
    first = _post(http, "/payments", body, headers={"Idempotency-Key": "pay-17"})
    again = _post(http, "/payments", body, headers={"Idempotency-Key": "pay-17"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert Payment.objects.count() == 1
    assert Invoice.objects.get(pk=first_invoice["id"]).balance_minor == 280000
    # a new key is a new payment
    _ok(_post(http, "/payments", body, headers={"Idempotency-Key": "pay-18"}), 201)
    assert Payment.objects.count() == 2


# ----------------------------------------------------------------------------- invoices


def _line(description: str, price: str, quantity: str = "1", **fields) -> dict:
    return {"description": description, "unit_price": price, "quantity": quantity, **fields}


def test_a_draft_is_created_changed_and_issued(http, rub_client, vat_ru):
    # given a draft with two lines, the client's 20 % VAT applying
    with time_machine.travel(SEED, tick=False):
        draft = _ok(_post(http, "/invoices", {
            "client_id": rub_client.pk, "notes": "Thank you",
            "lines": [_line("Consulting", "1500.00", "2"),
                      _line("Travel", "99.99", taxable=False)],
        }), 201)  # fmt: skip
    assert (draft["status"], draft["issued_on"], draft["due_on"], draft["notes"]) == (
        "draft", "2019-02-01", "2019-02-08", "Thank you"
    )  # fmt: skip
    assert [(ln["net"], ln["tax"], ln["tax_rate"]) for ln in draft["lines"]] == [
        (RUB("3000.00"), RUB("600.00"), "20.000"),
        (RUB("99.99"), RUB("0.00"), "0.000"),
    ]
    assert (draft["subtotal"], draft["tax"], draft["total"]) == (
        RUB("3099.99"), RUB("600.00"), RUB("3699.99")
    )  # fmt: skip
    # when its dates change and its lines are replaced
    changed = _ok(_patch(http, f"/invoices/{draft['id']}", {
        "due_on": "2019-02-20", "lines": [_line("Audit", "100.00", discount_percent="10")],
    }))  # fmt: skip
    # then only what was sent changed
    assert (changed["issued_on"], changed["due_on"], changed["notes"]) == (
        "2019-02-01", "2019-02-20", "Thank you"
    )  # fmt: skip
    assert [(ln["description"], ln["net"], ln["tax"]) for ln in changed["lines"]] == [
        ("Audit", RUB("90.00"), RUB("18.00"))
    ]
    assert changed["total"] == RUB("108.00")
    # a bad line changes nothing at all
    response = _patch(http, f"/invoices/{draft['id']}", {
        "notes": "Other", "lines": [_line("", "1.00")]
    })  # fmt: skip
    assert _problem(response, 422)["errors"][0]["field"] == "lines.0.description"
    assert _ok(http.get(f"{API}/invoices/{draft['id']}")) == changed
    # a due date before the invoice date is refused
    _refused(
        _patch(http, f"/invoices/{draft['id']}", {"due_on": "2019-01-01"}),
        ("due_on", "The due date cannot be before the invoice date."),
    )
    # when it is issued
    with time_machine.travel(SEED, tick=False):
        issued = _ok(_post(http, f"/invoices/{draft['id']}/issue"))
    assert (issued["number"], issued["status"], issued["balance"]) == (
        "1", "unpaid", RUB("108.00")
    )  # fmt: skip
    # and issuing again is a conflict
    assert _problem(_post(http, f"/invoices/{draft['id']}/issue"), 409)["detail"] == (
        "Invoice 1 is issued: it changes only by payments, credit notes and adjustments."
    )


def test_an_empty_draft_cannot_be_issued(http, rub_client):
    draft = _ok(_post(http, "/invoices", {"client_id": rub_client.pk}), 201)
    before = billing_counts()
    _refused(_post(http, f"/invoices/{draft['id']}/issue"),
             ("lines", "Add at least one line before issuing."))  # fmt: skip
    assert billing_counts() == before


def test_an_invoice_is_cancelled_with_a_reason(http, rub_client, first_invoice):
    path = f"/invoices/{first_invoice['id']}/cancel"
    _refused(_post(http, path, {"reason": " "}), ("reason", "Give a reason for the cancellation."))
    cancelled = _ok(_post(http, path, {"reason": "Ordered by mistake"}))
    assert (cancelled["status"], cancelled["balance"]) == ("cancelled", RUB("0.00"))
    account = _ok(http.get(f"{API}/clients/{rub_client.pk}/balance"))
    assert account["balances"]["RUB"]["owed"] == RUB("0.00")
    assert _problem(_post(http, path, {"reason": "again"}), 409)["detail"] == (
        "The invoice is already closed."
    )


def test_an_invoice_is_sent_and_read_as_pdf(
    http, rub_client, first_invoice, mailoutbox, django_capture_on_commit_callbacks
):
    # a draft cannot be sent
    draft = _ok(_post(http, "/invoices", {"client_id": rub_client.pk}), 201)
    assert _problem(_post(http, f"/invoices/{draft['id']}/send"), 409)["detail"] == (
        "Issue the invoice before sending it."
    )
    with django_capture_on_commit_callbacks(execute=True):
        sent = _ok(_post(http, f"/invoices/{first_invoice['id']}/send", {"to": "cfo@example.com"}))
    assert sent["sent_at"] is not None
    assert [(m.to, m.subject, m.attachments[0][0]) for m in mailoutbox] == [
        (["cfo@example.com"], "Invoice 1", "1.pdf")
    ]
    pdf = http.get(f"{API}/invoices/{first_invoice['id']}/pdf")
    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf["Content-Disposition"] == 'inline; filename="1.pdf"'
    assert pdf.content.startswith(b"%PDF")


def test_the_bills_search(http, rub_client, issue, clerk):
    # given invoices 1–3 issued on three days and one draft
    with time_machine.travel(SEED, tick=False):
        made = [
            issue(rub_client, ("A", "100.00"), issued_on=dt.date(2019, 2, day),
                  due_on=dt.date(2019, 3, 1))
            for day in (1, 10, 20)
        ]  # fmt: skip
        services.invoice_create(by=clerk, client=rub_client, lines=[line("Draft", "5.00")])
    services.payment_record(by=clerk, client=rub_client, amount=rub("100.00"),
                            method="cash", invoices=[(made[1], None)])  # fmt: skip

    def numbers(query: str) -> list[str]:
        return [i["number"] for i in _ok(http.get(f"{API}/invoices?{query}"))["items"]]

    assert numbers("") == ["3", "2", "1", ""]
    assert numbers("sort=number&status=unpaid") == ["1", "3"]
    assert numbers("number=*2") == ["2"]
    assert numbers("date_from=2019-02-05&date_to=2019-02-15") == ["2"]
    assert numbers("zero_balance=true&status=paid") == ["2"]
    assert numbers("last=2&sort=number") == ["2", "3"]
    assert numbers(f"client_id={rub_client.pk}&sort=-amount&status=unpaid") == ["3", "1"]
    assert _problem(http.get(f"{API}/invoices?sort=colour"), 422)["errors"][0]["field"] == "sort"


def test_drafts_sort_after_numbered_invoices_on_every_database(http, rub_client, issue, clerk):
    with time_machine.travel(SEED, tick=False):
        issue(rub_client, ("A", "100.00"))
        services.invoice_create(by=clerk, client=rub_client, lines=[line("Draft", "5.00")])
    numbers = [i["number"] for i in _ok(http.get(f"{API}/invoices"))["items"]]
    assert numbers == ["1", ""]


def test_lists_take_a_fixed_number_of_queries(
    http, rub_client, first_invoice, django_assert_max_num_queries
):
    _ok(
        _post(http, "/payments", _payment(rub_client, "100.00", invoices=[first_invoice["id"]])),
        201,
    )
    for path in ("/invoices", "/orders", "/services", "/payments", "/refunds",
                 "/credit-notes", f"/clients/{rub_client.pk}/ledger"):  # fmt: skip
        # token, user, count, page, prefetches: never one per row
        with django_assert_max_num_queries(9):
            assert http.get(API + path).status_code == 200


# ----------------------------------------------------------------------------- money movements


def test_credit_notes_and_payouts_of_credit(http, rub_client, first_invoice):
    invoice = first_invoice["id"]
    # given a credit note of 500.00 on the unpaid invoice
    note = _ok(_post(http, "/credit-notes", {
        "invoice_id": invoice, "amount": "500.00", "currency": "RUB", "reason": "Late start",
    }), 201)  # fmt: skip
    assert (note["number"], note["kind"], note["amount"]) == (
        "CN-00001", "credit_note", RUB("500.00")
    )  # fmt: skip
    assert _ok(http.get(f"{API}/invoices/{invoice}"))["balance"] == RUB("3300.00")
    # and an overpayment of 700.00
    _ok(_post(http, "/payments", _payment(rub_client, "4000.00", invoices=[invoice])), 201)
    # a write-off beyond what is owed is refused
    before = billing_counts()
    _refused(_post(http, "/credit-notes", {
        "invoice_id": invoice, "amount": "1.00", "currency": "RUB", "reason": "x",
        "kind": "write_off",
    }), ("amount", "At most 0.00 RUB can be credited on this invoice."))  # fmt: skip
    # paying out more credit than is held is refused
    _refused(_post(http, "/refunds", {
        "client_id": rub_client.pk, "amount": "700.01", "currency": "RUB",
        "destination": "out", "method": "bank_transfer", "reason": "Closing",
    }), ("amount", "The client has only 700.00 RUB of credit."))  # fmt: skip
    _refused(_post(http, "/refunds", {
        "amount": "1.00", "currency": "RUB", "destination": "out", "reason": "Closing",
    }), ("invoice_id", "Choose an invoice or a client."))  # fmt: skip
    assert billing_counts() == before
    # when the credit is paid out
    out = _ok(_post(http, "/refunds", {
        "client_id": rub_client.pk, "amount": "700.00", "currency": "RUB",
        "destination": "out", "method": "bank_transfer", "reason": "Closing",
    }), 201)  # fmt: skip
    assert (out["invoice_id"], out["destination"], out["method"]) == (None, "out", "bank_transfer")
    # then the client holds no credit
    balances = _ok(http.get(f"{API}/clients/{rub_client.pk}/balance"))["balances"]
    assert balances["RUB"]["credit"] == RUB("0.00")
    assert [n["number"] for n in _ok(http.get(f"{API}/credit-notes"))["items"]] == ["CN-00001"]
    refunds = _ok(http.get(f"{API}/refunds?client_id={rub_client.pk}"))["items"]
    assert [(r["number"], r["amount"]) for r in refunds] == [("REF-00001", RUB("700.00"))]


# ----------------------------------------------------------------------------- orders, services


def test_an_order_is_cancelled_or_marked_fraud(http, make_client, catalog):
    with time_machine.travel(SEED, tick=False):
        a, b = (
            _ok(_post(http, "/orders", _order_body(make_client(f"C{i}"), catalog,
                                                   promo_code="")), 201)
            for i in range(2)
        )  # fmt: skip
        before = billing_counts()
        _refused(_post(http, f"/orders/{a['id']}/cancel", {}),
                 ("reason", "Give a reason for the cancellation."))  # fmt: skip
        cancelled = _ok(_post(http, f"/orders/{a['id']}/cancel", {"reason": "Changed mind"}))
        fraud = _ok(_post(http, f"/orders/{b['id']}/cancel", {"reason": "Card", "fraud": True}))
    assert (cancelled["status"], cancelled["cancel_reason"]) == ("cancelled", "Changed mind")
    assert fraud["status"] == "fraud"
    assert billing_counts() == before
    assert _problem(_post(http, f"/orders/{a['id']}/accept"), 409)["detail"] == (
        "The order is Cancelled."
    )
    assert [o["number"] for o in _ok(http.get(f"{API}/orders?status=fraud"))["items"]] == [
        b["number"]
    ]


def test_an_order_with_an_agreed_price(http, rub_client, catalog):
    body = _order_body(rub_client, catalog, promo_code="")
    body["items"][0]["price_override"] = "3500.00"
    with time_machine.travel(SEED, tick=False):
        order = _ok(_post(http, "/orders", body), 201)
        assert order["items"][0]["price_override"] == RUB("3500.00")
        order = _ok(_post(http, f"/orders/{order['id']}/accept"))
    draft = _ok(http.get(f"{API}/invoices/{order['invoice_id']}"))
    assert draft["total"] == RUB("3500.00")
    service = _ok(http.get(f"{API}/services?client_id={rub_client.pk}"))["items"][0]
    assert (service["recurring"], service["price_overridden"]) == (RUB("3500.00"), True)
    body["items"][0]["price_override"] = "-1"
    _refused(_post(http, "/orders", {**body, "client_id": rub_client.pk}),
             ("price_override", "A price cannot be negative."))  # fmt: skip


def test_a_service_goes_through_its_life(http, make_client, rub_client, first_invoice):
    service = Service.objects.get()
    path = f"/services/{service.pk}"
    # suspend needs a reason
    _refused(_post(http, f"{path}/suspend", {"reason": ""}), ("reason", "Give a reason."))
    suspended = _ok(_post(http, f"{path}/suspend", {"reason": "Unpaid"}))
    assert (suspended["status"], suspended["status_reason"]) == ("suspended", "Unpaid")
    assert _ok(_post(http, f"{path}/unsuspend", {"reason": "Paid"}))["status"] == "active"
    # dates and the exemption
    patched = _ok(_patch(http, path, {"next_due_on": "2019-09-01",
                                      "suspend_exempt_until": "2019-03-15"}))  # fmt: skip
    assert (patched["next_due_on"], patched["suspend_exempt_until"], patched["period_start"]) == (
        "2019-09-01", "2019-03-15", "2019-02-01"
    )  # fmt: skip
    _refused(_patch(http, path, {"next_due_on": "2019-01-01"}),
             ("next_due_on", "The next due date must come after the period start."))  # fmt: skip
    # cancellation at the end of the period, and withdrawn
    _refused(_patch(http, path, {"cancel_at_period_end": True}), ("reason", "Give a reason."))
    asked = _ok(_patch(http, path, {"cancel_at_period_end": True, "reason": "Moving"}))
    assert (asked["cancel_at_period_end"], asked["status_reason"]) == (True, "Moving")
    assert _ok(_patch(http, path, {"cancel_at_period_end": False}))["cancel_at_period_end"] is False
    # transfer to another client in RUB, not to one in EUR
    euro = make_client("Euro SARL", currency="EUR", country="FR")
    _refused(_post(http, f"{path}/transfer", {"client_id": euro.pk, "reason": "Sold"}),
             ("client_id", "Euro SARL is billed in EUR, the service in RUB."))  # fmt: skip
    other = make_client("Other")
    moved = _ok(_post(http, f"{path}/transfer", {"client_id": other.pk, "reason": "Sold"}))
    assert moved["client_id"] == other.pk
    assert Invoice.objects.get(pk=first_invoice["id"]).client_id == rub_client.pk
    # terminated is the end
    assert _ok(_post(http, f"{path}/terminate", {"reason": "Gone"}))["status"] == "terminated"
    assert _problem(_post(http, f"{path}/cancel", {"reason": "x"}), 409)["detail"] == (
        "The service is Terminated: cancelling is not possible."
    )
    assert [s["id"] for s in _ok(http.get(f"{API}/services?status=terminated"))["items"]] == [
        service.pk
    ]


def test_a_downgrade_goes_to_credit(http, rub_client, first_invoice):
    service = Service.objects.get()
    with time_machine.travel(UPGRADE_DAY, tick=False):
        done = _ok(_post(http, f"/services/{service.pk}/upgrade", {"options": {"users": 4}}))
    # 800.00 × 150 / 181 less, no invoice
    assert (done["charge"], done["invoice"], done["service"]["recurring"]) == (
        RUB("-662.98"), None, RUB("3200.00")
    )  # fmt: skip
    # and the days given up come back as credit as they were paid: less the 5 % promo
    balances = _ok(http.get(f"{API}/clients/{rub_client.pk}/balance"))["balances"]
    assert balances["RUB"] == {
        "owed": RUB("3800.00"), "credit": RUB("629.83"), "balance": RUB("3170.17")
    }  # fmt: skip
    # nothing to change is refused
    _refused(_post(http, f"/services/{service.pk}/upgrade", {"options": {"users": 4}}),
             ("options", "Nothing would change."))  # fmt: skip


# ----------------------------------------------------------------------------- credit


def test_credit_is_topped_up_by_invoice_and_applied(http, rub_client, first_invoice, vat_ru):
    path = f"/clients/{rub_client.pk}/credit-top-ups"
    before = billing_counts()
    _refused(_post(http, path, {"amount": "0", "currency": "RUB"}),
             ("amount", "The amount must be above zero."))  # fmt: skip
    _refused(_post(http, path, {"amount": "10.00", "currency": "EUR"}),
             ("currency", "The client is billed in RUB; the top-up is in EUR."))  # fmt: skip
    _refused(_post(http, path, {"amount": "10.00", "currency": "RUB", "due_days": 400}),
             ("due_days", "Input should be less than or equal to 365"))  # fmt: skip
    assert billing_counts() == before
    # given a top-up of 1000.00 due in 14 days
    top_up = _ok(_post(http, path, {"amount": "1000.00", "currency": "RUB", "due_days": 14}), 201)
    assert (top_up["number"], top_up["status"], top_up["credit_top_up"], top_up["total"]) == (
        "2", "unpaid", True, RUB("1000.00")
    )  # fmt: skip
    assert top_up["tax"] == RUB("0.00")
    assert [line["description"] for line in top_up["lines"]] == ["Credit top-up"]
    # it cannot be paid from credit
    assert _problem(_post(http, f"/invoices/{top_up['id']}/apply-credit"), 409)["detail"] == (
        "A credit top-up is paid with money, not with credit."
    )
    # when it is paid, the money is credit
    _ok(_post(http, "/payments", _payment(rub_client, "1000.00", invoices=[top_up["id"]])), 201)
    balances = _ok(http.get(f"{API}/clients/{rub_client.pk}/balance"))["balances"]
    assert balances["RUB"] == {
        "owed": RUB("3800.00"), "credit": RUB("1000.00"), "balance": RUB("2800.00")
    }  # fmt: skip
    # applying more credit than the client holds is refused
    invoice = first_invoice["id"]
    _refused(_post(http, f"/invoices/{invoice}/apply-credit", {"amount": "1000.01"}),
             ("amount", "The client has only 1000.00 RUB of credit."))  # fmt: skip
    # then 400.00 of it, and the rest, go on the order's invoice
    paid = _ok(_post(http, f"/invoices/{invoice}/apply-credit", {"amount": "400.00"}))
    assert (paid["status"], paid["balance"]) == ("partially_paid", RUB("3400.00"))
    paid = _ok(_post(http, f"/invoices/{invoice}/apply-credit", {"amount": None}))
    assert (paid["status"], paid["paid"], paid["balance"]) == (
        "partially_paid", RUB("1000.00"), RUB("2800.00")
    )  # fmt: skip
    balances = _ok(http.get(f"{API}/clients/{rub_client.pk}/balance"))["balances"]
    assert balances["RUB"]["credit"] == RUB("0.00")


def test_credit_top_ups_need_the_invoice_action_and_the_client_in_sight(
    make_user, api_client, rub_client
):
    body = {"amount": "10.00", "currency": "RUB"}
    reader = api_client(make_user("reader", role="read-only", unit="company"))
    path = f"/clients/{rub_client.pk}/credit-top-ups"
    assert _problem(_post(reader, path, body), 403) == FORBIDDEN
    seller = api_client(make_user("sam", role="sales", unit="team_a"))
    assert _problem(_post(seller, path, body), 404) == NOT_FOUND
    assert Invoice.objects.count() == 0


def test_an_order_of_a_client_who_wants_separate_invoices_lists_each_draft(http, make_client,
                                                                         catalog):  # fmt: skip
    client = make_client(separate_invoices=True)
    body = _order_body(client, catalog, promo_code="")
    body["items"].append({"product_id": catalog.disk.pk, "cycle": "monthly"})
    with time_machine.travel(SEED, tick=False):
        order = _ok(_post(http, "/orders", body), 201)
        accepted = _ok(_post(http, f"/orders/{order['id']}/accept"))
    first, second = accepted["invoice_ids"]
    assert accepted["invoice_id"] == first
    totals = [_ok(http.get(f"{API}/invoices/{pk}"))["total"] for pk in (first, second)]
    assert totals == [RUB("4000.00"), RUB("360.00")]
    listed = _ok(http.get(f"{API}/orders"))["items"]
    assert [o["invoice_ids"] for o in listed] == [[first, second]]
