"""Overdue handling and dunning (BIL-12, BIL-13): timed steps on each unpaid invoice.

Each client follows the scenario of its group (or the default one): reminders before and
after the due date, late fees, suspension of the services the invoice bills, hand-over to
collections and write-off. A step is taken once per invoice (a unique row records it,
skipped or done, with why), so the daily job may run any number of times. Paying the
minimum ends the scenario; paying in full, or the minimum, unsuspends what it suspended.
"""

from __future__ import annotations

import datetime as dt
import string
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import Prefetch, Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clientbase.billing.models import (
    DunningScenario,
    DunningStep,
    DunningStepDone,
    Invoice,
    InvoiceLine,
    Service,
)
from clientbase.clients.models import Client
from clientbase.core import clock
from clientbase.core.audit import audit_create, audit_delete, audit_update, snapshot
from clientbase.core.errors import ConflictError, ServiceError
from clientbase.core.events import record_event, register_event_type
from clientbase.core.models import EventCategory
from clientbase.core.money import Money, round_half_up

Action = DunningStep.Action
# A late fee is billed with the usual week to pay it.
FEE_DUE_DAYS = 7

for code, message in [
    ("dunning.reminded", gettext_lazy("Reminder for invoice %(reference)s sent to %(to)s")),
    ("dunning.fee", gettext_lazy("Late fee %(fee)s charged for invoice %(reference)s")),
    ("dunning.collections", gettext_lazy("Invoice %(reference)s handed to collections")),
]:
    register_event_type(code, EventCategory.AR, message)


def _scenarios() -> tuple[dict[int, DunningScenario], DunningScenario | None]:
    """Scenarios by client group, and the default one."""
    by_group, default = {}, None
    for scenario in DunningScenario.objects.prefetch_related(
        "groups", Prefetch("steps", queryset=DunningStep.objects.order_by("day", "id"))
    ):
        for group in scenario.groups.all():
            by_group[group.pk] = scenario
        if scenario.is_default:
            default = scenario
    return by_group, default


def scenario_for(client: Client, scenarios=None) -> DunningScenario | None:
    """The scenario a client follows: its group's, else the default."""
    by_group, default = scenarios or _scenarios()
    return by_group.get(client.group_id, default)


def _dunnable(prefix: str = "") -> Q:
    """Invoices dunning still acts on: open, owing, not ended, not a credit top-up."""
    return Q(
        **{f"{prefix}status__in": Invoice.OPEN, f"{prefix}balance_minor__gt": 0,
           f"{prefix}dunning_ended": False, f"{prefix}credit_top_up": False}
    )  # fmt: skip


@dataclass
class DunningSummary:
    """What one day's dunning did, by step action and outcome."""

    done: Counter
    unsuspended: int = 0

    def __str__(self) -> str:
        parts = [f"{action}: {count}" for action, count in sorted(self.done.items())]
        parts.append(f"unsuspended: {self.unsuspended}")
        return ", ".join(parts)


def dunning_run(day: dt.date | None = None, batch: int = 500) -> DunningSummary:
    """Take every step that falls due on the unpaid invoices; safe to run again."""
    day = day or clock.today()
    scenarios = _scenarios()
    everything = [s for s in scenarios[0].values()] + ([scenarios[1]] if scenarios[1] else [])
    days = [step.day for scenario in everything for step in scenario.steps.all()]
    summary = DunningSummary(Counter())
    if days:
        last_pk = 0
        while True:
            invoices = list(
                Invoice.objects.select_related("client")
                .filter(_dunnable(), pk__gt=last_pk, due_on__lte=day - dt.timedelta(min(days)))
                .order_by("pk")[:batch]
            )
            if not invoices:
                break
            last_pk = invoices[-1].pk
            done = set(
                DunningStepDone.objects.filter(invoice__in=invoices).values_list(
                    "invoice_id", "step_id"
                )
            )
            for invoice in invoices:
                scenario = scenario_for(invoice.client, scenarios)
                if scenario is None:
                    continue
                overdue = (day - invoice.due_on).days
                for step in scenario.steps.all():
                    if step.day <= overdue and (invoice.pk, step.pk) not in done:
                        outcome = take_step(invoice, step, day)
                        if outcome:
                            summary.done[outcome] += 1
    summary.unsuspended = unsuspend_paid(day=day)
    return summary


def take_step(invoice: Invoice, step: DunningStep, day: dt.date) -> str:
    """One step on one invoice, in its own transaction; what happened, or "" if nothing."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().select_related("client").get(pk=invoice.pk)
        if not Invoice.objects.filter(_dunnable(), pk=invoice.pk).exists():
            return ""
        try:
            with transaction.atomic():
                record = DunningStepDone.objects.create(invoice=invoice, step=step, done_on=day)
        except IntegrityError:  # taken meanwhile by another run of the job
            return ""
        result, outcome = _ACTIONS[step.action](invoice, step, day)
        record.result = str(result)[:500]
        record.save(update_fields=["result"])
        return outcome


def _skipped(reason) -> tuple[str, str]:
    return _("Skipped: %(reason)s") % {"reason": reason}, "skipped"


def _remind(invoice: Invoice, step: DunningStep, day: dt.date) -> tuple[str, str]:
    client = invoice.client
    if client.no_overdue_notices or Client.Notice.REMINDERS in (client.notices_opted_out or []):
        return _skipped(_("the client receives no payment reminders"))
    address = (invoice.snapshot.get("email") or client.email or "").strip()
    if not address:
        return _skipped(_("the client has no email address"))
    values = {
        "client": invoice.snapshot.get("name", client.name),
        "invoice": invoice.number,
        "balance": str(invoice.balance),
        "due_on": invoice.due_on.isoformat(),
        "days": str((day - invoice.due_on).days),
    }
    # $-placeholders only: a template can fill in values, never reach into objects.
    subject = string.Template(step.subject or _("Reminder: invoice $invoice")).safe_substitute(
        values
    )
    body = string.Template(
        step.body
        or _("Dear $client,\n\ninvoice $invoice of $balance was due on $due_on. Please pay it.")
    ).safe_substitute(values)
    transaction.on_commit(lambda: _send(subject, body, address))
    record_event(
        "dunning.reminded",
        by=None,
        client=client,
        subject=invoice,
        reference=invoice.number,
        details={"to": address, "step": step.day},
    )
    return _("Reminder sent to %(to)s") % {"to": address}, "reminded"


def _send(subject: str, body: str, address: str) -> None:
    message = EmailMessage(
        subject,
        body,
        settings.DEFAULT_FROM_EMAIL,
        [address],
        headers={"Auto-Submitted": "auto-generated"},
    )
    message.send()


def _fee(invoice: Invoice, step: DunningStep, day: dt.date) -> tuple[str, str]:
    from clientbase.billing.services import LineSpec, invoice_create, invoice_issue

    if invoice.client.late_fee_exempt:
        return _skipped(_("the client pays no late fees"))
    if invoice.late_fee_for_id:
        return _skipped(_("a late fee draws no late fee"))
    fee = Money.zero(invoice.currency)
    if step.fee_amount:
        fee += Money.from_decimal(step.fee_amount, invoice.currency)
    if step.fee_percent:
        share = Decimal(invoice.balance_minor) * step.fee_percent / 100
        fee += Money(round_half_up(share), invoice.currency)
    if fee.minor <= 0:
        return _skipped(_("the fee comes to nothing"))
    label = _("Late fee for invoice %(invoice)s") % {"invoice": invoice.number}
    draft = invoice_create(
        by=None,
        client=invoice.client,
        lines=[LineSpec(label, fee.amount, taxable=False)],
        issued_on=day,
        due_on=day + dt.timedelta(days=FEE_DUE_DAYS),
    )
    Invoice.objects.filter(pk=draft.pk).update(late_fee_for=invoice)
    charged = invoice_issue(by=None, invoice=draft)
    record_event(
        "dunning.fee",
        by=None,
        client=invoice.client,
        subject=invoice,
        amount=fee,
        reference=invoice.number,
        details={"fee": str(fee), "fee_invoice": charged.number},
    )
    return _("Late fee %(fee)s: invoice %(number)s") % {"fee": fee, "number": charged.number}, "fee"


def _suspend(invoice: Invoice, step: DunningStep, day: dt.date) -> tuple[str, str]:
    from clientbase.billing.services import _transition

    client = invoice.client
    if client.suspend_exempt_until and client.suspend_exempt_until >= day:
        return _skipped(
            _("the client is exempt until %(day)s") % {"day": client.suspend_exempt_until}
        )
    # Only what this invoice bills: a prepaid service never pays for another one's debt.
    billed = InvoiceLine.objects.filter(invoice=invoice).values("service")
    services = (
        Service.objects.select_for_update(of=("self",))
        .select_related("product", "client")
        .filter(pk__in=billed, status=Service.Status.ACTIVE)
        .order_by("pk")
    )
    suspended, exempt = [], []
    for service in services:
        if service.suspend_exempt_until and service.suspend_exempt_until >= day:
            exempt.append(service.product.name)
            continue
        reason = _("Invoice %(invoice)s unpaid") % {"invoice": invoice.number}
        _transition(service, "suspend", reason, None, for_debt=True)
        suspended.append(service.product.name)
    result = _("Suspended: %(names)s") % {"names": ", ".join(suspended) or "—"}
    if exempt:
        result += "; " + _("exempt: %(names)s") % {"names": ", ".join(exempt)}
    return result, "suspended" if suspended else "skipped"


def _collections(invoice: Invoice, step: DunningStep, day: dt.date) -> tuple[str, str]:
    scenario = step.scenario
    minimum = round_half_up(Decimal(invoice.balance_minor) * scenario.minimum_percent / 100)
    invoice.status = Invoice.Status.COLLECTIONS
    invoice.collections_floor_minor = invoice.balance_minor - minimum
    invoice.version += 1
    invoice.save(update_fields=["status", "collections_floor_minor", "version"])
    record_event(
        "dunning.collections",
        by=None,
        client=invoice.client,
        subject=invoice,
        amount=invoice.balance,
        reference=invoice.number,
    )
    return _("Handed to collections; minimum payment %(minimum)s") % {
        "minimum": invoice.money(minimum)
    }, "collections"


def _write_off(invoice: Invoice, step: DunningStep, day: dt.date) -> tuple[str, str]:
    from clientbase.billing.models import CreditNote
    from clientbase.billing.services import credit_note_create

    amount = invoice.balance
    note = credit_note_create(
        by=None,
        invoice=invoice,
        amount=amount,
        reason=_("Written off %(days)s days after the due date")
        % {"days": (day - invoice.due_on).days},
        kind=CreditNote.Kind.WRITE_OFF,
    )
    return _("Written off %(amount)s: %(number)s") % {
        "amount": amount,
        "number": note.number,
    }, "written_off"


_ACTIONS = {
    Action.REMIND: _remind,
    Action.FEE: _fee,
    Action.SUSPEND: _suspend,
    Action.COLLECTIONS: _collections,
    Action.WRITE_OFF: _write_off,
}


def unsuspend_paid(
    *, client: Client | None = None, clients: list[int] | None = None, day=None, by=None
) -> int:
    """Reactivate the services dunning suspended once no invoice that suspended them still
    owes (paid, or its minimum paid); inside the caller's transaction when it has one."""
    from clientbase.billing.services import _transition

    still_owing = DunningStepDone.objects.filter(
        _dunnable("invoice__"), step__action=Action.SUSPEND
    ).values("invoice")
    services = Service.objects.filter(
        status=Service.Status.SUSPENDED, suspended_for_debt=True
    ).exclude(invoice_lines__invoice__in=still_owing)
    if client is not None:
        services = services.filter(client=client)
    if clients is not None:
        services = services.filter(client_id__in=clients)
    count = 0
    with transaction.atomic():
        # By id in a subquery: PostgreSQL locks no rows of a DISTINCT query.
        for service in (
            Service.objects.select_for_update(of=("self",))
            .select_related("product", "client")
            .filter(pk__in=services.values("pk"))
            .order_by("pk")
        ):
            _transition(service, "unsuspend", _("The unpaid invoice is settled"), by)
            count += 1
    return count


@dataclass(frozen=True)
class CollectionsBar:
    """The account bar of a client with money overdue."""

    days_past_due: int
    owed: list[Money]
    minimum: list[Money]
    in_collections: bool
    next_steps: list[tuple[dt.date, str, str]]  # (day, action label, invoice number)


def collections_bar(client: Client, *, today: dt.date | None = None) -> CollectionsBar | None:
    """Days past due, amount owed, minimum payment to leave collections, next two steps."""
    today = today or clock.today()
    invoices = list(Invoice.objects.filter(_dunnable(), client=client).order_by("due_on", "pk"))
    overdue = [i for i in invoices if i.due_on < today]
    if not overdue:
        return None
    owed: dict[str, int] = {}
    minimum: dict[str, int] = {}
    for invoice in overdue:
        owed[invoice.currency] = owed.get(invoice.currency, 0) + invoice.balance_minor
        if invoice.status == Invoice.Status.COLLECTIONS:
            left = invoice.balance_minor - (invoice.collections_floor_minor or 0)
            minimum[invoice.currency] = minimum.get(invoice.currency, 0) + max(0, left)
    scenario = scenario_for(client)
    upcoming = []
    if scenario is not None:
        done = set(
            DunningStepDone.objects.filter(invoice__in=invoices).values_list(
                "invoice_id", "step_id"
            )
        )
        for invoice in invoices:
            for step in scenario.steps.all():
                if (invoice.pk, step.pk) not in done:
                    when = max(today, invoice.due_on + dt.timedelta(days=step.day))
                    upcoming.append((when, str(step.get_action_display()), invoice.number))
    upcoming.sort()
    return CollectionsBar(
        days_past_due=(today - overdue[0].due_on).days,
        owed=[Money(v, c) for c, v in sorted(owed.items())],
        minimum=[Money(v, c) for c, v in sorted(minimum.items())],
        in_collections=bool(minimum),
        next_steps=upcoming[:2],
    )


# ----------------------------------------------------------------------------- set-up


def scenario_save(
    *,
    by,
    scenario: DunningScenario | None = None,
    name: str,
    groups=(),
    minimum_percent: int = 100,
    is_default: bool = False,
) -> DunningScenario:
    """Create or change a scenario; a client group follows at most one."""

    name = (name or "").strip()
    if not name:
        raise ServiceError(_("Name the scenario."), field="name")
    if not 1 <= int(minimum_percent) <= 100:
        raise ServiceError(_("The minimum is between 1 and 100 %."), field="minimum_percent")
    groups = list(groups)
    with transaction.atomic():
        taken = DunningScenario.objects.filter(groups__in=groups)
        if scenario is not None:
            taken = taken.exclude(pk=scenario.pk)
        if clash := taken.first():
            raise ServiceError(
                _("A group follows one scenario; %(other)s already has it.") % {"other": clash},
                field="groups",
            )
        if (
            DunningScenario.objects.filter(name__iexact=name)
            .exclude(pk=getattr(scenario, "pk", None))
            .exists()
        ):
            raise ServiceError(_("Another scenario has this name."), field="name")
        if is_default:
            DunningScenario.objects.filter(is_default=True).exclude(
                pk=getattr(scenario, "pk", None)
            ).update(is_default=False)
        before = snapshot(scenario) if scenario is not None else None
        scenario = scenario or DunningScenario()
        scenario.name, scenario.minimum_percent = name, int(minimum_percent)
        scenario.is_default = is_default
        scenario.save()
        scenario.groups.set(groups)
        if before is None:
            audit_create(scenario, by=by)
        else:
            audit_update(scenario, before, by=by)
    return scenario


def step_add(
    *,
    by,
    scenario: DunningScenario,
    day: int,
    action: str,
    subject: str = "",
    body: str = "",
    fee_amount: Decimal | None = None,
    fee_percent: Decimal | None = None,
) -> DunningStep:
    """Add a timed step to a scenario, checked for what its action needs."""

    if action not in Action.values:
        raise ServiceError(_("Unknown action."), field="action")
    if not -90 <= int(day) <= 3650:
        raise ServiceError(_("Between 90 days before and 3650 days after."), field="day")
    if action != Action.REMIND and int(day) < 0:
        raise ServiceError(_("Only a reminder can come before the due date."), field="day")
    if action == Action.FEE:
        if not fee_amount and not fee_percent:
            raise ServiceError(_("Give a fixed fee, a percentage or both."), field="fee_amount")
        if fee_amount is not None and fee_amount < 0:
            raise ServiceError(_("A fee is not negative."), field="fee_amount")
        if fee_percent is not None and not 0 <= fee_percent <= 100:
            raise ServiceError(_("A percentage is between 0 and 100."), field="fee_percent")
    else:
        fee_amount = fee_percent = None
    with transaction.atomic():
        if DunningStep.objects.filter(scenario=scenario, day=day, action=action).exists():
            raise ServiceError(_("The scenario already has this step on this day."), field="day")
        step = DunningStep.objects.create(
            scenario=scenario,
            day=int(day),
            action=action,
            subject=(subject or "").strip()[:200] if action == Action.REMIND else "",
            body=(body or "").strip() if action == Action.REMIND else "",
            fee_amount=fee_amount,
            fee_percent=fee_percent,
        )
        audit_create(step, by=by)
    return step


def step_delete(*, by, step: DunningStep) -> None:
    """Remove a step; what it already did on invoices stays recorded."""

    with transaction.atomic():
        if step.done.exists():
            raise ConflictError(
                _("This step was already taken on invoices: keep it, or make a new scenario."),
                field="step",
            )
        audit_delete(step, by=by)
        step.delete()
