"""Dunning by time travel (BIL-12, BIL-13): a client walks through reminders, a late fee,
suspension and collections, pays the minimum and gets the service back."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from clientbase.billing import dunning, services
from clientbase.billing.models import (
    DunningScenario,
    DunningStep,
    DunningStepDone,
    Invoice,
    Service,
)
from clientbase.catalog.models import Cycle
from clientbase.clients.models import ClientGroup
from clientbase.core.errors import ServiceError
from clientbase.core.models import Event

from .conftest import invoice_state, rub

START = dt.date(2019, 2, 1)


def at(day: dt.date):
    return time_machine.travel(dt.datetime.combine(day, dt.time(9), tzinfo=dt.UTC), tick=False)


@pytest.fixture
def scenario(clerk):
    """Remind 3 days before and 1 after, fee on day 7, suspend on 14, collections on 30
    with half to pay, write off on 90."""
    made = dunning.scenario_save(by=clerk, name="Standard", minimum_percent=50, is_default=True)
    for day, action, extra in [
        (-3, "remind", {"subject": "Invoice $invoice is due on $due_on"}),
        (1, "remind", {"body": "Dear $client, $balance is $days days late."}),
        (7, "fee", {"fee_amount": Decimal("500.00"), "fee_percent": Decimal("10")}),
        (14, "suspend", {}),
        (30, "collections", {}),
        (90, "write_off", {}),
    ]:
        dunning.step_add(by=clerk, scenario=made, day=day, action=action, **extra)
    return made


@pytest.fixture
def debtor(make_client, clerk, catalog, pay):
    """A client with separate invoices: the hotel (paid, prepaid) and the disk (unpaid)."""
    client = make_client(separate_invoices=True)
    with at(START):
        order = services.order_create(
            by=clerk,
            client=client,
            items=[services.ItemSpec(catalog.disk, Cycle.MONTHLY),
                   services.ItemSpec(catalog.hotel, Cycle.SEMI_ANNUAL)],
        )  # fmt: skip
        order = services.order_accept(by=clerk, order=order)
        disk_bill, hotel_bill = [
            services.invoice_issue(by=clerk, invoice=i) for i in order.invoices.order_by("pk")
        ]
        pay(client, hotel_bill.total, hotel_bill)
    return client, disk_bill, hotel_bill


def walk(first: dt.date, last: dt.date) -> dict[dt.date, str]:
    """The daily automation from one day to another; what dunning did on each day."""
    log = {}
    day = first
    while day <= last:
        with at(day):
            services.invoices_mark_overdue(day=day)
            summary = dunning.dunning_run(day)
        if summary.done or summary.unsuspended:
            log[day] = str(summary)
        day += dt.timedelta(days=1)
    return log


def steps_taken(invoice: Invoice) -> list[tuple]:
    return list(
        DunningStepDone.objects.filter(invoice=invoice)
        .order_by("done_on", "id")
        .values_list("done_on", "step__action", "result")
    )


def test_a_client_walks_through_the_scenario_and_pays_the_minimum(
    scenario, debtor, clerk, pay, mailoutbox, django_capture_on_commit_callbacks
):
    client, disk_bill, hotel_bill = debtor
    disk, hotel = Service.objects.filter(client=client).order_by("pk")
    assert (disk_bill.total_minor, disk_bill.due_on) == (36000, dt.date(2019, 2, 8))

    with django_capture_on_commit_callbacks(execute=True):
        log = walk(START, dt.date(2019, 3, 11))

    assert log == {
        dt.date(2019, 2, 5): "reminded: 1, unsuspended: 0",
        dt.date(2019, 2, 9): "reminded: 1, unsuspended: 0",
        dt.date(2019, 2, 15): "fee: 1, unsuspended: 0",
        # the fee invoice, due a week later, is reminded of like any other
        dt.date(2019, 2, 19): "reminded: 1, unsuspended: 0",
        dt.date(2019, 2, 22): "suspended: 1, unsuspended: 0",
        dt.date(2019, 2, 23): "reminded: 1, unsuspended: 0",
        # but draws no fee, and suspends nothing: it bills no service
        dt.date(2019, 3, 1): "skipped: 1, unsuspended: 0",
        dt.date(2019, 3, 8): "skipped: 1, unsuspended: 0",
        dt.date(2019, 3, 10): "collections: 1, unsuspended: 0",
    }
    fee_bill = Invoice.objects.get(late_fee_for=disk_bill)
    # 500.00 fixed + 10 % of 360.00
    assert (fee_bill.number, fee_bill.total_minor, fee_bill.issued_on, fee_bill.due_on,
            fee_bill.status) == (
        str(int(hotel_bill.number) + 1), 53600, dt.date(2019, 2, 15), dt.date(2019, 2, 22),
        "overdue")  # fmt: skip
    assert [line.description for line in fee_bill.lines.all()] == [
        f"Late fee for invoice {disk_bill.number}"
    ]
    assert steps_taken(disk_bill) == [
        (dt.date(2019, 2, 5), "remind", "Reminder sent to client1@example.com"),
        (dt.date(2019, 2, 9), "remind", "Reminder sent to client1@example.com"),
        (dt.date(2019, 2, 15), "fee", f"Late fee 536.00 RUB: invoice {fee_bill.number}"),
        (dt.date(2019, 2, 22), "suspend", "Suspended: Пакет дискового пространства 5ГБ"),
        (dt.date(2019, 3, 10), "collections",
         "Handed to collections; minimum payment 180.00 RUB"),
    ]  # fmt: skip
    assert [m.subject for m in mailoutbox] == [
        f"Invoice {disk_bill.number} is due on 2019-02-08",
        f"Reminder: invoice {disk_bill.number}",
        f"Invoice {fee_bill.number} is due on 2019-02-22",
        f"Reminder: invoice {fee_bill.number}",
    ]
    assert mailoutbox[1].body == "Dear ООО «Фабрика Бизнеса», 360.00 RUB is 1 days late."
    assert mailoutbox[1].extra_headers["Auto-Submitted"] == "auto-generated"
    # the prepaid hotel was never touched for the disk's debt
    disk.refresh_from_db()
    hotel.refresh_from_db()
    assert (disk.status, disk.suspended_for_debt, hotel.status) == ("suspended", True, "active")
    assert invoice_state(disk_bill) == ("collections", 36000, 0, 0, 0, 36000)

    with at(dt.date(2019, 3, 11)):
        bar = dunning.collections_bar(client)
    assert (bar.days_past_due, [str(m) for m in bar.owed], [str(m) for m in bar.minimum]) == (
        31, ["896.00 RUB"], ["180.00 RUB"]
    )  # fmt: skip
    assert bar.next_steps == [
        (dt.date(2019, 3, 24), "Hand to collections", fee_bill.number),
        (dt.date(2019, 5, 9), "Write off", disk_bill.number),
    ]

    # paying the minimum ends the scenario and brings the disk back at once
    with at(dt.date(2019, 3, 12)):
        pay(client, rub("180.00"), disk_bill)
    assert invoice_state(disk_bill) == ("overdue", 36000, 18000, 0, 0, 18000)
    disk_bill.refresh_from_db()
    assert disk_bill.dunning_ended is True
    disk.refresh_from_db()
    assert (disk.status, disk.suspended_for_debt) == ("active", False)
    # and no later step is taken on it, not even the write-off
    walk(dt.date(2019, 3, 12), dt.date(2019, 6, 1))
    assert [step for _day, step, _result in steps_taken(disk_bill)] == [
        "remind", "remind", "fee", "suspend", "collections"
    ]  # fmt: skip
    assert invoice_state(disk_bill) == ("overdue", 36000, 18000, 0, 0, 18000)


def test_a_client_who_never_pays_is_written_off(scenario, debtor):
    client, disk_bill, _hotel_bill = debtor
    walk(START, dt.date(2019, 5, 8))
    assert invoice_state(disk_bill)[0] == "collections"
    walk(dt.date(2019, 5, 9), dt.date(2019, 5, 9))  # 8 Feb + 90 days
    # nothing was ever paid: written off whole, the invoice is void
    assert invoice_state(disk_bill) == ("cancelled", 36000, 0, 36000, 0, 0)
    assert steps_taken(disk_bill)[-1][1:] == (
        "write_off", f"Written off 360.00 RUB: {disk_bill.credit_notes.get().number}"
    )  # fmt: skip
    # a written-off invoice suspends nothing any more
    assert Service.objects.get(client=client, product__code="disk").status == "active"


def test_flags_and_exemptions_are_honoured(
    scenario, debtor, mailoutbox, django_capture_on_commit_callbacks
):
    client, disk_bill, _hotel_bill = debtor
    client.no_overdue_notices = True
    client.late_fee_exempt = True
    client.save(update_fields=["no_overdue_notices", "late_fee_exempt"])
    disk = Service.objects.get(client=client, product__code="disk")
    disk.suspend_exempt_until = dt.date(2019, 3, 31)
    disk.save(update_fields=["suspend_exempt_until"])
    with django_capture_on_commit_callbacks(execute=True):
        walk(START, dt.date(2019, 2, 22))
    assert steps_taken(disk_bill) == [
        (dt.date(2019, 2, 5), "remind", "Skipped: the client receives no payment reminders"),
        (dt.date(2019, 2, 9), "remind", "Skipped: the client receives no payment reminders"),
        (dt.date(2019, 2, 15), "fee", "Skipped: the client pays no late fees"),
        (dt.date(2019, 2, 22), "suspend",
         "Suspended: —; exempt: Пакет дискового пространства 5ГБ"),
    ]  # fmt: skip
    assert mailoutbox == []
    assert Invoice.objects.filter(late_fee_for=disk_bill).count() == 0
    disk.refresh_from_db()
    assert disk.status == "active"


def test_a_client_exempt_until_a_date_is_not_suspended(scenario, debtor):
    client, disk_bill, _hotel_bill = debtor
    client.suspend_exempt_until = dt.date(2019, 12, 31)
    client.save(update_fields=["suspend_exempt_until"])
    walk(START, dt.date(2019, 2, 22))
    assert steps_taken(disk_bill)[-1][1:] == (
        "suspend",
        "Skipped: the client is exempt until 2019-12-31",
    )


def test_paying_in_full_unsuspends_and_running_twice_does_nothing_twice(
    scenario, debtor, pay, mailoutbox
):
    client, disk_bill, _hotel_bill = debtor
    walk(START, dt.date(2019, 2, 22))
    with at(dt.date(2019, 2, 22)):
        assert str(dunning.dunning_run(dt.date(2019, 2, 22))) == "unsuspended: 0"
    sent = len(mailoutbox)
    assert Service.objects.get(client=client, product__code="disk").status == "suspended"
    with at(dt.date(2019, 2, 23)):
        pay(client, disk_bill.total, disk_bill)
    assert Service.objects.get(client=client, product__code="disk").status == "active"
    assert len(mailoutbox) == sent
    assert Event.objects.filter(type="service.status", client=client).count() == 2


def test_a_group_follows_its_own_scenario(scenario, debtor, clerk):
    client, disk_bill, _hotel_bill = debtor
    vip = ClientGroup.objects.create(name="VIP")
    gentle = dunning.scenario_save(by=clerk, name="Gentle", groups=[vip])
    dunning.step_add(by=clerk, scenario=gentle, day=20, action="remind")
    client.group = vip
    client.save(update_fields=["group"])
    walk(START, dt.date(2019, 3, 1))
    assert [(d, a) for d, a, _r in steps_taken(disk_bill)] == [(dt.date(2019, 2, 28), "remind")]


def test_setting_up_a_scenario_refuses_what_cannot_work(scenario, clerk):
    vip = ClientGroup.objects.create(name="VIP")
    dunning.scenario_save(by=clerk, name="Gentle", groups=[vip])
    cases = [
        (lambda: dunning.scenario_save(by=clerk, name=" "), {"name": ["Name the scenario."]}),
        (lambda: dunning.scenario_save(by=clerk, name="standard"),
         {"name": ["Another scenario has this name."]}),
        (lambda: dunning.scenario_save(by=clerk, name="Hard", groups=[vip]),
         {"groups": ["A group follows one scenario; Gentle already has it."]}),
        (lambda: dunning.scenario_save(by=clerk, name="Hard", minimum_percent=0),
         {"minimum_percent": ["The minimum is between 1 and 100 %."]}),
        (lambda: dunning.step_add(by=clerk, scenario=scenario, day=5, action="fee"),
         {"fee_amount": ["Give a fixed fee, a percentage or both."]}),
        (lambda: dunning.step_add(by=clerk, scenario=scenario, day=-2, action="suspend"),
         {"day": ["Only a reminder can come before the due date."]}),
        (lambda: dunning.step_add(by=clerk, scenario=scenario, day=14, action="suspend"),
         {"day": ["The scenario already has this step on this day."]}),
        (lambda: dunning.step_add(by=clerk, scenario=scenario, day=3, action="fee",
                                  fee_percent=Decimal(101)),
         {"fee_percent": ["A percentage is between 0 and 100."]}),
    ]  # fmt: skip
    for attempt, errors in cases:
        with pytest.raises(ServiceError) as refused:
            attempt()
        assert refused.value.message_dict == errors
    assert DunningScenario.objects.count() == 2
    assert DunningStep.objects.count() == 6


def test_a_step_already_taken_cannot_be_removed(scenario, debtor, clerk):
    walk(START, dt.date(2019, 2, 5))
    taken = scenario.steps.get(day=-3)
    with pytest.raises(ServiceError) as refused:
        dunning.step_delete(by=clerk, step=taken)
    assert refused.value.message_dict == {
        "step": ["This step was already taken on invoices: keep it, or make a new scenario."]
    }
    dunning.step_delete(by=clerk, step=scenario.steps.get(day=90))
    assert scenario.steps.count() == 5
