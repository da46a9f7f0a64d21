"""Bank statements (BIL-11): the seed's payment order matched to invoice 72815, the rest in
suspense, cleared by a clerk; the same statement twice posts nothing twice."""

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from clientbase.billing import bank
from clientbase.billing.models import BankPayment, BankStatement, Invoice, Payment
from clientbase.core.errors import ServiceError
from clientbase.core.models import NumberSeries

from .conftest import billing_counts, invoice_state
from .test_statement_parsing import OUTGOING_1C_DOCUMENT, as_1c_bytes, seed_1c

SEED_INN = "7814695160"


@pytest.fixture
def payer(make_client):
    """The seed's payer, ООО «Тех.промышлен», with its INN."""
    return make_client('ООО "Тех.промышлен"', tax_id=SEED_INN, kpp="781401001")


@pytest.fixture
def invoice_72815(payer, issue):
    """Invoice 72815 of the payer, for 15000.00 RUB."""
    NumberSeries.objects.update_or_create(key="invoice", defaults={"next_value": 72815})
    invoice = issue(payer, ("Доступ на пользователя", "15000.00"))
    assert invoice.number == "72815"
    return invoice


def statement(**changes) -> bytes:
    """The seed's 1C statement, with whole lines replaced."""
    return as_1c_bytes(seed_1c(replace=changes))


def test_the_seed_payment_order_pays_invoice_72815(clerk, payer, invoice_72815):
    imported = bank.statement_import(by=clerk, data=statement(), filename="kl_to_1c.txt")
    assert (imported.format, imported.account, imported.lines, imported.posted,
            imported.suspense, imported.outgoing, imported.duplicates) == (
        "1c", "40702810502080001823", 1, 1, 0, 0, 0)  # fmt: skip
    item = BankPayment.objects.get()
    assert (item.state, item.invoice, item.amount_minor, item.booked_on, item.payer_tax_id) == (
        "posted",
        invoice_72815,
        1500000,
        dt.date(2019, 2, 26),
        SEED_INN,
    )
    assert invoice_state(invoice_72815) == ("paid", 1500000, 1500000, 0, 0, 0)
    payment = Payment.objects.get()
    assert (payment.client, payment.method, payment.amount_minor, payment.received_on) == (
        payer,
        "bank_transfer",
        1500000,
        dt.date(2019, 2, 26),
    )
    assert payment.reference.startswith('ООО "Тех.промышлен": Оплата по счету 88#72815')
    assert item.payment == payment


def test_importing_the_same_statement_twice_posts_nothing_twice(clerk, payer, invoice_72815):
    bank.statement_import(by=clerk, data=statement())
    before = billing_counts()
    again = bank.statement_import(by=clerk, data=statement())
    assert (again.lines, again.posted, again.suspense, again.duplicates) == (1, 0, 0, 1)
    assert billing_counts() == before
    assert BankPayment.objects.count() == 1


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (
            {"ПлательщикИНН=7814695160": "ПлательщикИНН=7707083893"},
            'Invoice 72815 belongs to ООО "Тех.промышлен", whose tax id is not the payer\'s '
            "7707083893.",
        ),
        ({"Сумма=15000.00": "Сумма=14000.00"},
         "Invoice 72815 owes 15000.00 RUB; the payment is 14000.00 RUB."),
        (
            {"НазначениеПлатежа=Оплата по счету 88#72815 от 09.02.19; Сумма 15000-00 Без "
             "налога (НДС)": "НазначениеПлатежа=Оплата за услуги"},
            "No invoice number found in the purpose.",
        ),
        ({"ПлательщикИНН=7814695160": "ПлательщикИНН="},
         "The payer's tax id is missing, so the payer cannot be checked."),
    ],
)  # fmt: skip
def test_a_wrong_inn_amount_or_purpose_goes_to_suspense(
    clerk, payer, invoice_72815, changes, reason
):
    if "ПлательщикИНН=" in changes.values():
        changes['Плательщик=ИНН 7814695160 ООО "Тех.промышлен"'] = 'Плательщик=ООО "Тех"'
    before = billing_counts()
    imported = bank.statement_import(by=clerk, data=statement(**changes))
    assert (imported.posted, imported.suspense) == (0, 1)
    item = BankPayment.objects.get()
    assert (item.state, item.reason, item.invoice, item.payment) == ("suspense", reason, None, None)
    assert billing_counts() == before
    assert invoice_state(invoice_72815) == ("unpaid", 1500000, 0, 0, 0, 1500000)


def test_a_paid_invoice_is_not_paid_again(clerk, payer, invoice_72815, pay):
    pay(payer, invoice_72815.total, invoice_72815)
    bank.statement_import(by=clerk, data=statement())
    assert BankPayment.objects.get().reason == "Invoice 72815 is paid."


def test_outgoing_lines_are_kept_but_never_posted(clerk, payer, invoice_72815):
    data = as_1c_bytes(seed_1c(add=OUTGOING_1C_DOCUMENT))
    imported = bank.statement_import(by=clerk, data=data)
    assert (imported.lines, imported.posted, imported.outgoing) == (2, 1, 1)
    outgoing = BankPayment.objects.get(state="outgoing")
    assert (outgoing.amount_minor, outgoing.line_no, outgoing.reason) == (120050, 43, "")


def test_a_corrupt_statement_is_refused_whole_with_the_line_of_the_fault(
    clerk, payer, invoice_72815
):
    data = as_1c_bytes(seed_1c(replace={"Сумма=15000.00": "Сумма=abc"}))
    before = billing_counts()
    with pytest.raises(ServiceError) as refused:
        bank.statement_import(by=clerk, data=data)
    assert refused.value.message_dict == {"file": ["Line 24: the amount 'abc' is not a number."]}
    assert (BankStatement.objects.count(), BankPayment.objects.count()) == (0, 0)
    assert billing_counts() == before


def test_an_unknown_format_is_named_as_such(clerk):
    with pytest.raises(ServiceError) as refused:
        bank.statement_import(by=clerk, data=b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    assert refused.value.message_dict == {
        "file": [
            "Unknown statement format: expected CSV, 1C client-bank exchange "
            "(1CClientBankExchange) or ISO 20022 camt.053."
        ]
    }


def test_a_clerk_assigns_a_waiting_payment_to_the_invoice(clerk, payer, invoice_72815):
    bank.statement_import(by=clerk, data=statement(**{"Сумма=15000.00": "Сумма=16000.00"}))
    item = BankPayment.objects.get()
    invoices = Invoice.objects.all()
    assert bank.suggestions(item, invoices) == [invoice_72815]
    done = bank.bank_payment_assign(by=clerk, item=item, invoice=invoice_72815)
    assert (done.state, done.invoice, done.decided_by) == ("assigned", invoice_72815, clerk)
    # the invoice is paid and the 1000.00 over it is the payer's credit
    assert invoice_state(invoice_72815) == ("paid", 1500000, 1500000, 0, 0, 0)
    assert done.payment.to_credit_minor == 100000
    with pytest.raises(ServiceError) as refused:
        bank.bank_payment_assign(by=clerk, item=item, invoice=invoice_72815)
    assert refused.value.message_dict == {
        "state": ["This payment was already dealt with: assigned by a clerk."]
    }
    assert Payment.objects.count() == 1


def test_a_line_that_is_no_client_payment_is_set_aside_with_a_reason(clerk, payer, invoice_72815):
    bank.statement_import(by=clerk, data=statement(**{"Сумма=15000.00": "Сумма=10.00"}))
    item = BankPayment.objects.get()
    with pytest.raises(ServiceError) as refused:
        bank.bank_payment_ignore(by=clerk, item=item, reason="  ")
    assert refused.value.message_dict == {
        "reason": ["Say what the money is, if not a client's payment."]
    }
    done = bank.bank_payment_ignore(by=clerk, item=item, reason="Bank interest")
    assert (done.state, done.reason) == ("ignored", "Bank interest")
    assert Payment.objects.count() == 0


def test_clearing_the_suspense_list_in_the_browser_pages(signed_in, clerk, payer, invoice_72815):
    http = signed_in(clerk)
    upload = SimpleUploadedFile("statement.txt", statement(**{"Сумма=15000.00": "Сумма=16000.00"}))
    response = http.post("/billing/bank/", {"file": upload})
    item = BankPayment.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/billing/bank/{item.statement_id}/"
    page = http.get("/billing/bank/suspense/").content.decode()
    assert "Invoice 72815 owes 15000.00 RUB; the payment is 16000.00 RUB." in page
    assert f'name="invoice" value="{invoice_72815.pk}"' in page
    response = http.post(f"/billing/bank/suspense/{item.pk}/assign/", {"invoice": invoice_72815.pk})
    assert response.status_code == 302
    item.refresh_from_db()
    assert (item.state, item.invoice) == ("assigned", invoice_72815)
    assert "Nothing waits" in http.get("/billing/bank/suspense/").content.decode()


def test_a_corrupt_file_uploaded_in_the_browser_shows_the_fault(signed_in, clerk):
    http = signed_in(clerk)
    data = as_1c_bytes(seed_1c(replace={"Сумма=15000.00": "Сумма=abc"}))
    response = http.post("/billing/bank/", {"file": SimpleUploadedFile("s.txt", data)})
    assert response.status_code == 422
    assert "Line 24: the amount &#x27;abc&#x27; is not a number." in response.content.decode()
    assert BankStatement.objects.count() == 0


def test_the_statement_api_imports_then_a_clerk_assigns(api_client, clerk, payer, invoice_72815):
    http = api_client(clerk)
    data = statement(**{"ПлательщикИНН=7814695160": "ПлательщикИНН=7707083893"})
    response = http.post("/api/v1/bank-statements", {"file": SimpleUploadedFile("s.txt", data)})
    assert response.status_code == 201, response.content
    body = response.json()
    assert {k: body[k] for k in ("format", "lines", "posted", "suspense", "duplicates")} == {
        "format": "1c", "lines": 1, "posted": 0, "suspense": 1, "duplicates": 0
    }  # fmt: skip
    waiting = http.get("/api/v1/bank-payments?state=suspense").json()
    assert waiting["count"] == 1
    (item,) = waiting["items"]
    assert (item["amount"], item["payer_tax_id"], item["state"]) == (
        {"amount": "15000.00", "currency": "RUB"}, "7707083893", "suspense"
    )  # fmt: skip
    response = http.post(
        f"/api/v1/bank-payments/{item['id']}/assign",
        {"invoice_id": invoice_72815.pk},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert (response.json()["state"], response.json()["invoice_id"]) == (
        "assigned", invoice_72815.pk
    )  # fmt: skip
    assert invoice_state(invoice_72815)[0] == "paid"
    again = http.post(
        f"/api/v1/bank-payments/{item['id']}/ignore",
        {"reason": "x"},
        content_type="application/json",
    )
    assert again.status_code == 409


def test_the_statement_api_refuses_a_corrupt_file_and_a_role_without_payments(
    api_client, clerk, make_user
):
    data = as_1c_bytes(seed_1c(replace={"Сумма=15000.00": "Сумма=abc"}))
    response = api_client(clerk).post(
        "/api/v1/bank-statements", {"file": SimpleUploadedFile("s.txt", data)}
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "file", "message": "Line 24: the amount 'abc' is not a number."}
    ]
    seller = make_user("seller", role="sales")
    response = api_client(seller).post(
        "/api/v1/bank-statements", {"file": SimpleUploadedFile("s.txt", statement())}
    )
    assert response.status_code == 403
    assert BankStatement.objects.count() == 0


def test_two_lines_paying_one_invoice_post_once_and_the_second_waits(clerk, payer, invoice_72815):
    second = (
        seed_1c().split("СекцияДокумент=")[1].replace("Номер=27", "Номер=29")
    )  # the same order again under another number: another bank transaction
    data = as_1c_bytes(seed_1c(add="СекцияДокумент=" + second))
    imported = bank.statement_import(by=clerk, data=data)
    assert (imported.lines, imported.posted, imported.suspense) == (2, 1, 1)
    waiting = BankPayment.objects.get(state="suspense")
    assert waiting.reason == "Another payment settled the invoice first, or it changed meanwhile."
    assert invoice_state(invoice_72815) == ("paid", 1500000, 1500000, 0, 0, 0)
    assert Payment.objects.count() == 1
    receipt = invoice_72815.receipt
    assert (receipt.amount_minor, receipt.client_id) == (1500000, payer.pk)


def test_a_tampered_invoice_id_on_the_suspense_page_changes_nothing(
    signed_in, clerk, payer, invoice_72815
):
    bank.statement_import(by=clerk, data=statement(**{"Сумма=15000.00": "Сумма=16000.00"}))
    item = BankPayment.objects.get()
    http = signed_in(clerk)
    for tampered in ("abc", "999999"):
        response = http.post(f"/billing/bank/suspense/{item.pk}/assign/", {"invoice": tampered})
        assert (response.status_code, response["Location"]) == (302, "/billing/bank/suspense/")
    page = http.get("/billing/bank/suspense/").content.decode()
    assert "That invoice is not among those you may see." in page
    item.refresh_from_db()
    assert (item.state, Payment.objects.count()) == ("suspense", 0)
