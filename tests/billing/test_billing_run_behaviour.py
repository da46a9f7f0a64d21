"""The billing run's behaviour (BIL-4), each rule with exact amounts, dates and counts:
invoices per client, per service and per currency; promo, setup fee and tax on renewals;
credit applied; invoices held for review; services ended mid-run; one client's fault
isolated; price changes; dead workers; co-terming; a year of daily runs; the API and pages.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from clientbase.billing import run as billing_run
from clientbase.billing import services
from clientbase.billing.ledger import credit_held, ledger_verify
from clientbase.billing.models import (
    BilledPeriod,
    BillingRun,
    BillingRunChunk,
    BillingRunError,
    Invoice,
    LedgerEntry,
    Receipt,
    Service,
)
from clientbase.catalog import services as catalog_services
from clientbase.catalog.models import Cycle, Price, Product
from clientbase.clients.services import address_add, client_merge, client_update, history_ids
from clientbase.core.models import AuditEntry, Event

from .conftest import billing_counts, rub

pytestmark = pytest.mark.django_db

API = "/api/v1"
DISK = "Пакет дискового пространства 5ГБ"
HOTEL = "БИТ:Отель 8. ПРОФ"
STANDARD = 'Доступ на пользователя "Стандарт"'
FEBRUARY_22 = dt.date(2019, 2, 22)  # a week before the services of 1 February renew


def d(year: int, month: int, day: int) -> dt.date:
    return dt.date(year, month, day)


def at(day: dt.date):
    """Stand the clock still at 09:00 UTC of a day."""
    return time_machine.travel(dt.datetime.combine(day, dt.time(9), tzinfo=dt.UTC), tick=False)


def run_on(day: dt.date) -> BillingRun:
    """The daily automation's run on a day, worked in this process."""
    with at(day):
        return billing_run.billing_run_now()


def item(product, cycle, **fields) -> services.ItemSpec:
    return services.ItemSpec(product, cycle, **fields)


def lines(invoice: Invoice) -> list[tuple]:
    """(description, unit price, net, tax) of each line, in order."""
    return [
        (ln.description, ln.unit_price, ln.net_minor, ln.tax_minor)
        for ln in invoice.lines.order_by("position", "pk")
    ]


def money_fields(invoice: Invoice) -> tuple:
    invoice.refresh_from_db()
    return (
        invoice.status,
        invoice.subtotal_minor,
        invoice.tax_minor,
        invoice.total_minor,
        invoice.paid_minor,
        invoice.balance_minor,
    )


def run_counts(run: BillingRun) -> tuple:
    run.refresh_from_db()
    return (
        run.status,
        run.total_clients,
        run.done_clients,
        run.invoices,
        run.held,
        run.errors,
    )


def run_invoices(run: BillingRun) -> list[Invoice]:
    return list(Invoice.objects.filter(billing_run=run).order_by("pk"))


def periods(service: Service) -> list[tuple]:
    return list(
        BilledPeriod.objects.filter(service=service)
        .order_by("period_start")
        .values_list("period_start", "period_end", "invoice_id")
    )


def due(service: Service) -> tuple:
    service.refresh_from_db()
    return (service.period_start, service.next_due_on)


@pytest.fixture(autouse=True)
def week_in_advance(settings):
    settings.BILLING_DAYS_IN_ADVANCE = 7


@pytest.fixture
def sell(clerk):
    """Order products for a client on a day, accept the order and issue its invoices."""

    def make(client, day, *items, promo_code="") -> list[Service]:
        with at(day):
            order = services.order_create(
                by=clerk, client=client, items=list(items), promo_code=promo_code
            )
            order = services.order_accept(by=clerk, order=order)
            for invoice in order.invoices.order_by("pk"):
                services.invoice_issue(by=clerk, invoice=invoice)
        return list(Service.objects.filter(order=order).order_by("pk"))

    return make


@pytest.fixture
def sales(make_user):
    """A salesman who sees only the clients he owns and may not invoice."""
    return make_user("sam", role="sales", unit="team_a")


def _cycled_product(code: str, name: str) -> Product:
    """A product sold monthly for 100.00, quarterly for 270.00 and yearly for 1000.00."""
    product = Product.objects.create(code=code, name=name, taxable=False)
    for cycle, amount in [
        (Cycle.MONTHLY, 10000),
        (Cycle.QUARTERLY, 27000),
        (Cycle.ANNUAL, 100000),
    ]:
        Price.objects.create(
            product=product, currency="RUB", cycle=cycle, amount_minor=amount, setup_fee_minor=0
        )
    return product


# ----------------------------------------------------------------------------- 1. grouping


def test_separate_invoices_give_each_due_service_its_own_invoice_others_one_per_client(
    make_client, catalog, sell
):
    # Given a client who wants an invoice per service and one who does not, each with
    # a disk and two users of the standard access, renewing on 1 March
    apart = make_client("Apart", separate_invoices=True)
    together = make_client("Together")
    users = {"options": {"users": 2}}
    apart_disk, apart_users = sell(apart, d(2019, 2, 1), item(catalog.disk, Cycle.MONTHLY),
                                   item(catalog.standard, Cycle.MONTHLY, **users))  # fmt: skip
    together_disk, together_users = sell(
        together,
        d(2019, 2, 1),
        item(catalog.disk, Cycle.MONTHLY),
        item(catalog.standard, Cycle.MONTHLY, **users),
    )
    # the orders made two drafts for Apart and one for Together, issued as 1, 2 and 3
    assert list(Invoice.objects.order_by("pk").values_list("number", "client_id")) == [
        ("1", apart.pk),
        ("2", apart.pk),
        ("3", together.pk),
    ]

    # When the run of 22 February bills March
    run = run_on(FEBRUARY_22)

    # Then Apart gets two invoices with one line each, Together one with both lines
    assert run_counts(run) == ("done", 2, 2, 3, 0, 0)
    first, second, third = run_invoices(run)
    assert [(i.client_id, i.number, i.issued_on, i.due_on, i.period_start, i.total_minor)
            for i in (first, second, third)] == [
        (apart.pk, "4", FEBRUARY_22, d(2019, 3, 1), d(2019, 3, 1), 36000),
        (apart.pk, "5", FEBRUARY_22, d(2019, 3, 1), d(2019, 3, 1), 30000),
        (together.pk, "6", FEBRUARY_22, d(2019, 3, 1), d(2019, 3, 1), 66000),
    ]  # fmt: skip
    assert lines(first) == [(f"{DISK} (01/03/2019 – 31/03/2019)", Decimal("360.00"), 36000, 0)]
    assert lines(second) == [(f"{STANDARD} (01/03/2019 – 31/03/2019)", Decimal("300.00"), 30000, 0)]
    assert lines(third) == [
        (f"{DISK} (01/03/2019 – 31/03/2019)", Decimal("360.00"), 36000, 0),
        (f"{STANDARD} (01/03/2019 – 31/03/2019)", Decimal("300.00"), 30000, 0),
    ]
    # each period points at the invoice that billed it
    assert periods(apart_disk)[-1] == (d(2019, 3, 1), d(2019, 3, 31), first.pk)
    assert periods(apart_users)[-1] == (d(2019, 3, 1), d(2019, 3, 31), second.pk)
    assert periods(together_disk)[-1] == (d(2019, 3, 1), d(2019, 3, 31), third.pk)
    assert periods(together_users)[-1] == (d(2019, 3, 1), d(2019, 3, 31), third.pk)
    assert sorted(
        LedgerEntry.objects.filter(invoice__billing_run=run).values_list(
            "invoice__number", "kind", "amount_minor"
        )
    ) == [("4", "invoice", 36000), ("5", "invoice", 30000), ("6", "invoice", 66000)]
    assert ledger_verify().ok


def test_services_in_two_currencies_get_one_invoice_per_currency(clerk, make_client, catalog, sell):
    # Given a client with a disk in roubles who then moved to euros and took euro hosting
    client = make_client()
    (disk,) = sell(client, d(2019, 2, 1), item(catalog.disk, Cycle.MONTHLY))
    client = client_update(client=client, by=clerk, currency="EUR")
    (hosting,) = sell(client, d(2019, 2, 1), item(catalog.euro_only, Cycle.MONTHLY))

    # When the run bills March
    run = run_on(FEBRUARY_22)

    # Then there is one invoice in each currency, never a line of one in the other
    assert run_counts(run) == ("done", 1, 1, 2, 0, 0)
    roubles, euros = run_invoices(run)
    assert [(i.currency, i.number, i.total_minor, i.balance_minor, i.status)
            for i in (roubles, euros)] == [
        ("RUB", "3", 36000, 36000, "unpaid"),
        ("EUR", "4", 1000, 1000, "unpaid"),
    ]  # fmt: skip
    assert lines(roubles) == [(f"{DISK} (01/03/2019 – 31/03/2019)", Decimal("360.00"), 36000, 0)]
    assert lines(euros) == [("Euro hosting (01/03/2019 – 31/03/2019)", Decimal("10.00"), 1000, 0)]
    assert sorted(
        LedgerEntry.objects.filter(client=client, kind="invoice", invoice__billing_run=run)
        .values_list("currency", "amount_minor")
    ) == [("EUR", 1000), ("RUB", 36000)]  # fmt: skip
    assert (due(disk), due(hosting)) == (
        (d(2019, 3, 1), d(2019, 4, 1)),
        (d(2019, 3, 1), d(2019, 4, 1)),
    )


# ----------------------------------------------------------------------------- 2. promo, tax


def test_renewal_keeps_the_recurring_promo_drops_the_setup_fee_and_taxes_each_line(
    make_client, catalog, promos, sell, vat_ru
):
    # Given a VAT payer with REF5 (5 %, recurring) on the tax-inclusive hotel product (setup
    # fee 2000.00) and three users of the standard access, both for half a year
    client = make_client()
    hotel, users = sell(
        client,
        d(2019, 2, 1),
        item(catalog.hotel, Cycle.SEMI_ANNUAL),
        item(catalog.standard, Cycle.SEMI_ANNUAL, options={"users": 3}),
        promo_code="REF5",
    )
    first = Invoice.objects.get(client=client)
    # the first invoice has the setup fee, and the promo on it too
    assert [(desc, net, tax) for desc, _price, net, tax in lines(first)] == [
        (f"{HOTEL} (01/02/2019 – 31/07/2019)", 1115000, 223000),
        (f"{HOTEL}: setup fee", 166667, 33333),
        ("Promo code REF5: 5 %", -64083, -12817),
        (f"{STANDARD} (01/02/2019 – 31/07/2019)", 0, 0),
        ("Количество пользователей: 3 × 800.00 RUB", 240000, 48000),
        ("Promo code REF5: 5 %", -12000, -2400),
    ]

    # When the run of 25 July bills the half year from 1 August
    run = run_on(d(2019, 7, 25))

    # Then the renewal has each product at its price, the promo again, no setup fee, and VAT
    # taken out of the tax-inclusive lines and added to the others
    assert run_counts(run) == ("done", 1, 1, 1, 0, 0)
    (renewal,) = run_invoices(run)
    assert lines(renewal) == [
        (f"{HOTEL} (01/08/2019 – 31/01/2020)", Decimal("13380.00"), 1115000, 223000),
        ("Promo code REF5: 5 %", Decimal("-669.00"), -55750, -11150),
        (f"{STANDARD} (01/08/2019 – 31/01/2020)", Decimal("2400.00"), 240000, 48000),
        ("Promo code REF5: 5 %", Decimal("-120.00"), -12000, -2400),
    ]
    assert [
        (ln.taxable, ln.tax_inclusive, ln.tax_rate, ln.service_id)
        for ln in renewal.lines.order_by("position")
    ] == [
        (True, True, Decimal(20), hotel.pk),
        (True, True, Decimal(20), hotel.pk),
        (True, False, Decimal(20), users.pk),
        (True, False, Decimal(20), users.pk),
    ]
    assert money_fields(renewal) == ("unpaid", 1287250, 257450, 1544700, 0, 1544700)
    assert (renewal.due_on, renewal.period_start) == (d(2019, 8, 1), d(2019, 8, 1))
    assert (due(hotel), due(users)) == (
        (d(2019, 8, 1), d(2020, 2, 1)),
        (d(2019, 8, 1), d(2020, 2, 1)),
    )


def test_renewal_of_an_untaxed_product_has_no_tax_even_for_a_vat_payer(
    make_client, catalog, promos, sell, vat_ru
):
    client = make_client()
    sell(client, d(2019, 2, 1), item(catalog.disk, Cycle.MONTHLY), promo_code="REF5")

    run = run_on(FEBRUARY_22)

    (renewal,) = run_invoices(run)
    assert lines(renewal) == [
        (f"{DISK} (01/03/2019 – 31/03/2019)", Decimal("360.00"), 36000, 0),
        ("Promo code REF5: 5 %", Decimal("-18.00"), -1800, 0),
    ]
    assert list(renewal.lines.values_list("taxable", "tax_rate")) == [
        (False, Decimal(0)),
        (False, Decimal(0)),
    ]
    assert money_fields(renewal) == ("unpaid", 34200, 0, 34200, 0, 34200)


def test_a_promo_that_is_not_recurring_is_left_off_the_renewal(make_client, catalog, promos, sell):
    client = make_client()
    sell(client, d(2019, 2, 1), item(catalog.disk, Cycle.MONTHLY), promo_code="WELCOME500")
    first = Invoice.objects.get(client=client)
    assert [(desc, net) for desc, _p, net, _t in lines(first)] == [
        (f"{DISK} (01/02/2019 – 28/02/2019)", 36000),
        ("Promo code WELCOME500", -36000),
    ]

    (renewal,) = run_invoices(run_on(FEBRUARY_22))

    assert lines(renewal) == [(f"{DISK} (01/03/2019 – 31/03/2019)", Decimal("360.00"), 36000, 0)]
    assert renewal.total_minor == 36000


def _address(clerk, client, kind: str, city: str, region: str = ""):
    return address_add(client=client, by=clerk, type=kind, line1="1 Main street", city=city,
                       region=region, country="RU")  # fmt: skip


def test_renewals_are_taxed_at_the_rate_of_the_billing_address_region(
    clerk, make_client, catalog, sell, vat_ru
):
    # Given a client billed at an address in Crimea (10 %) and writing from Moscow (20 %)
    client = make_client()
    _address(clerk, client, "correspondence", "Москва")
    _address(clerk, client, "billing", "Симферополь", "Крым")
    sell(client, d(2019, 2, 1), item(catalog.standard, Cycle.MONTHLY, options={"users": 2}))
    first = Invoice.objects.get(client=client)
    assert (first.subtotal_minor, first.tax_minor) == (30000, 3000)

    (renewal,) = run_invoices(run_on(FEBRUARY_22))

    assert lines(renewal) == [
        (f"{STANDARD} (01/03/2019 – 31/03/2019)", Decimal("300.00"), 30000, 3000)
    ]
    assert renewal.lines.get().tax_rate == Decimal(10)
    assert money_fields(renewal) == ("unpaid", 30000, 3000, 33000, 0, 33000)


def test_renewals_are_taxed_like_the_first_invoice_when_there_is_no_billing_address(
    clerk, make_client, catalog, sell, vat_ru
):
    # Given a client with a site in Crimea (10 %), added first, and a correspondence
    # address in Moscow (20 %), but no billing address
    client = make_client()
    _address(clerk, client, "site", "Симферополь", "Крым")
    _address(clerk, client, "correspondence", "Москва")
    sell(client, d(2019, 2, 1), item(catalog.standard, Cycle.MONTHLY, options={"users": 2}))
    first = Invoice.objects.get(client=client)
    assert (first.subtotal_minor, first.tax_minor) == (30000, 6000)

    (renewal,) = run_invoices(run_on(FEBRUARY_22))

    # Then the renewal is taxed as the order's invoice was
    assert money_fields(renewal) == ("unpaid", 30000, 6000, 36000, 0, 36000)


# ----------------------------------------------------------------------------- 3. credit


def _credit(clerk, client, amount: str) -> None:
    services.credit_adjust(by=clerk, client=client, amount=rub(amount), reason="Goodwill")


def _credit_applied(client) -> list[tuple]:
    return list(
        LedgerEntry.objects.filter(client=client, kind="credit_applied")
        .order_by("seq")
        .values_list("account", "amount_minor", "invoice_id", "reference")
    )


def test_credit_is_applied_to_the_new_invoice_unless_the_client_opted_out(
    clerk, make_client, catalog, sell
):
    # Given three clients with a disk of 360.00: one holding 100.00 of credit, one 500.00,
    # and one 100.00 who does not want credit applied automatically
    some = make_client("Some credit")
    plenty = make_client("Plenty of credit")
    opted_out = make_client("Opted out", auto_apply_credit=False)
    for client, amount in [(some, "100.00"), (plenty, "500.00"), (opted_out, "100.00")]:
        sell(client, d(2019, 2, 1), item(catalog.disk, Cycle.MONTHLY))
        with at(d(2019, 2, 1)):
            _credit(clerk, client, amount)

    # When the run bills March
    run = run_on(FEBRUARY_22)

    # Then the credit pays what it can of each new invoice of those who let it
    assert run_counts(run) == ("done", 3, 3, 3, 0, 0)
    partly, wholly, untouched = run_invoices(run)
    assert [i.client_id for i in (partly, wholly, untouched)] == [some.pk, plenty.pk, opted_out.pk]
    assert money_fields(partly) == ("partially_paid", 36000, 0, 36000, 10000, 26000)
    assert money_fields(wholly) == ("paid", 36000, 0, 36000, 36000, 0)
    assert money_fields(untouched) == ("unpaid", 36000, 0, 36000, 0, 36000)
    assert (partly.paid_on, wholly.paid_on, untouched.paid_on) == (None, FEBRUARY_22, None)
    assert _credit_applied(some) == [
        ("credit", 10000, None, partly.number),
        ("receivable", -10000, partly.pk, partly.number),
    ]
    assert _credit_applied(plenty) == [
        ("credit", 36000, None, wholly.number),
        ("receivable", -36000, wholly.pk, wholly.number),
    ]
    assert _credit_applied(opted_out) == []
    assert [credit_held([c.pk], "RUB").minor for c in (some, plenty, opted_out)] == [
        0,
        14000,
        10000,
    ]
    assert list(Receipt.objects.values_list("invoice_id", "amount_minor")) == [(wholly.pk, 36000)]
    assert sorted(
        Event.objects.filter(type="credit.applied").values_list("client_id", "amount_minor")
    ) == sorted([(some.pk, 10000), (plenty.pk, 36000)])
    assert ledger_verify().ok


def test_credit_smaller_than_the_first_of_separate_invoices_does_not_stop_the_second(
    clerk, make_client, catalog, sell
):
    # Given a client with separate invoices, two services renewing together, 100.00 credit
    client = make_client(separate_invoices=True)
    sell(client, d(2019, 2, 1), item(catalog.disk, Cycle.MONTHLY),
         item(catalog.standard, Cycle.MONTHLY, options={"users": 2}))  # fmt: skip
    with at(d(2019, 2, 1)):
        _credit(clerk, client, "100.00")

    # When the run bills March
    run = run_on(FEBRUARY_22)

    # Then both invoices go out; the credit pays part of the first, the second is owed
    assert list(run.failures.values_list("reason", flat=True)) == []
    assert run_counts(run) == ("done", 1, 1, 2, 0, 0)
    first, second = run_invoices(run)
    assert money_fields(first) == ("partially_paid", 36000, 0, 36000, 10000, 26000)
    assert money_fields(second) == ("unpaid", 30000, 0, 30000, 0, 30000)
    assert credit_held([client.pk], "RUB").minor == 0


def test_credit_that_came_with_a_merged_client_is_applied_too(clerk, make_client, catalog, sell):
    # Given a client with a disk, and a duplicate of it holding 100.00 of credit merged in
    client = make_client("Survivor")
    sell(client, d(2019, 2, 1), item(catalog.disk, Cycle.MONTHLY))
    duplicate = make_client("Duplicate", email="duplicate@example.com")
    with at(d(2019, 2, 1)):
        _credit(clerk, duplicate, "100.00")
        client_merge(survivor=client, merged=duplicate, by=clerk)
    assert credit_held(history_ids(client), "RUB") == rub("100.00")

    # When the run bills March
    (renewal,) = run_invoices(run_on(FEBRUARY_22))

    # Then the credit the client holds pays part of it, as it would for its own credit
    assert money_fields(renewal) == ("partially_paid", 36000, 0, 36000, 10000, 26000)
    assert credit_held(history_ids(client), "RUB") == rub("0.00")


# ----------------------------------------------------------------------------- 4. holds


def _sanity_reason(price: str) -> str:
    return (
        f"{DISK} is billed {price} RUB a period, more than 3 times its catalogue price 360.00 RUB."
    )


def test_a_price_far_above_the_catalogue_is_held_as_a_draft_and_issued_by_a_person(
    clerk, make_client, catalog, sell
):
    # Given disks sold at 1500.00, at exactly three times 360.00, and a kopeck above that
    far_above = make_client("Far above")
    at_limit = make_client("At the limit")
    just_above = make_client("Just above")
    held_disk, _, _ = [
        sell(client, d(2019, 2, 1), item(catalog.disk, Cycle.MONTHLY, price_override=rub(price)))[0]
        for client, price in [(far_above, "1500.00"), (at_limit, "1080.00"),
                              (just_above, "1080.01")]
    ]  # fmt: skip
    numbers_before = sorted(Invoice.objects.values_list("number_value", flat=True))
    assert numbers_before == [1, 2, 3]

    # When the run bills March
    run = run_on(FEBRUARY_22)

    # Then the two above the limit wait as drafts with the reason; the one at it goes out
    assert run_counts(run) == ("done", 3, 3, 1, 2, 0)
    held, issued, also_held = run_invoices(run)
    assert [(i.client_id, i.status, i.number, i.number_value, i.total_minor, i.balance_minor,
             i.issued_on, i.due_on, i.hold_reason) for i in (held, issued, also_held)] == [
        (far_above.pk, "draft", "", None, 150000, 0, FEBRUARY_22, d(2019, 3, 1),
         _sanity_reason("1500.00")),
        (at_limit.pk, "unpaid", "4", 4, 108000, 108000, FEBRUARY_22, d(2019, 3, 1), ""),
        (just_above.pk, "draft", "", None, 108001, 0, FEBRUARY_22, d(2019, 3, 1),
         _sanity_reason("1080.01")),
    ]  # fmt: skip
    assert list(LedgerEntry.objects.filter(invoice__billing_run=run).values_list(
        "invoice_id", "amount_minor")) == [(issued.pk, 108000)]  # fmt: skip
    assert sorted(
        Event.objects.filter(type="invoice.held").values_list(
            "client_id", "subject_id", "amount_minor", "details"
        )
    ) == sorted([
        (far_above.pk, str(held.pk), 150000, {"reason": _sanity_reason("1500.00")}),
        (just_above.pk, str(also_held.pk), 108001, {"reason": _sanity_reason("1080.01")}),
    ])  # fmt: skip
    assert not Event.objects.filter(type="invoice.issued", subject_id=str(held.pk)).exists()
    # the period counts as billed: the service moved on
    assert periods(held_disk)[-1] == (d(2019, 3, 1), d(2019, 3, 31), held.pk)
    assert due(held_disk) == (d(2019, 3, 1), d(2019, 4, 1))

    # And runs again the same day and the next bill nothing more
    for day in (FEBRUARY_22, d(2019, 2, 23)):
        assert run_counts(run_on(day)) == ("done", 0, 0, 0, 0, 0)
    assert Invoice.objects.filter(client=far_above).count() == 2
    assert BilledPeriod.objects.filter(service=held_disk).count() == 2

    # When a clerk checks the held draft and issues it
    with at(d(2019, 2, 25)):
        services.invoice_issue(by=clerk, invoice=held)

    # Then it takes the next number, loses its hold and is owed
    held.refresh_from_db()
    assert (held.number, held.status, held.hold_reason, held.balance_minor, held.issued_on) == (
        "5",
        "unpaid",
        "",
        150000,
        FEBRUARY_22,
    )
    assert list(LedgerEntry.objects.filter(invoice=held).values_list("kind", "amount_minor")) == [
        ("invoice", 150000)
    ]
    assert ledger_verify().ok


def test_a_due_date_moved_back_into_a_billed_period_is_held_with_the_overlap(
    clerk, make_client, catalog, sell
):
    # Given a disk billed up to 31 March
    client = make_client()
    (disk,) = sell(client, d(2019, 2, 1), item(catalog.disk, Cycle.MONTHLY))
    first_renewal = run_invoices(run_on(FEBRUARY_22))[0]
    assert due(disk) == (d(2019, 3, 1), d(2019, 4, 1))

    # When a clerk moves its next due date back to 15 March, and the run of 10 March comes
    with at(d(2019, 3, 5)):
        services.service_update(
            by=clerk, service=disk, next_due_on=d(2019, 3, 15), suspend_exempt_until=None
        )
    run = run_on(d(2019, 3, 10))

    # Then the invoice for 15 March – 14 April waits, saying which period it overlaps
    reason = (
        f"{DISK}: the period 2019-03-15 – 2019-04-14 overlaps one already billed "
        "(up to 2019-03-31)."
    )
    assert run_counts(run) == ("done", 1, 1, 0, 1, 0)
    (held,) = run_invoices(run)
    assert (held.status, held.number, held.hold_reason, held.total_minor, held.due_on) == (
        "draft",
        "",
        reason,
        36000,
        d(2019, 3, 15),
    )
    assert lines(held) == [(f"{DISK} (15/03/2019 – 14/04/2019)", Decimal("360.00"), 36000, 0)]
    assert not LedgerEntry.objects.filter(invoice=held).exists()
    assert Event.objects.get(type="invoice.held", subject_id=str(held.pk)).details == {
        "reason": reason
    }
    assert periods(disk) == [
        (d(2019, 2, 1), d(2019, 2, 28), Invoice.objects.get(client=client, billing_run=None).pk),
        (d(2019, 3, 1), d(2019, 3, 31), first_renewal.pk),
        (d(2019, 3, 15), d(2019, 4, 14), held.pk),
    ]
    assert due(disk) == (d(2019, 3, 15), d(2019, 4, 15))
    assert run_counts(run_on(d(2019, 3, 10))) == ("done", 0, 0, 0, 0, 0)


# ----------------------------------------------------------------------------- 5. ended


def test_a_service_terminated_after_the_run_was_queued_is_not_billed(
    clerk, make_client, catalog, sell
):
    # Given a run that listed a client whose disk and users renew on 1 March
    client = make_client()
    disk, users = sell(client, d(2019, 2, 1), item(catalog.disk, Cycle.MONTHLY),
                       item(catalog.standard, Cycle.MONTHLY, options={"users": 1}))  # fmt: skip
    lonely = make_client("Only a disk")
    (lonely_disk,) = sell(lonely, d(2019, 2, 1), item(catalog.disk, Cycle.MONTHLY))
    with at(FEBRUARY_22):
        run = billing_run.billing_run_start()
    assert run_counts(run) == ("running", 2, 0, 0, 0, 0)

    # When the disks are terminated before a worker bills the chunk
    with at(FEBRUARY_22):
        for service in (disk, lonely_disk):
            services.service_action(by=clerk, service=service, action="terminate",
                                    reason="Client left")  # fmt: skip
        billing_run.billing_run_work(run.pk)

    # Then only the users are billed; the terminated disks are left where they were
    assert run_counts(run) == ("done", 2, 2, 1, 0, 0)
    (invoice,) = run_invoices(run)
    assert (invoice.client_id, invoice.total_minor) == (client.pk, 15000)
    assert lines(invoice) == [
        (f"{STANDARD} (01/03/2019 – 31/03/2019)", Decimal("150.00"), 15000, 0)
    ]
    assert due(users) == (d(2019, 3, 1), d(2019, 4, 1))
    assert due(disk) == (d(2019, 2, 1), d(2019, 3, 1))
    assert due(lonely_disk) == (d(2019, 2, 1), d(2019, 3, 1))
    assert len(periods(disk)) == len(periods(lonely_disk)) == 1
    assert not Invoice.objects.filter(client=lonely, billing_run=run).exists()


# ----------------------------------------------------------------------------- 6. isolation


def _unpriceable(clerk, product, cycle=Cycle.MONTHLY) -> None:
    """Make live services of a product renew at the catalogue price, then remove that price."""
    price = Price.objects.get(product=product, currency="RUB", cycle=cycle)
    catalog_services.price_set(by=clerk, product=product, currency="RUB", cycle=cycle,
                               amount=price.amount, apply_to_existing=True)  # fmt: skip
    catalog_services.price_remove(by=clerk, price=price)


def test_a_client_that_cannot_be_priced_gets_no_invoice_and_the_others_are_billed(
    clerk, make_client, catalog, sell
):
    # Given a client whose users renew fine but whose disk has lost its catalogue price,
    # and a client with users only
    broken = make_client("Broken")
    users, disk = sell(broken, d(2019, 2, 1),
                       item(catalog.standard, Cycle.MONTHLY, options={"users": 1}),
                       item(catalog.disk, Cycle.MONTHLY))  # fmt: skip
    fine = make_client("Fine")
    (fine_users,) = sell(fine, d(2019, 2, 1),
                         item(catalog.standard, Cycle.MONTHLY, options={"users": 1}))  # fmt: skip
    _unpriceable(clerk, catalog.disk)
    disk.refresh_from_db()
    assert disk.reprice_at_renewal is True
    counts = billing_counts()

    # When the run bills March
    run = run_on(FEBRUARY_22)

    # Then the broken client has an error and nothing else, the fine one its invoice
    assert run_counts(run) == ("failed", 2, 2, 1, 0, 1)
    assert run.get_status_display() == "Done with errors"
    assert list(BillingRunError.objects.filter(run=run).values_list("client_id", "reason")) == [
        (broken.pk, f"{DISK} has no Monthly price in RUB any more.")
    ]
    (invoice,) = run_invoices(run)
    assert (invoice.client_id, invoice.number, invoice.total_minor) == (fine.pk, "3", 15000)
    assert billing_counts() == counts | {"invoices": 3, "issued": 3, "ledger": counts["ledger"] + 1}
    # none of the broken client's services moved on, not even the one that could be priced
    assert due(users) == due(disk) == (d(2019, 2, 1), d(2019, 3, 1))
    assert len(periods(users)) == len(periods(disk)) == 1
    disk.refresh_from_db()
    assert (disk.recurring_minor, disk.reprice_at_renewal) == (36000, True)
    assert due(fine_users) == (d(2019, 3, 1), d(2019, 4, 1))

    # And the next run tries it again, and fails it again the same way
    again = run_on(d(2019, 2, 23))
    assert run_counts(again) == ("failed", 1, 1, 0, 0, 1)
    assert list(again.failures.values_list("client_id", "reason")) == [
        (broken.pk, f"{DISK} has no Monthly price in RUB any more.")
    ]


def test_the_reason_names_the_cycle_as_people_read_it(clerk, make_client, catalog, sell):
    client = make_client()
    sell(client, d(2019, 2, 1), item(catalog.hotel, Cycle.SEMI_ANNUAL))
    _unpriceable(clerk, catalog.hotel, Cycle.SEMI_ANNUAL)

    run = run_on(d(2019, 7, 25))

    assert list(run.failures.values_list("reason", flat=True)) == [
        f"{HOTEL} has no Semi-annual price in RUB any more."
    ]


# ----------------------------------------------------------------------------- 7. prices


def test_a_price_change_for_existing_services_is_billed_at_their_next_renewal(
    clerk, make_client, catalog, sell, signed_in, api_client
):
    # Given disks: one at the catalogue price, one at an agreed price, one terminated
    client, agreed, gone = make_client("List"), make_client("Agreed"), make_client("Gone")
    (disk,) = sell(client, d(2019, 2, 1), item(catalog.disk, Cycle.MONTHLY))
    (agreed_disk,) = sell(agreed, d(2019, 2, 1),
                          item(catalog.disk, Cycle.MONTHLY, price_override=rub("300.00")))  # fmt: skip
    (gone_disk,) = sell(gone, d(2019, 2, 1), item(catalog.disk, Cycle.MONTHLY))
    with at(d(2019, 2, 10)):
        services.service_action(by=clerk, service=gone_disk, action="terminate", reason="Left")

        # When the disk goes up to 400.00 for existing services too
        catalog_services.price_set(by=clerk, product=catalog.disk, currency="RUB",
                                   cycle=Cycle.MONTHLY, amount=rub("400.00"),
                                   apply_to_existing=True)  # fmt: skip

    # Then only the live disk at the catalogue price is marked to renew at the new price
    flags = dict(Service.objects.values_list("pk", "reprice_at_renewal"))
    assert flags == {disk.pk: True, agreed_disk.pk: False, gone_disk.pk: False}
    for service in (disk, agreed_disk, gone_disk):
        service.refresh_from_db()
    assert billing_run.next_renewal_price(disk) == {"amount": rub("400.00"), "catalogue": True}
    assert billing_run.next_renewal_price(agreed_disk) == {
        "amount": rub("300.00"),
        "catalogue": False,
    }
    assert billing_run.next_renewal_price(gone_disk) is None
    # and the service page and the API say so before the run
    page = signed_in(clerk).get(reverse("billing:service", args=[disk.pk])).content.decode()
    assert re.search(r'id="service-next-price">([^<]*)<span[^>]*>([^<]*)<', page).groups() == (
        "RUB400.00 ",
        "the new catalogue price",
    )
    http = api_client(clerk)
    body = http.get(f"{API}/services/{disk.pk}").json()
    assert (body["recurring"], body["next_invoice_price"], body["renews_at_catalogue_price"]) == (
        {"amount": "360.00", "currency": "RUB"},
        {"amount": "400.00", "currency": "RUB"},
        True,
    )
    body = http.get(f"{API}/services/{agreed_disk.pk}").json()
    assert (body["next_invoice_price"], body["renews_at_catalogue_price"]) == (
        {"amount": "300.00", "currency": "RUB"},
        False,
    )

    # When the run bills March
    run = run_on(FEBRUARY_22)

    # Then the disk is billed 400.00, which is its price from now on; the agreed one 300.00
    assert run_counts(run) == ("done", 2, 2, 2, 0, 0)
    renewal, agreed_renewal = run_invoices(run)
    assert lines(renewal) == [(f"{DISK} (01/03/2019 – 31/03/2019)", Decimal("400.00"), 40000, 0)]
    assert lines(agreed_renewal) == [
        (f"{DISK} (01/03/2019 – 31/03/2019)", Decimal("300.00"), 30000, 0)
    ]
    disk.refresh_from_db()
    assert (disk.recurring_minor, disk.reprice_at_renewal, disk.next_due_on) == (
        40000,
        False,
        d(2019, 4, 1),
    )
    assert billing_run.next_renewal_price(disk) == {"amount": rub("400.00"), "catalogue": False}
    audit = AuditEntry.objects.filter(object_id=str(disk.pk), action="update").latest("id")
    assert audit.changes == {
        "next_due_on": {"before": "2019-03-01", "after": "2019-04-01"},
        "recurring_minor": {"before": 36000, "after": 40000},
    }
    # and April is billed at 400.00 without asking the catalogue again
    april = Invoice.objects.get(billing_run=run_on(d(2019, 3, 25)), client=client)
    assert [net for _desc, _price, net, _tax in lines(april)] == [40000]


def test_a_price_change_for_new_orders_only_leaves_existing_services_at_their_price(
    clerk, make_client, catalog, sell
):
    # Given a disk at 360.00
    old = make_client("Old")
    (old_disk,) = sell(old, d(2019, 2, 1), item(catalog.disk, Cycle.MONTHLY))

    # When the disk goes up to 400.00 for new orders only, and a new client orders one
    with at(d(2019, 2, 10)):
        catalog_services.price_set(by=clerk, product=catalog.disk, currency="RUB",
                                   cycle=Cycle.MONTHLY, amount=rub("400.00"))  # fmt: skip
    old_disk.refresh_from_db()
    assert old_disk.reprice_at_renewal is False
    assert billing_run.next_renewal_price(old_disk) == {
        "amount": rub("360.00"),
        "catalogue": False,
    }
    new = make_client("New")
    (new_disk,) = sell(new, d(2019, 2, 10), item(catalog.disk, Cycle.MONTHLY))
    assert new_disk.recurring_minor == 40000
    assert Invoice.objects.get(client=new).total_minor == 40000

    # Then the existing disk renews at 360.00, the new one at 400.00
    (renewal,) = run_invoices(run_on(FEBRUARY_22))
    assert (renewal.client_id, renewal.total_minor) == (old.pk, 36000)
    (new_renewal,) = run_invoices(run_on(d(2019, 3, 3)))
    assert (new_renewal.client_id, new_renewal.total_minor) == (new.pk, 40000)
    assert Service.objects.get(pk=old_disk.pk).recurring_minor == 36000


def test_a_service_cancelled_at_period_end_announces_no_next_invoice(
    clerk, api_client, make_client, catalog, sell
):
    client = make_client()
    (disk,) = sell(client, d(2019, 2, 1), item(catalog.disk, Cycle.MONTHLY))
    with at(d(2019, 2, 10)):
        disk = services.service_cancel_at_period_end(by=clerk, service=disk, reason="Moving")
    # the run indeed never bills it
    assert run_counts(run_on(FEBRUARY_22)) == ("done", 0, 0, 0, 0, 0)

    assert billing_run.next_renewal_price(disk) is None
    assert api_client(clerk).get(f"{API}/services/{disk.pk}").json()["next_invoice_price"] is None


# ----------------------------------------------------------------------------- 8. workers


def _leave_running(run: BillingRun, claimed_at: dt.datetime) -> BillingRunChunk:
    """A chunk a worker claimed at `claimed_at` and never finished."""
    chunk = run.chunks.get()
    BillingRunChunk.objects.filter(pk=chunk.pk).update(state="running", claimed_at=claimed_at)
    return chunk


def test_a_chunk_whose_worker_died_is_claimed_again_after_the_lease(make_client, catalog, sell):
    client = make_client()
    sell(client, d(2019, 2, 1), item(catalog.disk, Cycle.MONTHLY))
    now = dt.datetime(2019, 2, 22, 9, tzinfo=dt.UTC)
    with at(FEBRUARY_22):
        run = billing_run.billing_run_start()
        # a worker took the chunk exactly one lease ago: it may still be at work
        chunk = _leave_running(run, now - billing_run.LEASE)
        assert billing_run.billing_run_work(run.pk) == 0
    chunk.refresh_from_db()
    assert (chunk.state, chunk.claimed_at, chunk.finished_at) == (
        "running",
        now - billing_run.LEASE,
        None,
    )
    assert run_counts(run) == ("running", 1, 0, 0, 0, 0)
    assert not Invoice.objects.filter(billing_run=run).exists()

    # When a microsecond more has passed, the next worker takes the chunk over and bills it
    later = now + dt.timedelta(microseconds=1)
    with time_machine.travel(later, tick=False):
        assert billing_run.billing_run_work(run.pk) == 1
    chunk.refresh_from_db()
    assert (chunk.state, chunk.claimed_at, chunk.finished_at) == ("done", later, later)
    run.refresh_from_db()
    assert run_counts(run) == ("done", 1, 1, 1, 0, 0)
    assert run.finished_at == later
    (invoice,) = run_invoices(run)
    assert (invoice.client_id, invoice.total_minor) == (client.pk, 36000)


def test_a_freshly_claimed_chunk_is_left_to_its_worker(make_client, catalog, sell):
    client = make_client()
    (disk,) = sell(client, d(2019, 2, 1), item(catalog.disk, Cycle.MONTHLY))
    now = dt.datetime(2019, 2, 22, 9, tzinfo=dt.UTC)
    with at(FEBRUARY_22):
        run = billing_run.billing_run_start()
        chunk = _leave_running(run, now - dt.timedelta(minutes=1))
        assert billing_run.billing_run_work(run.pk) == 0
    chunk.refresh_from_db()
    assert (chunk.state, chunk.claimed_at) == ("running", now - dt.timedelta(minutes=1))
    assert run_counts(run) == ("running", 1, 0, 0, 0, 0)
    assert due(disk) == (d(2019, 2, 1), d(2019, 3, 1))
    assert Invoice.objects.filter(client=client).count() == 1


def test_a_worker_presumed_dead_that_finishes_late_does_not_count_the_chunk_twice(
    make_client, catalog, sell
):
    client = make_client()
    sell(client, d(2019, 2, 1), item(catalog.disk, Cycle.MONTHLY))
    now = dt.datetime(2019, 2, 22, 9, tzinfo=dt.UTC)
    with at(FEBRUARY_22):
        run = billing_run.billing_run_start()
        slow = billing_run._claim(run)  # the first worker takes the chunk, then stalls
    with time_machine.travel(now + billing_run.LEASE + dt.timedelta(seconds=1), tick=False):
        assert billing_run.billing_run_work(run.pk) == 1  # another takes it over and bills it
        billing_run._bill_chunk(run, slow)  # the first wakes up and finishes its chunk

    assert run_counts(run) == ("done", 1, 1, 1, 0, 0)
    assert Invoice.objects.filter(billing_run=run).count() == 1


# ----------------------------------------------------------------------------- 9. co-terming


def test_co_terming_on_the_first_prorates_the_first_periods_to_the_month_end(
    make_client, catalog, sell, vat_ru
):
    # Given a VAT payer whose periods start on the 1st
    client = make_client(billing_day=1)

    # When a monthly disk and the yearly hotel product are ordered on 10 February 2019
    disk, hotel = sell(client, d(2019, 2, 10), item(catalog.disk, Cycle.MONTHLY),
                       item(catalog.hotel, Cycle.ANNUAL))  # fmt: skip

    # Then the first invoice covers 10–28 February: the disk 19/28 of 360.00 (244.2857…),
    # the hotel 19/365 of 25000.00 (1301.3698…), plus the hotel's whole setup fee
    first = Invoice.objects.get(client=client)
    assert lines(first) == [
        (f"{DISK} (10/02/2019 – 28/02/2019)", Decimal("244.29"), 24429, 0),
        (f"{HOTEL} (10/02/2019 – 28/02/2019)", Decimal("1301.37"), 108447, 21690),
        (f"{HOTEL}: setup fee", Decimal("2000.00"), 166667, 33333),
    ]
    assert money_fields(first) == ("unpaid", 299543, 55023, 354566, 0, 354566)
    assert (disk.period_start, disk.next_due_on, disk.recurring_minor) == (
        d(2019, 2, 10),
        d(2019, 3, 1),
        36000,
    )
    assert (hotel.period_start, hotel.next_due_on, hotel.recurring_minor) == (
        d(2019, 2, 10),
        d(2019, 3, 1),
        2500000,
    )
    assert periods(disk) == [(d(2019, 2, 10), d(2019, 2, 28), first.pk)]
    assert periods(hotel) == [(d(2019, 2, 10), d(2019, 2, 28), first.pk)]

    # When the run bills from 1 March
    run = run_on(FEBRUARY_22)

    # Then the disk is billed for March and the hotel for 1 March 2019 – 29 February 2020
    (renewal,) = run_invoices(run)
    assert lines(renewal) == [
        (f"{DISK} (01/03/2019 – 31/03/2019)", Decimal("360.00"), 36000, 0),
        (f"{HOTEL} (01/03/2019 – 29/02/2020)", Decimal("25000.00"), 2083333, 416667),
    ]
    assert money_fields(renewal) == ("unpaid", 2119333, 416667, 2536000, 0, 2536000)
    assert renewal.due_on == d(2019, 3, 1)
    assert due(disk) == (d(2019, 3, 1), d(2019, 4, 1))
    assert due(hotel) == (d(2019, 3, 1), d(2020, 3, 1))
    assert periods(hotel)[-1] == (d(2019, 3, 1), d(2020, 2, 29), renewal.pk)


def test_co_terming_on_the_fifteenth_runs_the_first_period_to_the_fourteenth(
    make_client, catalog, sell
):
    client = make_client(billing_day=15)

    disk, hotel = sell(client, d(2019, 2, 20), item(catalog.disk, Cycle.MONTHLY),
                       item(catalog.hotel, Cycle.ANNUAL))  # fmt: skip

    # 20 February – 14 March is 23 days: 23/28 of 360.00 and 23/365 of 25000.00
    first = Invoice.objects.get(client=client)
    assert lines(first) == [
        (f"{DISK} (20/02/2019 – 14/03/2019)", Decimal("295.71"), 29571, 0),
        (f"{HOTEL} (20/02/2019 – 14/03/2019)", Decimal("1575.34"), 157534, 0),
        (f"{HOTEL}: setup fee", Decimal("2000.00"), 200000, 0),
    ]
    assert first.total_minor == 387105
    assert (disk.next_due_on, hotel.next_due_on) == (d(2019, 3, 15), d(2019, 3, 15))

    (renewal,) = run_invoices(run_on(d(2019, 3, 8)))
    assert lines(renewal) == [
        (f"{DISK} (15/03/2019 – 14/04/2019)", Decimal("360.00"), 36000, 0),
        (f"{HOTEL} (15/03/2019 – 14/03/2020)", Decimal("25000.00"), 2500000, 0),
    ]
    assert (renewal.issued_on, renewal.due_on, renewal.total_minor) == (
        d(2019, 3, 8),
        d(2019, 3, 15),
        2536000,
    )
    assert due(hotel) == (d(2019, 3, 15), d(2020, 3, 15))


def test_co_terming_a_service_ordered_on_the_billing_day_is_a_whole_cycle(
    make_client, catalog, sell
):
    client = make_client(billing_day=15)

    disk, hotel = sell(client, d(2019, 2, 15), item(catalog.disk, Cycle.MONTHLY),
                       item(catalog.hotel, Cycle.ANNUAL))  # fmt: skip

    first = Invoice.objects.get(client=client)
    assert lines(first) == [
        (f"{DISK} (15/02/2019 – 14/03/2019)", Decimal("360.00"), 36000, 0),
        (f"{HOTEL} (15/02/2019 – 14/02/2020)", Decimal("25000.00"), 2500000, 0),
        (f"{HOTEL}: setup fee", Decimal("2000.00"), 200000, 0),
    ]
    assert (disk.next_due_on, hotel.next_due_on) == (d(2019, 3, 15), d(2020, 2, 15))
    (renewal,) = run_invoices(run_on(d(2019, 3, 8)))
    assert lines(renewal) == [(f"{DISK} (15/03/2019 – 14/04/2019)", Decimal("360.00"), 36000, 0)]


# ----------------------------------------------------------------------------- 10. a year


MONTHS = {"mail": 1, "backup": 3, "hosting": 12}
PRICES = {"mail": 10000, "backup": 27000, "hosting": 100000}


def _last_day(begins: dt.date, months: int) -> dt.date:
    """The last day of a period of whole months starting on a day that every month has."""
    assert begins.day <= 28
    year, month = divmod(begins.month - 1 + months, 12)
    return begins.replace(year=begins.year + year, month=month + 1) - dt.timedelta(days=1)


def _history(client) -> list[tuple]:
    """Every invoice of a client: dates, each line's product, period and amount, total."""
    return [
        (
            inv.issued_on,
            inv.due_on,
            inv.period_start,
            [(ln.service.product.code, ln.period_start, ln.period_end, ln.net_minor)
             for ln in inv.lines.select_related("service__product").order_by("position")],
            inv.total_minor,
        )
        for inv in Invoice.objects.filter(client=client).order_by("pk")
    ]  # fmt: skip


def test_a_year_of_daily_runs_bills_every_period_once_on_the_day_it_falls_due(make_client, sell):
    # Given three products priced per month, quarter and year, bought on 10 February 2019
    # monthly, quarterly and yearly by a client on its own dates and one co-termed to the 15th
    mail, backup, hosting = (_cycled_product("mail", "Mail"),
                             _cycled_product("backup", "Backup"),
                             _cycled_product("hosting", "Hosting"))  # fmt: skip
    own = make_client("Own dates")
    aligned = make_client("Aligned", billing_day=15)
    start = d(2019, 2, 10)
    bought = [
        sell(client, start, item(mail, Cycle.MONTHLY), item(backup, Cycle.QUARTERLY),
             item(hosting, Cycle.ANNUAL))
        for client in (own, aligned)
    ]  # fmt: skip

    # When billing runs every day for 366 days, a week in advance
    for offset in range(366):
        run_on(start + dt.timedelta(days=offset))

    # Then each invoice was issued a week before its periods begin, and nothing else
    def one(issued, begins, *codes):
        billed = [(code, begins, _last_day(begins, MONTHS[code]), PRICES[code]) for code in codes]
        return (issued, begins, begins, billed, sum(amount for *_x, amount in billed))

    all_three = ("mail", "backup", "hosting")
    assert _history(own) == [
        (start, d(2019, 2, 17), start, [
            ("mail", start, d(2019, 3, 9), 10000),
            ("backup", start, d(2019, 5, 9), 27000),
            ("hosting", start, d(2020, 2, 9), 100000),
        ], 137000),
        one(d(2019, 3, 3), d(2019, 3, 10), "mail"),
        one(d(2019, 4, 3), d(2019, 4, 10), "mail"),
        one(d(2019, 5, 3), d(2019, 5, 10), "mail", "backup"),
        one(d(2019, 6, 3), d(2019, 6, 10), "mail"),
        one(d(2019, 7, 3), d(2019, 7, 10), "mail"),
        one(d(2019, 8, 3), d(2019, 8, 10), "mail", "backup"),
        one(d(2019, 9, 3), d(2019, 9, 10), "mail"),
        one(d(2019, 10, 3), d(2019, 10, 10), "mail"),
        one(d(2019, 11, 3), d(2019, 11, 10), "mail", "backup"),
        one(d(2019, 12, 3), d(2019, 12, 10), "mail"),
        one(d(2020, 1, 3), d(2020, 1, 10), "mail"),
        one(d(2020, 2, 3), d(2020, 2, 10), *all_three),
    ]  # fmt: skip
    # the co-termed client: 10–14 February prorated (5/28, 5/89 and 5/365 of the prices),
    # then everything on the 15th, billed on the 8th
    assert _history(aligned) == [
        (start, d(2019, 2, 17), start, [
            ("mail", start, d(2019, 2, 14), 1786),
            ("backup", start, d(2019, 2, 14), 1517),
            ("hosting", start, d(2019, 2, 14), 1370),
        ], 4673),
        (start, d(2019, 2, 15), d(2019, 2, 15), [
            ("mail", d(2019, 2, 15), d(2019, 3, 14), 10000),
            ("backup", d(2019, 2, 15), d(2019, 5, 14), 27000),
            ("hosting", d(2019, 2, 15), d(2020, 2, 14), 100000),
        ], 137000),
        one(d(2019, 3, 8), d(2019, 3, 15), "mail"),
        one(d(2019, 4, 8), d(2019, 4, 15), "mail"),
        one(d(2019, 5, 8), d(2019, 5, 15), "mail", "backup"),
        one(d(2019, 6, 8), d(2019, 6, 15), "mail"),
        one(d(2019, 7, 8), d(2019, 7, 15), "mail"),
        one(d(2019, 8, 8), d(2019, 8, 15), "mail", "backup"),
        one(d(2019, 9, 8), d(2019, 9, 15), "mail"),
        one(d(2019, 10, 8), d(2019, 10, 15), "mail"),
        one(d(2019, 11, 8), d(2019, 11, 15), "mail", "backup"),
        one(d(2019, 12, 8), d(2019, 12, 15), "mail"),
        one(d(2020, 1, 8), d(2020, 1, 15), "mail"),
        one(d(2020, 2, 8), d(2020, 2, 15), *all_three),
    ]  # fmt: skip
    # co-terming: every period of the aligned client ends on a 14th
    assert set(
        BilledPeriod.objects.filter(service__client=aligned).values_list(
            "period_end__day", flat=True
        )
    ) == {14}
    # no period billed twice, none skipped: each starts the day after the one before
    for service in Service.objects.all():
        spans = list(
            BilledPeriod.objects.filter(service=service)
            .order_by("period_start")
            .values_list("period_start", "period_end")
        )
        assert all(b[0] == a[1] + dt.timedelta(days=1) for a, b in itertools.pairwise(spans))
        service.refresh_from_db()
        assert service.next_due_on == spans[-1][1] + dt.timedelta(days=1)
    assert BilledPeriod.objects.count() == 2 * (13 + 5 + 2) + 3
    assert [[due(service) for service in services_] for services_ in bought] == [
        [(d(2020, 2, 10), d(2020, 3, 10)), (d(2020, 2, 10), d(2020, 5, 10)),
         (d(2020, 2, 10), d(2021, 2, 10))],
        [(d(2020, 2, 15), d(2020, 3, 15)), (d(2020, 2, 15), d(2020, 5, 15)),
         (d(2020, 2, 15), d(2021, 2, 15))],
    ]  # fmt: skip
    assert BillingRun.objects.count() == 366
    assert set(BillingRun.objects.values_list("status", "errors", "held")) == {("done", 0, 0)}
    assert ledger_verify().ok


# ----------------------------------------------------------------------------- 11. API


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


def _post_run(http):
    return http.post(f"{API}/billing-runs", "{}", content_type="application/json")


def test_api_starts_a_run_for_a_billing_clerk(clerk, api_client, make_client, catalog, sell):
    client = make_client()
    sell(client, d(2019, 2, 1), item(catalog.disk, Cycle.MONTHLY))
    http = api_client(clerk)

    with at(FEBRUARY_22):
        response = _post_run(http)

    assert response.status_code == 202, response.content
    run = BillingRun.objects.get()
    assert response.json() == {
        "id": run.pk,
        "run_date": "2019-02-22",
        "bill_until": "2019-03-01",
        "status": "done",
        "interrupted": False,
        "trigger": "api",
        "started_at": "2019-02-22T09:00:00Z",
        "finished_at": "2019-02-22T09:00:00Z",
        "total_clients": 1,
        "done_clients": 1,
        "invoices": 1,
        "held": 0,
        "errors": 0,
        "rate": 0.0,
        "failures": [],
    }
    assert (run.started_by, run.trigger) == (clerk, "api")
    (invoice,) = run_invoices(run)
    assert (invoice.client_id, invoice.total_minor, invoice.status) == (client.pk, 36000, "unpaid")


def test_api_refuses_to_start_a_run_for_a_role_that_may_not_invoice(
    sales, api_client, make_client, catalog, sell
):
    client = make_client(owner=sales)
    (disk,) = sell(client, d(2019, 2, 1), item(catalog.disk, Cycle.MONTHLY))
    counts = billing_counts()

    with at(FEBRUARY_22):
        response = _post_run(api_client(sales))

    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert response.json() == FORBIDDEN
    assert BillingRun.objects.count() == 0
    assert BillingRunChunk.objects.count() == 0
    assert billing_counts() == counts
    assert due(disk) == (d(2019, 2, 1), d(2019, 3, 1))


def test_api_shows_a_runs_progress_and_only_the_failures_of_clients_in_sight(
    clerk, sales, api_client, make_client, catalog, sell
):
    # Given two clients whose disks cannot be priced, one of them the salesman's, and one fine
    mine = make_client("Mine", owner=sales)
    theirs = make_client("Theirs")
    fine = make_client("Fine")
    for client in (mine, theirs):
        sell(client, d(2019, 2, 1), item(catalog.disk, Cycle.MONTHLY))
    sell(fine, d(2019, 2, 1), item(catalog.standard, Cycle.MONTHLY, options={"users": 1}))
    _unpriceable(clerk, catalog.disk)
    with at(FEBRUARY_22):
        run = billing_run.billing_run_start(by=clerk, trigger="api")
    clerk_http, sales_http = api_client(clerk), api_client(sales)

    # When the run has not been worked yet
    with at(FEBRUARY_22):
        waiting = clerk_http.get(f"{API}/billing-runs/{run.pk}")
    # Then it is running, with nothing done
    assert waiting.status_code == 200
    assert {k: waiting.json()[k] for k in ("status", "finished_at", "total_clients",
                                           "done_clients", "invoices", "errors", "failures",
                                           "interrupted")} == {
        "status": "running", "finished_at": None, "total_clients": 3, "done_clients": 0,
        "invoices": 0, "errors": 0, "failures": [], "interrupted": False,
    }  # fmt: skip
    # and a run that stopped making progress for longer than a lease reads as interrupted
    with at(d(2019, 2, 23)):
        assert clerk_http.get(f"{API}/billing-runs/{run.pk}").json()["interrupted"] is True

    # When it is worked
    with at(FEBRUARY_22):
        billing_run.billing_run_work(run.pk)
        seen_by_clerk = clerk_http.get(f"{API}/billing-runs/{run.pk}").json()
        seen_by_sales = sales_http.get(f"{API}/billing-runs/{run.pk}").json()

    # Then the clerk sees both failures, the salesman only his own client's
    reason = f"{DISK} has no Monthly price in RUB any more."
    common = {"status": "failed", "finished_at": "2019-02-22T09:00:00Z", "total_clients": 3,
              "done_clients": 3, "invoices": 1, "held": 0, "errors": 2, "interrupted": False}  # fmt: skip
    assert {k: seen_by_clerk[k] for k in common} == common
    assert seen_by_clerk["failures"] == [
        {"client_id": mine.pk, "reason": reason},
        {"client_id": theirs.pk, "reason": reason},
    ]
    assert {k: seen_by_sales[k] for k in common} == common
    assert seen_by_sales["failures"] == [{"client_id": mine.pk, "reason": reason}]


def test_api_a_run_that_does_not_exist_is_a_404(clerk, api_client):
    response = api_client(clerk).get(f"{API}/billing-runs/999999")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json() == NOT_FOUND


# ----------------------------------------------------------------------------- 12. pages


def test_run_list_shows_the_runs_and_the_start_button_only_to_who_may_invoice(
    clerk, sales, signed_in, make_client, catalog, sell
):
    client = make_client()
    sell(client, d(2019, 2, 1), item(catalog.disk, Cycle.MONTHLY))
    first = run_on(FEBRUARY_22)
    second = run_on(d(2019, 2, 23))

    page = signed_in(clerk).get(reverse("billing:runs"))
    assert page.status_code == 200
    html = page.content.decode()
    assert [row["run"].pk for row in page.context["rows"]] == [second.pk, first.pk]
    assert html.count('class="run-row"') == 2
    assert f"#{first.pk}</a> · 2019-02-22" in html
    assert f"#{second.pk}</a> · 2019-02-23" in html
    assert html.count('id="start-run"') == 1

    page = signed_in(sales).get(reverse("billing:runs"))
    assert page.status_code == 200
    assert 'id="start-run"' not in page.content.decode()
    assert page.content.decode().count('class="run-row"') == 2


def test_starting_a_run_from_the_page_bills_and_shows_it(
    clerk, sales, signed_in, make_client, catalog, sell
):
    client = make_client()
    sell(client, d(2019, 2, 1), item(catalog.disk, Cycle.MONTHLY))
    counts = billing_counts()

    # a salesman may not start one, and nothing happens when he tries
    with at(FEBRUARY_22):
        refused = signed_in(sales).post(reverse("billing:run_start"))
    assert refused.status_code == 403
    assert BillingRun.objects.count() == 0
    assert billing_counts() == counts

    with at(FEBRUARY_22):
        started = signed_in(clerk).post(reverse("billing:run_start"))
    run = BillingRun.objects.get()
    assert started.status_code == 302
    assert started.url == reverse("billing:run", args=[run.pk])
    assert (run.trigger, run.started_by, run.run_date) == ("staff", clerk, FEBRUARY_22)
    assert run_counts(run) == ("done", 1, 1, 1, 0, 0)
    # a GET does not start one
    assert signed_in(clerk).get(reverse("billing:run_start")).status_code == 405
    assert BillingRun.objects.count() == 1


def test_the_progress_fragment_polls_while_the_run_works_and_stops_when_it_is_done(
    clerk, signed_in, make_client, catalog, sell
):
    client = make_client()
    sell(client, d(2019, 2, 1), item(catalog.disk, Cycle.MONTHLY))
    browser = signed_in(clerk)
    with at(FEBRUARY_22):
        run = billing_run.billing_run_start(by=clerk, trigger="staff")
        url = reverse("billing:run", args=[run.pk])

        polling = browser.get(url, headers={"HX-Request": "true"})
        assert polling.status_code == 200
        assert polling.templates[0].name == "billing/_run_progress.html"
        html = polling.content.decode()
        assert html.startswith('<div id="run-progress" ')
        assert f'hx-get="{url}" hx-trigger="every 1s" hx-swap="outerHTML"' in html
        assert "0 of 1 clients" in html
        assert 'id="run-invoices">0<' in html

        billing_run.billing_run_work(run.pk)
        done = browser.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "hx-trigger" not in done
    assert "hx-get" not in done
    assert "1 of 1 clients" in done
    assert 'id="run-invoices">1<' in done
    assert 'value="100"' in done
    assert "<html" not in done


def test_the_run_page_lists_held_invoices_and_failures_within_sight(
    clerk, sales, signed_in, make_client, catalog, sell
):
    # Given a run with a held invoice and a failure for a client of the salesman, and the
    # same for a client he does not see
    mine_held = make_client("Mine held", owner=sales)
    theirs_held = make_client("Theirs held")
    mine_broken = make_client("Mine broken", owner=sales)
    theirs_broken = make_client("Theirs broken")
    for client in (mine_held, theirs_held):
        sell(client, d(2019, 2, 1),
             item(catalog.standard, Cycle.MONTHLY, options={"users": 1},
                  price_override=rub("1000.00")))  # fmt: skip
    for client in (mine_broken, theirs_broken):
        sell(client, d(2019, 2, 1), item(catalog.disk, Cycle.MONTHLY))
    _unpriceable(clerk, catalog.disk)
    run = run_on(FEBRUARY_22)
    assert run_counts(run) == ("failed", 4, 4, 0, 2, 2)
    held_mine, held_theirs = run_invoices(run)
    hold = f"{STANDARD} is billed 1000.00 RUB a period, more than 3 times its catalogue price 150.00 RUB."
    failure = f"{DISK} has no Monthly price in RUB any more."

    def listed(html: str, list_id: str) -> str:
        return re.search(rf'<ul [^>]*id="{list_id}">(.*?)</ul>', html, re.S).group(1)

    # When the clerk opens the run
    page = signed_in(clerk).get(reverse("billing:run", args=[run.pk]))
    html = page.content.decode()
    # Then both held drafts and both failures are there, and the run is done with errors
    # (newest first, as invoices are listed everywhere)
    assert [i.pk for i in page.context["held"]] == [held_theirs.pk, held_mine.pk]
    assert [f.client_id for f in page.context["failures"]] == [mine_broken.pk, theirs_broken.pk]
    held_html = listed(html, "held-invoices")
    assert held_html.count("list-group-item") == 2
    for invoice, name in [(held_mine, "Mine held"), (held_theirs, "Theirs held")]:
        assert (
            f'href="{reverse("billing:invoice", args=[invoice.pk])}">Draft invoice #{invoice.pk}</a>'
            in held_html
        )
        assert name in held_html
    assert held_html.count(hold.replace('"', "&quot;")) == 2
    failures_html = listed(html, "run-failures")
    assert failures_html.count("Mine broken") == failures_html.count("Theirs broken") == 1
    assert failures_html.count(failure) == 2
    assert '<span class="badge text-bg-danger">Done with errors</span>' in html

    # When the salesman opens it, he sees only his clients' draft and failure
    page = signed_in(sales).get(reverse("billing:run", args=[run.pk]))
    assert [i.pk for i in page.context["held"]] == [held_mine.pk]
    assert [f.client_id for f in page.context["failures"]] == [mine_broken.pk]
    html = page.content.decode()
    assert "Theirs" not in html
    assert 'id="run-held">2<' in html and 'id="run-errors">2<' in html


def test_the_invoice_list_shows_the_invoices_of_one_run(
    clerk, signed_in, make_client, catalog, sell
):
    client = make_client()
    sell(client, d(2019, 2, 1), item(catalog.disk, Cycle.MONTHLY))
    march = run_on(FEBRUARY_22)
    april = run_on(d(2019, 3, 25))
    (march_invoice,) = run_invoices(march)
    (april_invoice,) = run_invoices(april)
    browser = signed_in(clerk)

    for run, invoice in [(march, march_invoice), (april, april_invoice)]:
        page = browser.get(reverse("billing:invoices") + f"?run={run.pk}")
        assert page.status_code == 200
        assert [i.pk for i in page.context["page"]] == [invoice.pk]
    everything = browser.get(reverse("billing:invoices"))
    assert len(list(everything.context["page"])) == 3
    assert [
        i.pk for i in browser.get(reverse("billing:invoices") + "?run=999999").context["page"]
    ] == []


def test_api_a_run_with_nothing_due_is_done_at_once(clerk, api_client):
    with at(FEBRUARY_22):
        response = _post_run(api_client(clerk))
    assert response.status_code == 202
    body = json.loads(response.content)
    assert (body["status"], body["total_clients"], body["invoices"], body["finished_at"]) == (
        "done",
        0,
        0,
        "2019-02-22T09:00:00Z",
    )
    assert BillingRunChunk.objects.count() == 0
