"""Every write to deals, their moves across a pipeline, lead moves, and pipeline settings."""

import datetime as dt

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Max, Sum
from django.db.models.functions import TruncMonth
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clientbase.accounts.models import User
from clientbase.clients.models import Client
from clientbase.core import clock
from clientbase.core.audit import audit_create, audit_delete, audit_update, snapshot
from clientbase.core.errors import ConflictError, ServiceError
from clientbase.core.events import record_event, register_event_type
from clientbase.core.models import EventCategory
from clientbase.core.money import Money, currency_exponent
from clientbase.core.numbering import next_number, register_series
from clientbase.sales.activity_services import activity_create
from clientbase.sales.models import (
    Activity,
    Deal,
    DealSummary,
    Lead,
    Pipeline,
    Stage,
    StageTask,
)
from clientbase.sales.pipelines import default_pipeline, first_stage

register_series("deal", prefix="D-", padding=5)

for code, message in [
    ("deal.created", gettext_lazy("Deal %(reference)s opened: %(name)s")),
    ("deal.changed", gettext_lazy("Deal %(reference)s changed")),
    ("deal.moved", gettext_lazy("Deal %(reference)s moved to %(stage)s")),
    ("deal.won", gettext_lazy("Deal %(reference)s won: %(name)s")),
    ("deal.lost", gettext_lazy("Deal %(reference)s lost: %(reason)s")),
]:
    register_event_type(code, EventCategory.SALES, message)

NAME_MAX = 200
REASON_MAX = 200
CAMPAIGN_MAX = 100
UNSET = object()

_CLOSED_STATES = (Stage.State.WON, Stage.State.LOST)


# --- helpers --------------------------------------------------------------------------------


def _name(value: str) -> str:
    value = " ".join((value or "").split())
    if not value:
        raise ServiceError(_("Give the deal a name."), field="name")
    if len(value) > NAME_MAX:
        raise ServiceError(
            _("A name can hold at most %(max)d characters.") % {"max": NAME_MAX}, field="name"
        )
    return value


def _reason(value: str) -> str:
    value = " ".join((value or "").split())
    if len(value) > REASON_MAX:
        raise ServiceError(
            _("A reason can hold at most %(max)d characters.") % {"max": REASON_MAX},
            field="reason",
        )
    return value


def _campaign(value: str) -> str:
    value = (value or "").strip()
    if len(value) > CAMPAIGN_MAX:
        raise ServiceError(
            _("A campaign can hold at most %(max)d characters.") % {"max": CAMPAIGN_MAX},
            field="campaign",
        )
    return value


def _value(value: Money | None) -> Money | None:
    if value is not None and value.minor < 0:
        raise ServiceError(_("A deal's value cannot be negative."), field="value")
    return value


def _check_version(record: Deal | Lead, version: int | None, label: str) -> None:
    if version is not None and version != record.version:
        raise ConflictError(
            _("Somebody else changed %(what)s meanwhile; reload it and try again.")
            % {"what": label}
        )


def _human_join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return _("%(first)s and %(last)s") % {"first": ", ".join(words[:-1]), "last": words[-1]}


def _has(record: Deal | Lead, requirement: str) -> bool:
    """Whether a deal or lead meets one of a stage's requirements."""
    is_deal = isinstance(record, Deal)
    if requirement == Stage.Requirement.VALUE:
        return (record.value_minor if is_deal else record.potential_minor) > 0
    if requirement == Stage.Requirement.EXPECTED_CLOSE:
        return (record.expected_close if is_deal else record.next_step_on) is not None
    if requirement == Stage.Requirement.CLIENT:
        return record.client_id is not None
    if requirement == Stage.Requirement.OWNER:
        return record.owner_id is not None
    if requirement == Stage.Requirement.QUOTE:
        return record.quotes.exists()
    if requirement == Stage.Requirement.CONTACT:
        if is_deal:
            people = [p for p in (record.client, record.lead) if p is not None]
            return any(p.email or p.phone for p in people)
        return bool(record.email or record.phone)
    return True


def missing_for(record: Deal | Lead, stage: Stage) -> list[str]:
    """What a deal or lead lacks to enter a stage, in words (empty: nothing)."""
    required = list(stage.requires or [])
    if isinstance(record, Deal) and stage.state == Stage.State.WON:
        required.append(Stage.Requirement.CLIENT)
    if isinstance(record, Lead) and stage.state == Stage.State.CUSTOMER:
        required.append(Stage.Requirement.CLIENT)
    missing: list[str] = []
    for requirement in dict.fromkeys(required):
        if requirement in Stage.Requirement.values and not _has(record, requirement):
            missing.append(str(Stage.Requirement(requirement).label))
    return missing


def _check_entry(record: Deal | Lead, stage: Stage, reason: str) -> None:
    missing = missing_for(record, stage)
    if missing:
        raise ServiceError(
            _("%(stage)s needs %(what)s.") % {"stage": stage.name, "what": _human_join(missing)},
            field="stage",
        )
    if stage.state in (Stage.State.LOST, Stage.State.DEAD) and not reason:
        raise ServiceError(
            _("Say why before moving to %(stage)s.") % {"stage": stage.name}, field="reason"
        )


def _run_stage_tasks(record: Deal | Lead, stage: Stage, *, by: User | None) -> list[Activity]:
    """Create the stage's next steps for the owner, once per entry into the stage per day."""
    kind = "deal" if isinstance(record, Deal) else "lead"
    entered = clock.today().isoformat()
    now = clock.now()
    made = []
    for task in stage.tasks.all():
        made.append(
            activity_create(
                by=by,
                kind=task.kind if task.kind in Activity.Kind.values else Activity.Kind.TASK,
                subject=task.subject,
                due_at=now + dt.timedelta(days=task.due_in_days),
                deal=record if kind == "deal" else None,
                lead=record if kind == "lead" else None,
                owner=record.owner or by,
                origin_key=f"stage-task:{task.pk}:{kind}:{record.pk}:{entered}",
            )
        )
    return made


def _deal_event(code: str, deal: Deal, by, **details) -> None:
    if deal.client_id is None:
        return
    record_event(
        code,
        by=by,
        client=deal.client,
        subject=deal,
        amount=Money(deal.value_minor, deal.currency) if code == "deal.won" else None,
        reference=deal.number,
        details={"name": deal.name, **details},
    )


def _stage_of(pipeline: Pipeline, stage: Stage | None) -> Stage:
    if stage is None:
        stage = first_stage(pipeline)
        if stage is None:
            raise ServiceError(_("This pipeline has no stages yet."), field="pipeline")
    if stage.pipeline_id != pipeline.pk:
        raise ServiceError(_("This stage belongs to another pipeline."), field="stage")
    return stage


# --- running totals -------------------------------------------------------------------------

_SUMMARY_FIELDS = (
    "pipeline_id", "stage_id", "status", "owner_id", "org_unit_id", "currency",
    "expected_close", "closed_on", "value_minor", "probability",
)  # fmt: skip


def _summary_state(deal: Deal) -> tuple:
    return tuple(getattr(deal, name) for name in _SUMMARY_FIELDS)


def _summary_month(status: str, expected_close, closed_on) -> dt.date | None:
    day = expected_close if status == Deal.Status.OPEN else closed_on
    return day.replace(day=1) if day else None


def _summary_add(state: tuple, sign: int) -> None:
    pipeline, stage, status, owner, unit, currency, expected, closed, value, probability = state
    month = _summary_month(status, expected, closed)
    key = f"{stage}:{owner or 0}:{unit}:{currency}:{month or '-'}"
    changes = {
        "count": F("count") + sign,
        "value_minor": F("value_minor") + sign * value,
        "weighted": F("weighted") + sign * value * probability,
    }
    if DealSummary.objects.filter(key=key).update(**changes):
        return
    try:
        with transaction.atomic():
            DealSummary.objects.create(
                key=key, pipeline_id=pipeline, stage_id=stage, status=status, owner_id=owner,
                org_unit_id=unit, currency=currency, month=month, count=sign,
                value_minor=sign * value, weighted=sign * value * probability,
            )  # fmt: skip
    except IntegrityError:
        # Another move made the row a moment ago: add to it.
        DealSummary.objects.filter(key=key).update(**changes)


def _summary_change(before: tuple | None, deal: Deal) -> None:
    after = _summary_state(deal)
    if before == after:
        return
    if before is not None:
        _summary_add(before, -1)
    _summary_add(after, +1)


def deal_summary_rebuild() -> int:
    """Recount the running totals from the deals (after a bulk import; safe to rerun)."""
    open_month = TruncMonth("expected_close")
    closed_month = TruncMonth("closed_on")
    with transaction.atomic():
        DealSummary.objects.all().delete()
        rows = []
        for status, month in ((Deal.Status.OPEN, open_month), (None, closed_month)):
            deals = (
                Deal.objects.filter(status=status)
                if status
                else Deal.objects.exclude(status=Deal.Status.OPEN)
            )
            found = (
                deals.order_by()
                .annotate(month=month)
                .values("pipeline_id", "stage_id", "status", "owner_id", "org_unit_id",
                        "currency", "month")
                .annotate(n=Count("id"), total=Sum("value_minor"),
                          weighted=Sum(F("value_minor") * F("probability")))
            )  # fmt: skip
            for row in found:
                month_value = row["month"]
                if isinstance(month_value, dt.datetime):
                    month_value = month_value.date()
                rows.append(
                    DealSummary(
                        key=f"{row['stage_id']}:{row['owner_id'] or 0}:{row['org_unit_id']}:"
                        f"{row['currency']}:{month_value or '-'}",
                        pipeline_id=row["pipeline_id"],
                        stage_id=row["stage_id"],
                        status=row["status"],
                        owner_id=row["owner_id"],
                        org_unit_id=row["org_unit_id"],
                        currency=row["currency"],
                        month=month_value,
                        count=row["n"],
                        value_minor=int(row["total"] or 0),
                        weighted=int(row["weighted"] or 0),
                    )
                )
        DealSummary.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


# --- deals ----------------------------------------------------------------------------------


def deal_create(
    *,
    by: User | None,
    name: str,
    value: Money | None = None,
    pipeline: Pipeline | None = None,
    stage: Stage | None = None,
    expected_close: dt.date | None = None,
    campaign: str = "",
    client: Client | None = None,
    lead: Lead | None = None,
    owner: User | None = None,
    notes: str = "",
) -> Deal:
    """Open a deal in a pipeline (the default one, its first stage unless told otherwise)."""
    name = _name(name)
    value = _value(value)
    campaign = _campaign(campaign)
    if pipeline is None:
        pipeline = stage.pipeline if stage is not None else default_pipeline(Pipeline.Kind.DEAL)
    if pipeline.kind != Pipeline.Kind.DEAL:
        raise ServiceError(_("Choose a pipeline for deals."), field="pipeline")
    stage = _stage_of(pipeline, stage)
    if client is None and lead is not None and lead.client_id:
        client = lead.client
    currency = (
        value.currency
        if value is not None
        else (client or lead).currency
        if (client or lead) is not None
        else settings.DEFAULT_CURRENCY
    )
    owner = owner or (client.owner if client is not None and by is None else None) or by
    org_unit_id = next(
        (
            x.org_unit_id
            for x in (owner, client, lead, by)
            if x is not None and x.org_unit_id is not None
        ),
        None,
    )
    if org_unit_id is None:
        raise ServiceError(_("Choose who the deal is for."), field="owner")
    now = clock.now()
    deal = Deal(
        name=name,
        pipeline=pipeline,
        stage=stage,
        status=stage.state if stage.state in Deal.Status.values else Deal.Status.OPEN,
        value_minor=value.minor if value is not None else 0,
        currency=currency,
        probability=stage.probability,
        expected_close=expected_close,
        campaign=campaign,
        client=client,
        lead=lead,
        owner=owner,
        org_unit_id=org_unit_id,
        notes=notes or "",
        created_at=now,
        stage_entered_at=now,
    )
    _check_entry(deal, stage, reason="-")
    if deal.status != Deal.Status.OPEN:
        deal.closed_on = clock.today()
    with transaction.atomic():
        deal.number = next_number("deal").text
        deal.save()
        _summary_change(None, deal)
        audit_create(deal, by=by)
        _deal_event("deal.created", deal, by)
        _run_stage_tasks(deal, stage, by=by)
    return deal


def _locked_deal(deal: Deal) -> Deal:
    # No joins in the locking read: PostgreSQL re-reads a row another move just changed,
    # and a join in that re-read can lose the row altogether.
    return Deal.objects.select_for_update().get(pk=deal.pk)


def deal_update(
    *,
    by: User | None,
    deal: Deal,
    version: int | None = None,
    name=UNSET,
    value=UNSET,
    expected_close=UNSET,
    campaign=UNSET,
    client=UNSET,
    lead=UNSET,
    owner=UNSET,
    notes=UNSET,
) -> Deal:
    """Change a deal's details; refused with a conflict if it changed since `version`."""
    with transaction.atomic():
        deal = _locked_deal(deal)
        _check_version(deal, version, _("deal %(number)s") % {"number": deal.number})
        before = snapshot(deal)
        totals_before = _summary_state(deal)
        if name is not UNSET:
            deal.name = _name(name)
        if value is not UNSET:
            value = _value(value)
            deal.value_minor = value.minor if value is not None else 0
            if value is not None:
                deal.currency = value.currency
        if expected_close is not UNSET:
            deal.expected_close = expected_close
        if campaign is not UNSET:
            deal.campaign = _campaign(campaign)
        if client is not UNSET:
            deal.client = client
        if lead is not UNSET:
            deal.lead = lead
        if owner is not UNSET:
            deal.owner = owner
            if owner is not None and owner.org_unit_id is not None:
                deal.org_unit_id = owner.org_unit_id
        if notes is not UNSET:
            deal.notes = notes or ""
        # A deal already past a stage's gate keeps meeting it: no clearing what it requires.
        missing = missing_for(deal, deal.stage)
        if missing:
            raise ServiceError(
                _("%(stage)s needs %(what)s.")
                % {"stage": deal.stage.name, "what": _human_join(missing)}
            )
        deal.version += 1
        deal.save(
            update_fields=[
                "name", "value_minor", "currency", "expected_close", "campaign", "client",
                "lead", "owner", "org_unit", "notes", "version",
            ]
        )  # fmt: skip
        _summary_change(totals_before, deal)
        if audit_update(deal, before, by=by) is not None:
            _deal_event("deal.changed", deal, by)
    return deal


def deal_move(
    *, by: User | None, deal: Deal, stage: Stage, reason: str = "", version: int | None = None
) -> Deal:
    """Move a deal to another stage of its pipeline, with what entering the stage means."""
    reason = _reason(reason)
    with transaction.atomic():
        deal = _locked_deal(deal)
        _check_version(deal, version, _("deal %(number)s") % {"number": deal.number})
        if stage.pipeline_id != deal.pipeline_id:
            raise ServiceError(_("This stage belongs to another pipeline."), field="stage")
        if stage.pk == deal.stage_id:
            return deal
        _check_entry(deal, stage, reason)
        before = snapshot(deal)
        totals_before = _summary_state(deal)
        deal.stage = stage
        deal.status = stage.state if stage.state in Deal.Status.values else Deal.Status.OPEN
        deal.probability = stage.probability
        deal.closed_on = clock.today() if deal.status != Deal.Status.OPEN else None
        deal.lost_reason = reason if deal.status == Deal.Status.LOST else ""
        deal.stage_entered_at = clock.now()
        deal.version += 1
        deal.save(
            update_fields=[
                "stage",
                "status",
                "probability",
                "closed_on",
                "lost_reason",
                "stage_entered_at",
                "version",
            ]
        )
        _summary_change(totals_before, deal)
        audit_update(deal, before, by=by)
        if deal.status == Deal.Status.WON:
            _deal_event("deal.won", deal, by)
        elif deal.status == Deal.Status.LOST:
            _deal_event("deal.lost", deal, by, reason=reason)
        else:
            _deal_event("deal.moved", deal, by, stage=stage.name)
        _run_stage_tasks(deal, stage, by=by)
    return deal


# --- leads ----------------------------------------------------------------------------------


def lead_move(
    *, by: User | None, lead: Lead, stage: Stage, reason: str = "", version: int | None = None
) -> Lead:
    """Move a lead to another stage of its pipeline; its status follows the stage's state."""
    reason = _reason(reason)
    with transaction.atomic():
        lead = Lead.objects.select_for_update().get(pk=lead.pk)
        _check_version(lead, version, _("lead %(number)s") % {"number": lead.number})
        if stage.pipeline_id != lead.stage.pipeline_id:
            raise ServiceError(_("This stage belongs to another pipeline."), field="stage")
        if stage.pk == lead.stage_id:
            return lead
        _check_entry(lead, stage, reason)
        before = snapshot(lead)
        lead.stage = stage
        lead.status = stage.state if stage.state in Lead.Status.values else Lead.Status.NEW
        lead.dead_reason = reason if lead.status == Lead.Status.DEAD else ""
        lead.stage_entered_at = clock.now()
        lead.version += 1
        lead.save(update_fields=["stage", "status", "dead_reason", "stage_entered_at", "version"])
        audit_update(lead, before, by=by)
        _run_stage_tasks(lead, stage, by=by)
    return lead


# --- pipelines and stages (sales.settings) --------------------------------------------------


def pipeline_save(
    *,
    by: User | None,
    pipeline: Pipeline | None = None,
    name: str,
    kind: str = Pipeline.Kind.DEAL,
    active: bool = True,
) -> Pipeline:
    """Create a pipeline (with a first stage) or rename it; the kind never changes."""
    name = " ".join((name or "").split())
    if not name:
        raise ServiceError(_("Give the pipeline a name."), field="name")
    if len(name) > 100:
        raise ServiceError(_("A name can hold at most 100 characters."), field="name")
    if kind not in Pipeline.Kind.values:
        raise ServiceError(_("Choose leads or deals."), field="kind")
    try:
        with transaction.atomic():
            if pipeline is None:
                position = Pipeline.objects.filter(kind=kind).aggregate(p=Max("position"))["p"]
                pipeline = Pipeline.objects.create(
                    name=name, kind=kind, active=active, position=(position or 0) + 1
                )
                state = Stage.State.OPEN if kind == Pipeline.Kind.DEAL else Stage.State.NEW
                Stage.objects.create(
                    pipeline=pipeline, name=_("New"), state=state, colour="#0d6efd"
                )
                audit_create(pipeline, by=by)
            else:
                before = snapshot(pipeline)
                pipeline.name = name
                pipeline.active = active
                pipeline.save(update_fields=["name", "active"])
                audit_update(pipeline, before, by=by)
    except IntegrityError:
        raise ServiceError(_("A pipeline with this name exists."), field="name") from None
    return pipeline


def _stage_fields(pipeline: Pipeline, state: str, probability: int, colour: str, requires):
    allowed = Stage.DEAL_STATES if pipeline.kind == Pipeline.Kind.DEAL else Stage.LEAD_STATES
    if state not in allowed:
        raise ServiceError(_("Choose what the stage means."), field="state")
    if not isinstance(probability, int) or not 0 <= probability <= 100:
        raise ServiceError(_("A probability is from 0 to 100."), field="probability")
    colour = (colour or "").strip()
    if (
        len(colour) != 7
        or colour[0] != "#"
        or any(c not in "0123456789abcdefABCDEF" for c in colour[1:])
    ):
        raise ServiceError(_("Give a colour as #rrggbb."), field="colour")
    requires = list(dict.fromkeys(requires or []))
    unknown = [r for r in requires if r not in Stage.Requirement.values]
    if unknown:
        raise ServiceError(_("Unknown requirement: %(r)s.") % {"r": unknown[0]}, field="requires")
    return colour, requires


def stage_save(
    *,
    by: User | None,
    pipeline: Pipeline,
    stage: Stage | None = None,
    name: str,
    state: str,
    probability: int = 0,
    colour: str = "#0d6efd",
    requires: list[str] | None = None,
) -> Stage:
    """Add a stage at the end of a pipeline or change one."""
    name = " ".join((name or "").split())
    if not name:
        raise ServiceError(_("Give the stage a name."), field="name")
    if len(name) > 100:
        raise ServiceError(_("A name can hold at most 100 characters."), field="name")
    colour, requires = _stage_fields(pipeline, state, probability, colour, requires)
    try:
        with transaction.atomic():
            if stage is None:
                last = pipeline.stages.aggregate(p=Max("position"))["p"]
                stage = Stage.objects.create(
                    pipeline=pipeline,
                    name=name,
                    state=state,
                    probability=probability,
                    colour=colour,
                    requires=requires,
                    position=0 if last is None else last + 1,
                )
                audit_create(stage, by=by)
            else:
                if stage.pipeline_id != pipeline.pk:
                    raise ServiceError(_("This stage belongs to another pipeline."), field="stage")
                if state != stage.state and (stage.deals.exists() or stage.leads.exists()):
                    raise ServiceError(
                        _("Records are in this stage: its meaning cannot change."), field="state"
                    )
                before = snapshot(stage)
                stage.name, stage.state, stage.probability = name, state, probability
                stage.colour, stage.requires = colour, requires
                stage.save(update_fields=["name", "state", "probability", "colour", "requires"])
                audit_update(stage, before, by=by)
    except IntegrityError:
        raise ServiceError(
            _("A stage with this name exists in the pipeline."), field="name"
        ) from None
    return stage


def stages_reorder(*, by: User | None, pipeline: Pipeline, stage_ids: list[int]) -> None:
    """Put a pipeline's stages in the given order."""
    current = set(pipeline.stages.values_list("pk", flat=True))
    if set(stage_ids) != current or len(stage_ids) != len(current):
        raise ServiceError(_("Give every stage of the pipeline once."), field="stages")
    with transaction.atomic():
        for position, pk in enumerate(stage_ids):
            Stage.objects.filter(pk=pk).update(position=position)


def stage_delete(*, by: User | None, stage: Stage) -> None:
    """Remove a stage no deal or lead is in, nor ever was kept in."""
    with transaction.atomic():
        stage = Stage.objects.select_for_update().get(pk=stage.pk)
        if stage.deals.exists() or stage.leads.exists():
            raise ServiceError(
                _("Deals or leads are in this stage: move them first."), field="stage"
            )
        if stage.pipeline.stages.count() == 1:
            raise ServiceError(_("A pipeline keeps at least one stage."), field="stage")
        audit_delete(stage, by=by)
        stage.delete()


def stage_task_save(
    *,
    by: User | None,
    stage: Stage,
    task: StageTask | None = None,
    subject: str,
    kind: str = Activity.Kind.TASK,
    due_in_days: int = 1,
) -> StageTask:
    """Add or change a next step created when a record enters the stage."""
    subject = " ".join((subject or "").split())
    if not subject:
        raise ServiceError(_("Say what the task is."), field="subject")
    if kind not in Activity.Kind.values:
        raise ServiceError(_("Choose what kind of activity it is."), field="kind")
    if not 0 <= due_in_days <= 365:
        raise ServiceError(_("Due within 0 to 365 days."), field="due_in_days")
    with transaction.atomic():
        if task is None:
            task = StageTask.objects.create(
                stage=stage,
                subject=subject[:200],
                kind=kind,
                due_in_days=due_in_days,
                position=stage.tasks.count(),
            )
            audit_create(task, by=by)
        else:
            before = snapshot(task)
            task.subject, task.kind, task.due_in_days = subject[:200], kind, due_in_days
            task.save(update_fields=["subject", "kind", "due_in_days"])
            audit_update(task, before, by=by)
    return task


def stage_task_delete(*, by: User | None, task: StageTask) -> None:
    """Stop creating a next step; activities already made stay."""
    with transaction.atomic():
        audit_delete(task, by=by)
        task.delete()


def value_of(minor_text: str, currency: str) -> Money:
    """A Money from a decimal text a person typed (e.g. "1200.50") in a currency."""
    try:
        currency_exponent(currency)
    except Exception:
        raise ServiceError(_("Unknown currency."), field="currency") from None
    try:
        return Money.from_decimal(minor_text or "0", currency)
    except Exception:
        raise ServiceError(_("Give an amount such as 1200.50."), field="value") from None
