"""Every write to activities: log, schedule, change, complete, delete, remind (ACT-4, ACT-5),
and the reorder reminders (SAL-7)."""

import datetime as dt
import logging

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import translation
from django.utils.timezone import localtime
from django.utils.translation import gettext as _

from clientbase.accounts.models import User
from clientbase.clients.models import Client
from clientbase.core import clock
from clientbase.core.audit import audit_create, audit_delete, audit_update, snapshot
from clientbase.core.errors import ServiceError
from clientbase.core.visibility import get_visible_or_404
from clientbase.sales.models import Activity, Deal, Lead, ReorderRule

log = logging.getLogger(__name__)


def _subject(subject: str) -> str:
    subject = " ".join((subject or "").split())
    if not subject:
        raise ServiceError(_("Say what the activity is about."), field="subject")
    return subject[:200]


def _org_unit_id(by: User | None, owner: User | None, client, lead, deal) -> int:
    for record in (deal, lead, client):
        if record is not None:
            return record.org_unit_id
    for person in (owner, by):
        if person is not None and person.org_unit_id is not None:
            return person.org_unit_id
    raise ServiceError(_("Choose who the activity is for."), field="owner")


def activity_create(
    *,
    by: User | None,
    kind: str,
    subject: str,
    due_at: dt.datetime | None = None,
    body: str = "",
    duration_minutes: int = 0,
    done: bool = False,
    outcome: str = "",
    remind_at: dt.datetime | None = None,
    client: Client | None = None,
    lead: Lead | None = None,
    deal: Deal | None = None,
    owner: User | None = None,
    origin_key: str = "",
) -> Activity:
    """Log something that happened (done=True) or schedule something to do.

    Against a deal, the deal's client or lead is filled in, so the activity shows on every
    card it concerns. An `origin_key` makes the call idempotent: automation that runs twice
    finds the activity the first run made.
    """
    if kind not in Activity.Kind.values:
        raise ServiceError(_("Choose what kind of activity it is."), field="kind")
    if outcome not in Activity.Outcome.values:
        raise ServiceError(_("Choose an outcome from the list."), field="outcome")
    subject = _subject(subject)
    if deal is not None:
        client = client or deal.client
        lead = lead or deal.lead
    if client is None and lead is not None and lead.client_id:
        client = lead.client
    now = clock.now()
    due_at = due_at or now
    if remind_at is not None and remind_at > due_at:
        raise ServiceError(_("The reminder must come before the activity."), field="remind_at")
    owner = owner or by
    if origin_key:
        found = Activity.objects.filter(origin_key=origin_key).first()
        if found is not None:
            return found
    activity = Activity(
        kind=kind,
        subject=subject,
        body=body or "",
        due_at=due_at,
        duration_minutes=max(0, int(duration_minutes or 0)),
        done_at=now if done else None,
        outcome=outcome,
        remind_at=remind_at,
        client=client,
        lead=lead,
        deal=deal,
        owner=owner,
        org_unit_id=_org_unit_id(by, owner, client, lead, deal),
        created_by=by,
        created_at=now,
        origin_key=origin_key[:120],
    )
    try:
        with transaction.atomic():
            activity.save()
            audit_create(activity, by=by)
    except IntegrityError:
        if origin_key:
            # A concurrent run made the same automatic activity a moment earlier.
            return Activity.objects.get(origin_key=origin_key)
        raise
    return activity


def _locked(by: User, activity: Activity) -> Activity:
    """The activity's row, locked, if the user may see it (404 otherwise)."""
    return get_visible_or_404(Activity.objects.select_for_update(), by, pk=activity.pk)


_UNSET = object()


def activity_update(
    *,
    by: User,
    activity: Activity,
    kind: str | None = None,
    subject: str | None = None,
    due_at: dt.datetime | None = None,
    duration_minutes: int | None = None,
    outcome: str | None = None,
    body: str | None = None,
    remind_at=_UNSET,
) -> Activity:
    """Reschedule an activity or correct it; arguments left out keep their values.

    A moved reminder is armed again, so it is sent once more at its new time.
    """
    if kind is not None and kind not in Activity.Kind.values:
        raise ServiceError(_("Choose what kind of activity it is."), field="kind")
    if outcome is not None and outcome not in Activity.Outcome.values:
        raise ServiceError(_("Choose an outcome from the list."), field="outcome")
    if subject is not None:
        subject = _subject(subject)
    with transaction.atomic():
        activity = _locked(by, activity)
        before = snapshot(activity)
        armed_at = activity.remind_at
        if kind is not None:
            activity.kind = kind
        if subject is not None:
            activity.subject = subject
        if due_at is not None:
            activity.due_at = due_at
        if duration_minutes is not None:
            activity.duration_minutes = max(0, int(duration_minutes))
        if outcome is not None:
            activity.outcome = outcome
        if body is not None:
            activity.body = body
        if remind_at is not _UNSET:
            activity.remind_at = remind_at
        if activity.remind_at is not None and activity.remind_at > activity.due_at:
            raise ServiceError(_("The reminder must come before the activity."), field="remind_at")
        if activity.remind_at != armed_at:
            activity.reminded_at = None
        activity.save()
        audit_update(activity, before, by=by)
    return activity


def activity_complete(
    *, by: User, activity: Activity, outcome: str = "", body: str = ""
) -> Activity:
    """Tick an activity done; done twice keeps the first time and outcome."""
    if outcome not in Activity.Outcome.values:
        raise ServiceError(_("Choose an outcome from the list."), field="outcome")
    with transaction.atomic():
        activity = _locked(by, activity)
        if activity.done_at is not None:
            return activity
        before = snapshot(activity)
        activity.done_at = clock.now()
        activity.outcome = outcome or activity.outcome or Activity.Outcome.DONE
        if body:
            activity.body = f"{activity.body}\n\n{body}".strip() if activity.body else body
        activity.save(update_fields=["done_at", "outcome", "body"])
        audit_update(activity, before, by=by)
    return activity


def activity_delete(*, by: User, activity: Activity) -> None:
    """Delete an activity not yet done; done ones are history and stay."""
    with transaction.atomic():
        activity = _locked(by, activity)
        if activity.done_at is not None:
            raise ServiceError(_("A done activity is history: it cannot be deleted."))
        audit_delete(activity, by=by)
        activity.delete()


REMINDER_BATCH = 500


def _mail_reminders(owner: User, reminded: list[Activity]) -> None:
    """One mail to an owner listing the activities they asked to be reminded of."""
    if not owner.email:
        return
    with translation.override(owner.language or settings.LANGUAGE_CODE):
        lines = [
            f"- {localtime(a.due_at).strftime('%Y-%m-%d %H:%M')} "
            f"{a.get_kind_display()}: {a.subject}"
            for a in reminded
        ]
        subject = _("Reminder: %(subject)s") % {"subject": reminded[0].subject}
        if len(reminded) > 1:
            subject = _("Reminder: %(count)d activities coming up") % {"count": len(reminded)}
        greeting = _("Hello %(name)s,") % {"name": owner.display_name}
        body = "\n".join([greeting, "", _("You asked to be reminded of:"), "", *lines])
    message = EmailMessage(
        subject,
        body,
        settings.DEFAULT_FROM_EMAIL,
        [owner.email],
        headers={"Auto-Submitted": "auto-generated"},
    )
    try:
        message.send()
    except OSError:
        # The reminder is claimed already; one unreachable mail server must not stop the
        # mails to the other owners of the batch.
        log.exception("reminder mail to %s failed", owner.email)


def reminders_send(*, now: dt.datetime | None = None) -> int:
    """Mail each owner the undone activities whose reminder time has come, once each.

    The reminder is claimed (reminded_at set) in the transaction that reads it, with rows
    others have locked skipped, so two runs at once never mail the same reminder twice; the
    mail leaves when that transaction commits.
    """
    now = now or clock.now()
    sent = 0
    while True:
        with transaction.atomic():
            due = list(
                Activity.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("owner")
                .filter(
                    done_at__isnull=True,
                    reminded_at__isnull=True,
                    remind_at__isnull=False,
                    remind_at__lte=now,
                    owner__isnull=False,
                )
                .order_by("remind_at", "id")[:REMINDER_BATCH]
            )
            if not due:
                return sent
            Activity.objects.filter(pk__in=[a.pk for a in due]).update(reminded_at=now)
            by_owner: dict[int, list[Activity]] = {}
            for activity in due:
                by_owner.setdefault(activity.owner_id, []).append(activity)
            for reminded in by_owner.values():
                owner = reminded[0].owner
                transaction.on_commit(
                    lambda owner=owner, reminded=reminded: _mail_reminders(owner, reminded)
                )
            sent += len(due)


def _last_order_day(instant: dt.datetime) -> dt.date:
    return instant.astimezone(clock.company_timezone()).date()


def lapsed_clients(days: int, *, today: dt.date | None = None):
    """Live clients who have ordered before, but not in the last `days` days (all of them).

    Annotated with `last_order` (the time of their last accepted order).
    """
    today = today or clock.today()
    cutoff = clock.start_of_day(today - dt.timedelta(days=days))
    return (
        Client.objects.filter(status=Client.Status.ACTIVE)
        .annotate(last_order=Max("orders__created_at", filter=Q(orders__status="accepted")))
        .filter(last_order__lt=cutoff)
    )


def reorder_reminders_create(*, today: dt.date | None = None) -> int:
    """For each active rule, a to-do for the owner of each client who has stopped ordering.

    One per client, rule and last order: the origin key holds all three, so a rerun adds
    nothing, and a client who orders again and lapses again gets a new one.
    """
    today = today or clock.today()
    made = 0
    for rule in ReorderRule.objects.filter(active=True):
        clients = lapsed_clients(rule.days, today=today).select_related("owner")
        for client in clients.iterator(chunk_size=500):
            last_day = _last_order_day(client.last_order)
            key = f"reorder:{rule.pk}:{client.pk}:{last_day.isoformat()}"
            if Activity.objects.filter(origin_key=key).exists():
                continue
            activity_create(
                by=None,
                kind=Activity.Kind.TODO,
                subject=_("%(client)s has not ordered since %(day)s")
                % {"client": client.name, "day": last_day.isoformat()},
                body=_("Reorder rule: %(rule)s (%(days)d days).")
                % {"rule": rule.name, "days": rule.days},
                due_at=clock.start_of_day(today) + dt.timedelta(hours=9),
                client=client,
                owner=client.owner,
                origin_key=key,
            )
            made += 1
    return made


def reorder_rule_save(
    *, by: User, rule: ReorderRule | None, name: str, days: int, active: bool
) -> ReorderRule:
    """Create a reorder rule (rule=None) or change one."""
    name = " ".join((name or "").split())
    if not name:
        raise ServiceError(_("Give the rule a name."), field="name")
    if days < 1:
        raise ServiceError(_("Count at least one day."), field="days")
    with transaction.atomic():
        clash = ReorderRule.objects.filter(name__iexact=name)
        if rule is not None:
            clash = clash.exclude(pk=rule.pk)
        if clash.exists():
            raise ServiceError(_("Another rule has this name."), field="name")
        if rule is None:
            rule = ReorderRule.objects.create(name=name, days=days, active=active)
            audit_create(rule, by=by)
            return rule
        rule = ReorderRule.objects.select_for_update().get(pk=rule.pk)
        before = snapshot(rule)
        rule.name, rule.days, rule.active = name, days, active
        rule.save(update_fields=["name", "days", "active"])
        audit_update(rule, before, by=by)
    return rule
