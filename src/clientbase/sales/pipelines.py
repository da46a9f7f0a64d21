"""The pipelines every installation starts with, made on first use."""

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from clientbase.sales.models import Pipeline, Stage

# (name, state, probability, requirements) per stage, in board order; names are stored
# translated into the language of whoever first opens the board.
_LEAD_STAGES = [
    (gettext_noop("New"), "new", 0, []),
    (gettext_noop("In progress"), "in_progress", 0, []),
    (gettext_noop("Appointment"), "appointment", 0, []),
    (gettext_noop("Customer"), "customer", 0, ["client"]),
    (gettext_noop("Dead"), "dead", 0, []),
]
_DEAL_STAGES = [
    (gettext_noop("Needs analysis"), "open", 10, []),
    (gettext_noop("Proposal"), "open", 40, ["value"]),
    (gettext_noop("Negotiation"), "open", 70, ["value", "expected_close"]),
    (gettext_noop("Won"), "won", 100, ["value", "client"]),
    (gettext_noop("Lost"), "lost", 0, []),
]
_COLOURS = {"won": "#198754", "customer": "#198754", "lost": "#dc3545", "dead": "#dc3545"}


def _create(kind: str) -> Pipeline:
    name, stages = (
        (_("Leads"), _LEAD_STAGES) if kind == Pipeline.Kind.LEAD else (_("Sales"), _DEAL_STAGES)
    )
    pipeline = Pipeline.objects.create(name=name, kind=kind, is_default=True)
    Stage.objects.bulk_create(
        Stage(
            pipeline=pipeline,
            name=_(stage_name),
            position=position,
            state=state,
            probability=probability,
            requires=requires,
            colour=_COLOURS.get(state, "#0d6efd"),
        )
        for position, (stage_name, state, probability, requires) in enumerate(stages)
    )
    return pipeline


def default_pipeline(kind: str) -> Pipeline:
    """The default pipeline for leads or deals, created with its stages when there is none."""
    found = Pipeline.objects.filter(kind=kind, is_default=True).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return _create(kind)
    except IntegrityError:
        # Another request made it at the same moment.
        return Pipeline.objects.get(kind=kind, is_default=True)


def first_stage(pipeline: Pipeline) -> Stage:
    """Where a new record enters a pipeline."""
    return pipeline.stages.order_by("position", "id").first()


def stage_for_state(pipeline: Pipeline, state: str) -> Stage | None:
    """The first stage of a pipeline with a given meaning (e.g. where converted leads go)."""
    return pipeline.stages.filter(state=state).order_by("position", "id").first()
