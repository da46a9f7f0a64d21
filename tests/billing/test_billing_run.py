"""The billing run (BIL-4): due services invoiced exactly once, in chunks, with history."""

import datetime as dt

import pytest
import time_machine

from clientbase.billing import run as billing_run
from clientbase.billing import services
from clientbase.billing.ledger import ledger_verify
from clientbase.billing.models import (
    BilledPeriod,
    BillingRun,
    Invoice,
    LedgerEntry,
    Service,
)
from clientbase.catalog.models import Cycle
from clientbase.core.models import AuditEntry, Event


def at(day: dt.date):
    """Stand the clock still at 09:00 UTC of a day."""
    return time_machine.travel(dt.datetime.combine(day, dt.time(9), tzinfo=dt.UTC), tick=False)


@pytest.fixture
def sell(clerk):
    """Sell products to a client on a day, accept the order and issue its first invoice."""

    def make(client, day, *items, promo_code=""):
        with at(day):
            order = services.order_create(
                by=clerk, client=client, items=list(items), promo_code=promo_code
            )
            order = services.order_accept(by=clerk, order=order)
            for invoice in order.invoices.all():
                services.invoice_issue(by=clerk, invoice=invoice)
        return list(Service.objects.filter(order=order).order_by("pk"))

    return make


def run_on(day: dt.date) -> BillingRun:
    with at(day):
        return billing_run.billing_run_now()


def renewals(client) -> list[tuple]:
    return [
        (inv.number, inv.issued_on, inv.due_on, inv.total_minor, inv.status,
         [(ln.description, ln.net_minor, ln.tax_minor) for ln in inv.lines.all()])
        for inv in Invoice.objects.filter(client=client, billing_run__isnull=False).order_by("pk")
    ]  # fmt: skip


def test_due_services_are_invoiced_once_with_numbers_ledger_and_history(
    settings, make_client, catalog, sell, vat_ru
):
    settings.BILLING_DAYS_IN_ADVANCE = 7
    client = make_client()
    disk, _hotel = sell(
        client,
        dt.date(2019, 2, 1),
        services.ItemSpec(catalog.disk, Cycle.MONTHLY),
        services.ItemSpec(catalog.hotel, Cycle.SEMI_ANNUAL),
    )
    first_number = Invoice.objects.get(client=client).number_value
    # a week before 1 March the disk falls due; the hotel only in August
    run = run_on(dt.date(2019, 2, 22))
    assert (run.status, run.total_clients, run.done_clients, run.invoices, run.held,
            run.errors, run.bill_until) == ("done", 1, 1, 1, 0, 0, dt.date(2019, 3, 1))  # fmt: skip
    (invoice,) = Invoice.objects.filter(billing_run=run)
    assert renewals(client) == [
        (str(first_number + 1), dt.date(2019, 2, 22), dt.date(2019, 3, 1), 36000, "unpaid",
         [("Пакет дискового пространства 5ГБ (01/03/2019 – 31/03/2019)", 36000, 0)])
    ]  # fmt: skip
    disk.refresh_from_db()
    assert (disk.period_start, disk.next_due_on) == (dt.date(2019, 3, 1), dt.date(2019, 4, 1))
    assert list(BilledPeriod.objects.filter(service=disk).values_list(
        "period_start", "period_end", "invoice_id")) == [
        (dt.date(2019, 2, 1), dt.date(2019, 2, 28), Invoice.objects.get(client=client, billing_run=None).pk),
        (dt.date(2019, 3, 1), dt.date(2019, 3, 31), invoice.pk),
    ]  # fmt: skip
    entry = LedgerEntry.objects.get(invoice=invoice)
    assert (entry.kind, entry.amount_minor, entry.reference) == ("invoice", 36000, invoice.number)
    assert ledger_verify().ok
    event = Event.objects.get(type="invoice.issued", subject_id=str(invoice.pk))
    assert (event.amount_minor, event.reference, event.client_id) == (
        36000,
        invoice.number,
        client.pk,
    )
    audit = AuditEntry.objects.filter(object_id=str(disk.pk), action="update").latest("id")
    assert audit.changes == {"next_due_on": {"before": "2019-03-01", "after": "2019-04-01"}}
    # a second run the same day, and the next day, find nothing more to bill
    again = run_on(dt.date(2019, 2, 22))
    assert (again.status, again.total_clients, again.invoices) == ("done", 0, 0)
    assert run_on(dt.date(2019, 2, 23)).invoices == 0
    assert Invoice.objects.filter(client=client).count() == 2
