"""The billing pages: the seed workflow through the views, refusals, scope and permissions."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from clientbase.billing import services
from clientbase.billing.ledger import credit_held
from clientbase.billing.models import Invoice, Order, Payment, Refund, Service
from clientbase.catalog.models import Cycle
from tests.billing.conftest import billing_counts, invoice_state, rub

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(admin_user, signed_in):
    """The administrator, signed in to the test browser."""
    return signed_in(admin_user)


def _users_option(catalog):
    return catalog.standard.options.get(code="users")


def _order_post(buyer, catalog, **extra) -> dict:
    data = {
        "client": buyer.number,
        "product": catalog.standard.pk,
        "cycle": Cycle.SEMI_ANNUAL,
        "quantity": "1",
        f"option_{_users_option(catalog).pk}": "6",
        "price_override": "",
        "promo_code": "",
        "payment_method": "bank_transfer",
        "send_email": "on",
        "note": "",
    }
    return data | extra


@pytest.fixture
def issued(clerk, rub_client, issue):
    """An issued invoice of 3800.00 RUB for the seed client."""
    return issue(rub_client, ("Доступ Стандарт", "3800.00"))


# --- the seed workflow -------------------------------------------------------------------------


def test_seed_workflow_through_the_pages(admin, admin_user, catalog, rub_client, seed_day,
                                         time_machine):  # fmt: skip
    # Given the order form opened from the client profile
    page = admin.get(reverse("billing:order_add") + f"?client={rub_client.pk}")
    assert page.status_code == 200
    assert f'value="{rub_client.number}"' in page.content.decode()
    assert "Количество пользователей" in page.content.decode()

    # When the clerk orders 6 users for half a year
    done = admin.post(reverse("billing:order_add"), _order_post(rub_client, catalog))
    order = Order.objects.get()
    assert done.status_code == 302 and done.url == reverse("billing:order", args=[order.pk])
    assert (order.status, order.payment_method, order.send_email) == (
        "pending",
        "bank_transfer",
        True,
    )
    assert list(order.items.values_list("options", flat=True)) == [{"users": 6}]
    listed = admin.get(reverse("billing:orders") + "?status=pending").content.decode()
    assert order.number in listed

    # And accepts it: a service and a draft invoice
    accepted = admin.post(reverse("billing:order_accept", args=[order.pk]))
    order.refresh_from_db()
    invoice = order.invoice
    assert accepted.url == reverse("billing:invoice", args=[invoice.pk])
    assert order.status == "accepted" and invoice.status == "draft"
    service = Service.objects.get()
    assert (service.recurring_minor, service.next_due_on) == (480000, dt.date(2019, 8, 1))
    draft = admin.get(accepted.url).content.decode()
    assert "Draft invoice" in draft and "RUB4,800.00" in draft and 'id="issue-invoice"' in draft

    # And adds a line to the draft, then issues it
    admin.post(
        reverse("billing:line_add", args=[invoice.pk]),
        {"description": "Настройка", "quantity": "1", "unit_price": "1000.00",
         "discount_percent": "0", "tax_rate": "", "taxable": "on"},
    )  # fmt: skip
    invoice.refresh_from_db()
    assert (invoice.total_minor, invoice.lines.count()) == (580000, 3)
    admin.post(reverse("billing:invoice_issue", args=[invoice.pk]))
    invoice.refresh_from_db()
    assert (invoice.status, invoice.balance_minor) == ("unpaid", 580000)
    assert invoice.number

    # Then the PDF downloads
    pdf = admin.get(reverse("billing:invoice_pdf", args=[invoice.pk]))
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    shown = admin.get(reverse("billing:invoice", args=[invoice.pk])).content.decode()
    assert f"Invoice {invoice.number}" in shown and 'value="5800.00"' in shown

    # When a partial then a full payment arrive
    pay = reverse("billing:invoice_pay", args=[invoice.pk])
    admin.post(pay, {"amount": "2000.00", "method": "bank_transfer", "received_on": "2019-02-01"})
    assert invoice_state(invoice) == ("partially_paid", 580000, 200000, 0, 0, 380000)
    admin.post(pay, {"amount": "3800.00", "method": "cash", "received_on": "2019-02-01"})
    assert invoice_state(invoice) == ("paid", 580000, 580000, 0, 0, 0)
    assert Payment.objects.count() == 2

    # And 150 of 181 days later the service grows to 10 users
    time_machine.move_to(dt.datetime(2019, 3, 4, 9, tzinfo=dt.UTC), tick=False)
    change = reverse("billing:service_change", args=[service.pk])
    form = admin.get(change).content.decode()
    assert f'name="option_{_users_option(catalog).pk}"' in form and 'value="6"' in form
    wanted = {"product": catalog.standard.pk, "cycle": Cycle.SEMI_ANNUAL, "quantity": "1",
              f"option_{_users_option(catalog).pk}": "10"}  # fmt: skip
    preview = admin.post(change, wanted).content.decode()
    assert '<dd class="col-6" id="days-left">150 / 181</dd>' in preview
    assert "RUB4,800.00" in preview and "RUB8,000.00" in preview and "RUB2,651.93" in preview
    assert Service.objects.get().recurring_minor == 480000  # nothing changed yet
    confirmed = admin.post(reverse("billing:service_change_confirm", args=[service.pk]), wanted)
    upgrade = Invoice.objects.exclude(pk=invoice.pk).get()
    assert confirmed.url == reverse("billing:invoice", args=[upgrade.pk])
    assert (upgrade.status, upgrade.total_minor) == ("unpaid", 265193)
    assert Service.objects.get().recurring_minor == 800000

    # And 500.00 of the first invoice goes back to credit
    admin.post(
        reverse("billing:invoice_refund", args=[invoice.pk]),
        {"amount": "500", "destination": "credit", "method": "", "reason": "Goodwill"},
    )
    refund = Refund.objects.get()
    assert (refund.amount_minor, refund.destination) == (50000, "credit")
    assert credit_held([rub_client.pk], "RUB") == rub("500.00")

    # Then the bills search finds the first invoice by its number with a *
    found = admin.get(reverse("billing:invoices") + f"?number={invoice.number}*").content.decode()
    assert f'data-number="{invoice.number}"' in found
    assert f'data-number="{upgrade.number}"' not in found or upgrade.number.startswith(
        invoice.number
    )

    # And the profile's transactions tab shows the ledger with a running balance
    tab = admin.get(reverse("clients:detail", args=[rub_client.pk]) + "?tab=transactions")
    text = tab.content.decode()
    assert tab.status_code == 200 and "RUB500.00" in text and text.count('class="ledger-row"') >= 6


# --- each page ---------------------------------------------------------------------------------


def test_lists_and_profile_tabs_render(admin, rub_client, issued, pay, catalog, clerk):
    order = services.order_create(
        by=clerk, client=rub_client,
        items=[services.ItemSpec(catalog.disk, Cycle.MONTHLY)],
    )  # fmt: skip
    services.order_accept(by=clerk, order=order)
    service = Service.objects.get()
    services.service_update(by=clerk, service=service, suspend_exempt_until=None,
                            next_due_on=service.period_start + dt.timedelta(days=10))  # fmt: skip
    pay(rub_client, rub("1000.00"), issued)
    pages = {
        reverse("billing:invoices"): [f'data-number="{issued.number}"', "RUB3,800.00",
                                      "RUB2,800.00", "Partially paid"],
        reverse("billing:orders"): [order.number, "Пакет дискового пространства 5ГБ", "Accepted"],
        reverse("billing:services"): ["Пакет дискового пространства 5ГБ", "RUB360.00", "Monthly"],
        reverse("billing:services") + "?due=1": ["Пакет дискового пространства 5ГБ"],
        reverse("billing:payments"): ["PAY-000001", "RUB1,000.00", "Bank transfer"],
        reverse("billing:payment_add") + f"?client={rub_client.number}": [
            f'name="inv_{issued.pk}"', "RUB2,800.00"],
        reverse("clients:detail", args=[rub_client.pk]) + "?tab=services": [
            "Пакет дискового пространства 5ГБ", 'id="tab-services"'],
        reverse("clients:detail", args=[rub_client.pk]) + "?tab=invoices": [
            f'data-number="{issued.number}"', "Draft"],
        reverse("clients:detail", args=[rub_client.pk]) + "?tab=transactions": [
            "Invoice issued", "RUB3,800.00", "RUB2,800.00", "PAY-000001"],
        reverse("billing:invoice_print", args=[issued.pk]): [f"Invoice {issued.number}",
                                                             "Доступ Стандарт"],
        reverse("billing:order", args=[order.pk]): [order.number, "Services created"],
        reverse("billing:service", args=[service.pk]): ["RUB360.00", "Next due date"],
    }  # fmt: skip
    for url, expected in pages.items():
        response = admin.get(url)
        assert response.status_code == 200, url
        text = response.content.decode()
        for fragment in expected:
            assert fragment in text, (url, fragment)


def test_bills_search_filters_and_sorts(admin, rub_client, issue, pay):
    first = issue(rub_client, ("A", "100.00"))
    second = issue(rub_client, ("B", "300.00"))
    third = issue(rub_client, ("C", "200.00"))
    pay(rub_client, rub("100.00"), first)

    def numbers(query: str) -> list[str]:
        text = admin.get(reverse("billing:invoices") + query).content.decode()
        return [n for n in (first.number, second.number, third.number)
                if f'data-number="{n}"' in text]  # fmt: skip

    def order(query: str) -> list[str]:
        text = admin.get(reverse("billing:invoices") + query).content.decode()
        found = {n: text.index(f'data-number="{n}"') for n in numbers(query)}
        return sorted(found, key=found.get)

    assert order("?sort=amount") == [first.number, third.number, second.number]
    assert order("?sort=-balance") == [second.number, third.number, first.number]
    assert order("") == [third.number, second.number, first.number]
    assert numbers("?zero=yes") == [first.number]
    assert numbers("?zero=no") == [second.number, third.number]
    assert numbers("?last=2") == [second.number, third.number]
    assert numbers("?status=paid") == [first.number]
    assert numbers(f"?number={second.number}") == [second.number]
    assert numbers("?date_from=2100-01-01") == []
    header = admin.get(reverse("billing:invoices") + "?sort=amount").content.decode()
    assert 'href="?sort=-amount" id="sort-amount"' in header


def test_overdue_filter(admin, rub_client, issue, time_machine):
    time_machine.move_to(dt.datetime(2019, 2, 1, 9, tzinfo=dt.UTC), tick=False)
    late = issue(rub_client, ("Late", "100.00"))
    time_machine.move_to(dt.datetime(2019, 3, 1, 9, tzinfo=dt.UTC), tick=False)
    fresh = issue(rub_client, ("Fresh", "100.00"))
    text = admin.get(reverse("billing:invoices") + "?overdue=1").content.decode()
    assert f'data-number="{late.number}"' in text and f'data-number="{fresh.number}"' not in text
    assert '<span class="text-danger">21</span>' in text


def test_export_pdfs_zips_the_filtered_invoices(admin, rub_client, issue):
    first = issue(rub_client, ("A", "100.00"))
    issue(rub_client, ("B", "200.00"))
    response = admin.get(reverse("billing:invoices_export") + f"?number={first.number}")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    assert names == [f"{first.number}.pdf"]


def test_export_refuses_more_than_the_limit(admin, rub_client, issue, monkeypatch):
    from clientbase.billing import views

    monkeypatch.setattr(views, "EXPORT_LIMIT", 1)
    issue(rub_client, ("A", "100.00"))
    issue(rub_client, ("B", "200.00"))
    response = admin.get(reverse("billing:invoices_export"), follow=True)
    assert "2 invoices match: narrow the search to 1 or fewer to export them." in (
        response.content.decode()
    )


def test_invoice_list_queries_do_not_grow_with_rows(admin, rub_client, issue, make_client):
    issue(rub_client, ("A", "100.00"))
    url = reverse("billing:invoices")
    admin.get(url)
    with CaptureQueriesContext(connection) as few:
        assert admin.get(url).status_code == 200
    for index in range(8):
        issue(make_client(f"Client {index}"), ("B", "200.00"))
    with CaptureQueriesContext(connection) as many:
        admin.get(url)
    assert len(many) == len(few)


def test_invoice_list_query_count(admin, rub_client, issue, django_assert_max_num_queries):
    for _index in range(5):
        issue(rub_client, ("A", "100.00"))
    with django_assert_max_num_queries(8):
        admin.get(reverse("billing:invoices"))


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("0", "The amount must be above zero."),
        ("-5.00", "The amount must be above zero."),
        ("abc", "Write the amount as a number such as 120.50."),
    ],
)
def test_bad_payment_shows_the_error_and_changes_nothing(admin, issued, amount, message):
    before = (billing_counts(), invoice_state(issued))
    response = admin.post(
        reverse("billing:invoice_pay", args=[issued.pk]),
        {"amount": amount, "method": "bank_transfer", "received_on": ""},
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert f'<div class="invalid-feedback d-block">{message}</div>' in text
    assert 'name="amount" value="' + amount + '" class=" form-control is-invalid"' in text or (
        "is-invalid" in text
    )
    assert (billing_counts(), invoice_state(issued)) == before


def test_issued_invoice_cannot_be_edited(admin, issued):
    before = (billing_counts(), invoice_state(issued), issued.lines.count())
    response = admin.post(
        reverse("billing:line_add", args=[issued.pk]),
        {"description": "More", "quantity": "1", "unit_price": "10", "discount_percent": "0"},
    )
    assert response.status_code == 200
    assert (
        f"Invoice {issued.number} is issued: it changes only by payments, credit notes and "
        "adjustments." in response.content.decode()
    )
    dates = admin.post(
        reverse("billing:invoice_edit", args=[issued.pk]),
        {"issued_on": "2019-01-01", "due_on": "2019-01-10", "notes": "x"},
    )
    assert "is issued" in dates.content.decode()
    assert (billing_counts(), invoice_state(issued), issued.lines.count()) == before
    issued.refresh_from_db()
    assert issued.notes == ""


def test_refund_larger_than_paid_is_refused(admin, rub_client, issued, pay):
    pay(rub_client, rub("1000.00"), issued)
    before = (billing_counts(), invoice_state(issued))
    response = admin.post(
        reverse("billing:invoice_refund", args=[issued.pk]),
        {"amount": "1000.01", "destination": "credit", "reason": "Too much"},
    )
    assert (
        '<div class="invalid-feedback d-block">Only RUB1,000.00 was paid on this invoice and '
        "not yet refunded.</div>"
        in response.content.decode()
        or "Only 1000.00 RUB was paid on this invoice and not yet refunded."
        in response.content.decode()
    )
    assert (billing_counts(), invoice_state(issued)) == before


def test_bad_line_shows_the_error_at_the_field(admin, rub_client, clerk):
    draft = services.invoice_create(by=clerk, client=rub_client)
    response = admin.post(
        reverse("billing:line_add", args=[draft.pk]),
        {"description": "", "quantity": "1", "unit_price": "10", "discount_percent": "0"},
    )
    assert '<div class="invalid-feedback d-block">Describe what the line is for.</div>' in (
        response.content.decode()
    )
    assert draft.lines.count() == 0


def test_order_for_an_unknown_client_or_duplicate_product(admin, rub_client, catalog, clerk):
    unknown = admin.post(reverse("billing:order_add"), _order_post(rub_client, catalog,
                                                                   client="NOPE-1"))  # fmt: skip
    assert "No client has the number NOPE-1." in unknown.content.decode()
    bad_promo = admin.post(reverse("billing:order_add"),
                           _order_post(rub_client, catalog, promo_code="NOSUCH"))  # fmt: skip
    assert "There is no promo code NOSUCH." in bad_promo.content.decode()
    assert Order.objects.count() == 0
    order = services.order_create(
        by=clerk,
        client=rub_client,
        items=[services.ItemSpec(catalog.standard, "semi_annual", 1, {"users": 1})],
    )
    services.order_accept(by=clerk, order=order)
    again = admin.post(reverse("billing:order_add"), _order_post(rub_client, catalog))
    assert "already has" in again.content.decode()
    assert Order.objects.count() == 1


def test_order_cancel_needs_a_reason(admin, rub_client, catalog, clerk):
    order = services.order_create(
        by=clerk, client=rub_client, items=[services.ItemSpec(catalog.disk, "monthly")]
    )
    url = reverse("billing:order_cancel", args=[order.pk])
    refused = admin.post(url, {"reason": " "})
    assert "Give a reason for the cancellation." in refused.content.decode()
    order.refresh_from_db()
    assert order.status == "pending"
    admin.post(url, {"reason": "Client changed their mind"})
    order.refresh_from_db()
    assert (order.status, order.cancel_reason) == ("cancelled", "Client changed their mind")


# --- more actions -----------------------------------------------------------------------------


def test_client_payment_spreads_over_invoices_and_leftover_goes_to_credit(admin, rub_client,
                                                                          issue):  # fmt: skip
    first = issue(rub_client, ("A", "100.00"))
    second = issue(rub_client, ("B", "300.00"))
    response = admin.post(
        reverse("billing:payment_add"),
        {"client": rub_client.number, "amount": "500.00", "method": "cash",
         "received_on": "", "reference": "Till",
         f"inv_{first.pk}": "1", f"amt_{first.pk}": "",
         f"inv_{second.pk}": "1", f"amt_{second.pk}": "250.00"},
    )  # fmt: skip
    assert response.status_code == 302
    assert invoice_state(first)[0::5] == ("paid", 0)
    assert invoice_state(second)[0::5] == ("partially_paid", 5000)
    payment = Payment.objects.get()
    assert (payment.amount_minor, payment.to_credit_minor) == (50000, 15000)


def test_client_payment_over_allocated_is_refused(admin, rub_client, issue):
    first = issue(rub_client, ("A", "100.00"))
    before = billing_counts()
    response = admin.post(
        reverse("billing:payment_add"),
        {"client": rub_client.number, "amount": "50.00", "method": "cash",
         f"inv_{first.pk}": "1", f"amt_{first.pk}": "80.00"},
    )  # fmt: skip
    assert "The allocations add up to more than the payment." in response.content.decode()
    assert billing_counts() == before


def test_credit_note_apply_credit_cancel_and_send(
    admin, rub_client, issue, pay, mailoutbox, django_capture_on_commit_callbacks
):
    paid = issue(rub_client, ("A", "100.00"))
    pay(rub_client, rub("100.00"), paid)
    admin.post(
        reverse("billing:invoice_credit_note", args=[paid.pk]),
        {"amount": "40.00", "kind": "credit_note", "reason": "Discount"},
    )
    assert credit_held([rub_client.pk], "RUB") == rub("40.00")
    other = issue(rub_client, ("B", "100.00"))
    admin.post(reverse("billing:invoice_credit", args=[other.pk]), {"amount": ""})
    assert invoice_state(other)[0::5] == ("partially_paid", 6000)
    third = issue(rub_client, ("C", "10.00"))
    admin.post(reverse("billing:invoice_cancel", args=[third.pk]), {"reason": "Wrong client"})
    assert invoice_state(third)[0] == "cancelled"
    with django_capture_on_commit_callbacks(execute=True):
        sent = admin.post(reverse("billing:invoice_send", args=[other.pk]), {"to": ""})
    assert sent.status_code == 302
    assert [m.to for m in mailoutbox] == [[rub_client.email]]


def test_service_status_dates_end_and_transfer(admin, rub_client, catalog, clerk, make_client):
    order = services.order_create(
        by=clerk, client=rub_client, items=[services.ItemSpec(catalog.disk, "monthly")]
    )
    services.order_accept(by=clerk, order=order)
    service = Service.objects.get()
    status = reverse("billing:service_status", args=[service.pk])
    refused = admin.post(status, {"action": "suspend", "reason": ""})
    assert '<div class="invalid-feedback d-block">Give a reason.</div>' in refused.content.decode()
    admin.post(status, {"action": "suspend", "reason": "Unpaid"})
    service.refresh_from_db()
    assert (service.status, service.status_reason) == ("suspended", "Unpaid")
    again = admin.post(status, {"action": "suspend", "reason": "Twice"}, follow=True)
    assert "The service is Suspended: suspending is not possible." in again.content.decode()
    admin.post(status, {"action": "unsuspend", "reason": "Paid"})
    admin.post(reverse("billing:service_end", args=[service.pk]),
               {"cancel": "on", "reason": "Moving away"})  # fmt: skip
    admin.post(reverse("billing:service_dates", args=[service.pk]),
               {"next_due_on": "2100-01-01", "suspend_exempt_until": "2099-12-31"})  # fmt: skip
    service.refresh_from_db()
    assert (service.status, service.cancel_at_period_end, service.next_due_on,
            service.suspend_exempt_until) == ("active", True, dt.date(2100, 1, 1),
                                              dt.date(2099, 12, 31))  # fmt: skip
    other = make_client("Other", email="other@example.com")
    transfer = reverse("billing:service_transfer", args=[service.pk])
    unknown = admin.post(transfer, {"to_client": "X-404", "reason": "Sold"})
    assert "No client has the number X-404." in unknown.content.decode()
    admin.post(transfer, {"to_client": other.number, "reason": "Sold"})
    service.refresh_from_db()
    assert service.client_id == other.pk


def test_downgrade_gives_credit(admin, rub_client, catalog, clerk, seed_day, time_machine):
    order = services.order_create(
        by=clerk, client=rub_client,
        items=[services.ItemSpec(catalog.standard, "semi_annual", 1, {"users": 6})],
    )  # fmt: skip
    services.order_accept(by=clerk, order=order)
    service = Service.objects.get()
    time_machine.move_to(dt.datetime(2019, 3, 4, 9, tzinfo=dt.UTC), tick=False)
    wanted = {"product": catalog.standard.pk, "cycle": "semi_annual", "quantity": "1",
              f"option_{_users_option(catalog).pk}": "3"}  # fmt: skip
    preview = admin.post(reverse("billing:service_change", args=[service.pk]), wanted)
    assert 'id="change-credit">RUB1,988.95</dd>' in preview.content.decode()
    done = admin.post(reverse("billing:service_change_confirm", args=[service.pk]), wanted)
    assert done.url == reverse("billing:service", args=[service.pk])
    assert credit_held([rub_client.pk], "RUB") == rub("1988.95")
    same = admin.post(reverse("billing:service_change", args=[service.pk]), wanted)
    assert "Nothing would change." in same.content.decode()


# --- scope and permissions --------------------------------------------------------------------


def test_out_of_scope_is_404(make_user, signed_in, rub_client, issued, catalog, clerk):
    order = services.order_create(
        by=clerk, client=rub_client, items=[services.ItemSpec(catalog.disk, "monthly")]
    )
    services.order_accept(by=clerk, order=order)
    outsider = signed_in(make_user("sam", role="sales", unit="team_b"))
    service = Service.objects.get()
    for url in [
        reverse("billing:invoice", args=[issued.pk]),
        reverse("billing:invoice_pdf", args=[issued.pk]),
        reverse("billing:invoice_print", args=[issued.pk]),
        reverse("billing:order", args=[order.pk]),
        reverse("billing:service", args=[service.pk]),
        reverse("billing:service_change", args=[service.pk]),
        reverse("billing:order_add") + f"?client={rub_client.pk}",
    ]:
        assert outsider.get(url).status_code == 404, url
    listed = outsider.get(reverse("billing:invoices")).content.decode()
    assert f'data-number="{issued.number}"' not in listed
    unknown = outsider.post(reverse("billing:order_add"), _order_post(rub_client, catalog))
    assert "No client has the number" in unknown.content.decode()


def test_missing_permission_is_403(make_user, signed_in, rub_client, issued):
    before = (billing_counts(), invoice_state(issued))
    reader = signed_in(make_user("rita", role="support", unit="company"))
    assert reader.get(reverse("billing:invoice", args=[issued.pk])).status_code == 200
    for url, data in [
        (reverse("billing:invoice_pay", args=[issued.pk]), {"amount": "1", "method": "cash"}),
        (reverse("billing:invoice_refund", args=[issued.pk]), {"amount": "1"}),
        (reverse("billing:invoice_cancel", args=[issued.pk]), {"reason": "x"}),
        (reverse("billing:order_add"), {}),
        (reverse("billing:payment_add"), {}),
    ]:
        assert reader.post(url, data).status_code == 403, url
    assert (billing_counts(), invoice_state(issued)) == before


def test_bad_search_input_is_shown_and_the_rest_still_applies(admin, rub_client, issue):
    first = issue(rub_client, ("A", "100.00"))
    response = admin.get(reverse("billing:invoices") + "?date_from=someday&last=x&zero=yes")
    text = response.content.decode()
    assert response.status_code == 200
    assert "Date from: Enter a valid date." in text or "From: Enter a valid date." in text
    assert "Last: Enter a whole number." in text
    assert f'data-number="{first.number}"' not in text  # zero=yes still filters


def test_draft_line_edit_and_delete(admin, rub_client, clerk):
    draft = services.invoice_create(
        by=clerk, client=rub_client,
        lines=[services.LineSpec("Consulting", rub("100.00").amount, rub("2.00").amount)],
    )  # fmt: skip
    line = draft.lines.get()
    url = reverse("billing:line_edit", args=[draft.pk, line.pk])
    form = admin.get(url).content.decode()
    assert 'value="Consulting"' in form and 'value="100"' in form
    refused = admin.post(url, {"description": "Consulting", "quantity": "0", "unit_price": "100"})
    assert "The quantity must be above zero." in refused.content.decode()
    admin.post(url, {"description": "Consulting, day rate", "quantity": "10", "unit_price": "150",
                     "discount_percent": "10", "taxable": "on"})  # fmt: skip
    draft.refresh_from_db()
    line.refresh_from_db()
    assert (line.description, draft.total_minor) == ("Consulting, day rate", 135000)
    shown = admin.get(reverse("billing:invoice", args=[draft.pk])).content.decode()
    assert '<td class="text-end">10</td>' in shown and "RUB150.00" in shown and "10 %" in shown
    admin.post(reverse("billing:line_delete", args=[draft.pk, line.pk]))
    draft.refresh_from_db()
    assert (draft.lines.count(), draft.total_minor) == (0, 0)
    refused = admin.post(reverse("billing:invoice_issue", args=[draft.pk]), follow=True)
    assert "Add at least one line before issuing." in refused.content.decode()


def test_order_with_price_override_and_promo(admin, rub_client, catalog, promos):
    admin.post(
        reverse("billing:order_add"),
        _order_post(rub_client, catalog, price_override="4000.00", promo_code="ref5",
                    payment_method=""),
    )  # fmt: skip
    order = Order.objects.get()
    item = order.items.get()
    assert (item.price_override_minor, order.promo.code, order.payment_method) == (
        400000, "REF5", rub_client.payment_method
    )  # fmt: skip
    bad = admin.post(reverse("billing:order_add"),
                     _order_post(rub_client, catalog, price_override="-1"))  # fmt: skip
    assert "A price cannot be negative." in bad.content.decode()


def test_credit_adjust_and_payout_from_the_profile(admin, rub_client):
    adjust = reverse("billing:credit_adjust", args=[rub_client.pk])
    done = admin.post(adjust, {"amount": "300.00", "reason": "Loyalty bonus"}, follow=True)
    assert "Credit balance is now RUB300.00." in done.content.decode()
    empty = admin.post(adjust, {"amount": "", "reason": "Oops"}, follow=True)
    assert "This field is required." in empty.content.decode()
    refused = admin.post(adjust, {"amount": "-400.00", "reason": "Oops"}, follow=True)
    assert "The client has only 300.00 RUB of credit." in refused.content.decode()
    before = billing_counts()
    too_much = admin.post(
        reverse("billing:credit_payout", args=[rub_client.pk]),
        {"amount": "300.01", "method": "cash", "reason": "Closing"},
        follow=True,
    )
    assert "The client has only 300.00 RUB of credit." in too_much.content.decode()
    assert billing_counts() == before
    admin.post(
        reverse("billing:credit_payout", args=[rub_client.pk]),
        {"amount": "300.00", "method": "cash", "reason": "Closing"},
    )
    assert credit_held([rub_client.pk], "RUB") == rub("0.00")
    assert Refund.objects.get().destination == "out"


def test_credit_top_up_invoiced_from_the_profile_and_paid_into_credit(admin, rub_client):
    top_up = reverse("billing:credit_top_up", args=[rub_client.pk])
    profile = admin.get(reverse("clients:detail", args=[rub_client.pk]) + "?tab=transactions")
    assert 'id="credit-top-up"' in profile.content.decode()
    refused = admin.post(top_up, {"amount": "-5", "due_days": "7"}, follow=True)
    assert "The amount must be above zero." in refused.content.decode()
    assert Invoice.objects.count() == 0
    done = admin.post(top_up, {"amount": "250.00", "due_days": "10"}, follow=True)
    invoice = Invoice.objects.get()
    assert done.redirect_chain[-1][0] == reverse("billing:invoice", args=[invoice.pk])
    page = done.content.decode()
    assert "Invoice 1 issued." in page
    assert 'id="top-up-badge"' in page
    # no credit can pay a top-up, and what is paid on it is credit, not refundable as such
    assert 'id="apply-credit"' not in page
    assert invoice_state(invoice) == ("unpaid", 25000, 0, 0, 0, 25000)
    assert (invoice.due_on - invoice.issued_on).days == 10
    admin.post(
        reverse("billing:invoice_pay", args=[invoice.pk]),
        {"amount": "250.00", "method": "cash", "received_on": invoice.issued_on.isoformat()},
    )
    assert invoice_state(invoice) == ("paid", 25000, 25000, 0, 0, 0)
    assert credit_held([rub_client.pk], "RUB") == rub("250.00")
    paid_page = admin.get(reverse("billing:invoice", args=[invoice.pk])).content.decode()
    assert 'id="refund"' not in paid_page


def test_the_order_page_links_every_invoice_it_drafted(admin, clerk, make_client, catalog,
                                                       seed_day):  # fmt: skip
    client = make_client(separate_invoices=True)
    order = services.order_create(
        by=clerk, client=client,
        items=[services.ItemSpec(catalog.disk, "monthly"),
               services.ItemSpec(catalog.hotel, "semi_annual")],
    )  # fmt: skip
    services.order_accept(by=clerk, order=order)
    page = admin.get(reverse("billing:order", args=[order.pk])).content.decode()
    links = [f'href="{reverse("billing:invoice", args=[i.pk])}"' for i in order.invoices.all()]
    assert len(links) == 2
    assert all(link in page for link in links)
    assert page.count('class="order-invoice"') == 2
