"""Every write to activities: log, schedule, complete (ACT-4)."""

import datetime as dt

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from clientbase.accounts.models import User
from clientbase.clients.models import Client
from clientbase.core import clock
from clientbase.core.audit import audit_create
from clientbase.core.errors import ServiceError
from clientbase.sales.models import Activity, Deal, Lead


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
