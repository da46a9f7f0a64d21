"""Deals, their moves, pipelines and the forecast over the API, through the same services and
visibility as the pages: a deal out of sight is a 404, a refused move a 422 problem, a move
that lost a race a 409."""

import datetime as dt
from typing import Annotated, Literal

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema, Status
from ninja.pagination import paginate
from pydantic import StringConstraints

from clientbase.accounts.models import User
from clientbase.clients.queries import clients_for
from clientbase.core import clock
from clientbase.core.api_base import Id, Page, Text, problems
from clientbase.core.errors import ServiceError
from clientbase.core.money import Money
from clientbase.core.visibility import visible
from clientbase.sales import deal_queries as queries
from clientbase.sales import deal_services as services
from clientbase.sales.models import Deal, Lead, Pipeline, Stage

router = Router(tags=["deals"])

WORK = "sales.work"
SETTINGS = "sales.settings"
Name = Annotated[Text, StringConstraints(min_length=1, max_length=200)]
Reason = Annotated[Text, StringConstraints(max_length=200)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Amount = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,15}(\.[0-9]{1,4})?$")]


def _require(request: HttpRequest, action: str) -> None:
    if not request.user.has_perm(action):
        raise PermissionDenied


def _deal(request: HttpRequest, deal_id: int) -> Deal:
    deal = (
        queries.deals_for(request.user)
        .select_related("stage", "client", "owner", "pipeline")
        .filter(pk=deal_id)
        .first()
    )
    if deal is None:
        raise Http404
    return deal


# ----------------------------------------------------------------------------- schemas


class DealOut(Schema):
    """A deal as the API shows it; `value` in major units as a decimal string."""

    id: int
    number: str
    name: str
    pipeline_id: int
    stage_id: int
    stage: str = Field(alias="stage.name")
    status: str
    value: str
    value_minor: int
    currency: str
    probability: int
    expected_close: dt.date | None
    campaign: str
    client_id: int | None
    lead_id: int | None
    owner_id: int | None
    lost_reason: str
    closed_on: dt.date | None
    notes: str
    created_at: dt.datetime
    stage_entered_at: dt.datetime
    version: int

    @staticmethod
    def resolve_value(deal) -> str:
        return f"{Money(deal.value_minor, deal.currency).amount:f}"


class DealIn(Schema):
    """A new deal; the pipeline's first stage unless `stage_id` says otherwise."""

    name: Name
    value: Amount | None = Field(None, description="in major units, e.g. 1200.50")
    currency: Currency | None = Field(None, description="default: the client's or lead's")
    pipeline_id: Id | None = None
    stage_id: Id | None = None
    expected_close: dt.date | None = None
    campaign: Annotated[Text, StringConstraints(max_length=100)] = ""
    client_id: Id | None = None
    lead_id: Id | None = None
    owner_id: Id | None = None
    notes: Annotated[Text, StringConstraints(max_length=20_000)] = ""


class DealPatch(Schema):
    """Changes to a deal's details; `version` refuses them if it changed meanwhile."""

    name: Name | None = None
    value: Amount | None = None
    currency: Currency | None = None
    expected_close: dt.date | None = None
    campaign: Annotated[Text, StringConstraints(max_length=100)] | None = None
    client_id: Id | None = None
    owner_id: Id | None = None
    notes: Annotated[Text, StringConstraints(max_length=20_000)] | None = None
    version: int | None = None


class MoveIn(Schema):
    """Where the deal goes; a reason for lost; `version` as last read, to refuse a race."""

    stage_id: Id
    reason: Reason = ""
    version: int | None = None


class StageOut(Schema):
    """A stage of a pipeline."""

    id: int
    name: str
    position: int
    state: str
    probability: int
    requires: list[str]
    colour: str


class PipelineOut(Schema):
    """A pipeline with its stages in board order."""

    id: int
    name: str
    kind: str
    is_default: bool
    active: bool
    stages: list[StageOut]

    @staticmethod
    def resolve_stages(pipeline) -> list:
        return sorted(pipeline.stages.all(), key=lambda s: (s.position, s.id))


class StageSettingsIn(Schema):
    """A stage to add or change."""

    id: Id | None = Field(None, description="an existing stage to change; none to add one")
    name: Annotated[Text, StringConstraints(min_length=1, max_length=100)]
    state: str
    probability: int = Field(0, ge=0, le=100)
    colour: str = "#0d6efd"
    requires: list[str] = []


class PipelineIn(Schema):
    """A new pipeline, optionally with its stages."""

    name: Annotated[Text, StringConstraints(min_length=1, max_length=100)]
    kind: Literal["lead", "deal"] = "deal"
    active: bool = True
    stages: list[StageSettingsIn] = []


class PipelinePatch(Schema):
    """Rename a pipeline, (de)activate it, add or change stages, put them in order."""

    name: Annotated[Text, StringConstraints(min_length=1, max_length=100)] | None = None
    active: bool | None = None
    stages: list[StageSettingsIn] = []
    order: list[Id] | None = Field(None, description="every stage id in the new board order")


class ForecastOut(Schema):
    """One month and owner in one currency."""

    month: dt.date
    owner_id: int | None
    owner_name: str
    currency: str
    weighted_minor: int
    pipeline_value_minor: int
    won_minor: int
    open_count: int
    won_count: int


# ----------------------------------------------------------------------------- helpers


def _money(value: str | None, currency: str | None, fallback: str):
    if value is None:
        return None
    return services.value_of(value, currency or fallback)


def _client(request: HttpRequest, client_id: int | None):
    if client_id is None:
        return None
    client = clients_for(request.user).filter(pk=client_id).first()
    if client is None:
        raise ServiceError(_("No client you may see has this id."), field="client_id")
    return client


def _owner(owner_id: int | None) -> User | None:
    if owner_id is None:
        return None
    owner = User.objects.filter(pk=owner_id, is_active=True).first()
    if owner is None:
        raise ServiceError(_("No such active user."), field="owner_id")
    return owner


def _rename(refused: ServiceError, **renames: str) -> ServiceError:
    errors = {renames.get(k, k): v for k, v in refused.message_dict.items()}
    return type(refused)(errors=errors)


# ----------------------------------------------------------------------------- deals


@router.get("/deals", response={200: list[DealOut], **problems(422)}, summary="List deals")
@paginate(Page)
def deal_list(
    request: HttpRequest,
    status: Literal["open", "won", "lost"] | None = None,
    owner: Id | None = None,
    pipeline: Id | None = None,
    q: Annotated[Text, StringConstraints(max_length=200)] = "",
):
    """Deals you may see, newest first; `q` finds a number or a part of the name."""
    return queries.deal_list(request.user, q=q, status=status or "", owner=owner, pipeline=pipeline)


@router.post(
    "/deals", response={201: DealOut, **problems(400, 403, 409, 422)}, summary="Open a deal"
)
def deal_create(request: HttpRequest, payload: DealIn):
    """Open a deal for a client or lead you may see."""
    _require(request, WORK)
    client = _client(request, payload.client_id)
    lead = None
    if payload.lead_id is not None:
        lead = visible(Lead.objects.all(), request.user).filter(pk=payload.lead_id).first()
        if lead is None:
            raise ServiceError(_("No lead you may see has this id."), field="lead_id")
    pipeline = stage = None
    if payload.pipeline_id is not None:
        pipeline = Pipeline.objects.filter(pk=payload.pipeline_id).first()
        if pipeline is None:
            raise ServiceError(_("No such pipeline."), field="pipeline_id")
    if payload.stage_id is not None:
        stage = Stage.objects.select_related("pipeline").filter(pk=payload.stage_id).first()
        if stage is None:
            raise ServiceError(_("No such stage."), field="stage_id")
    fallback = (client or lead).currency if (client or lead) else "EUR"
    try:
        deal = services.deal_create(
            by=request.user,
            name=payload.name,
            value=_money(payload.value, payload.currency, fallback),
            pipeline=pipeline,
            stage=stage,
            expected_close=payload.expected_close,
            campaign=payload.campaign,
            client=client,
            lead=lead,
            owner=_owner(payload.owner_id),
            notes=payload.notes,
        )
    except ServiceError as refused:
        raise _rename(refused, stage="stage_id", pipeline="pipeline_id", owner="owner_id") from None
    return Status(201, _deal(request, deal.pk))


@router.get("/deals/{deal_id}", response={200: DealOut, **problems(404, 422)}, summary="Get a deal")
def deal_get(request: HttpRequest, deal_id: Id):
    """A deal you may see."""
    return _deal(request, deal_id)


@router.patch(
    "/deals/{deal_id}",
    response={200: DealOut, **problems(400, 403, 404, 409, 422)},
    summary="Change a deal",
)
def deal_update(request: HttpRequest, deal_id: Id, payload: DealPatch):
    """Change a deal's details; a stale `version` is a 409."""
    deal = _deal(request, deal_id)
    _require(request, WORK)
    given = payload.dict(exclude_unset=True)
    changes = {}
    for key in ("name", "expected_close", "campaign", "notes"):
        if key in given:
            changes[key] = given[key]
    if "value" in given or "currency" in given:
        value = given.get("value")
        if value is None:
            value = f"{Money(deal.value_minor, deal.currency).amount:f}"
        changes["value"] = _money(value, given.get("currency"), deal.currency)
    if "client_id" in given:
        changes["client"] = _client(request, given["client_id"])
    if given.get("owner_id") is not None:
        changes["owner"] = _owner(given["owner_id"])
    services.deal_update(by=request.user, deal=deal, version=payload.version, **changes)
    return _deal(request, deal_id)


@router.post(
    "/deals/{deal_id}/move",
    response={200: DealOut, **problems(400, 403, 404, 409, 422)},
    summary="Move a deal to a stage",
)
def deal_move(request: HttpRequest, deal_id: Id, payload: MoveIn):
    """Move a deal; a stage whose requirements it lacks is a 422 naming what is missing."""
    deal = _deal(request, deal_id)
    _require(request, WORK)
    stage = Stage.objects.filter(pk=payload.stage_id).first()
    if stage is None:
        raise ServiceError(_("No such stage."), field="stage_id")
    try:
        services.deal_move(
            by=request.user,
            deal=deal,
            stage=stage,
            reason=payload.reason,
            version=payload.version,
        )
    except ServiceError as refused:
        raise _rename(refused, stage="stage_id") from None
    return _deal(request, deal_id)


# ----------------------------------------------------------------------------- pipelines


def _pipelines():
    return Pipeline.objects.prefetch_related("stages").order_by("kind", "position", "id")


@router.get(
    "/pipelines", response={200: list[PipelineOut], **problems(422)}, summary="List pipelines"
)
def pipeline_list(request: HttpRequest, kind: Literal["lead", "deal"] | None = None):
    """Pipelines with their stages in board order."""
    queries.pipelines_of(Pipeline.Kind.DEAL)
    queries.pipelines_of(Pipeline.Kind.LEAD)
    pipelines = _pipelines()
    return pipelines.filter(kind=kind) if kind else pipelines


def _save_stages(request: HttpRequest, pipeline: Pipeline, stages: list[StageSettingsIn]) -> None:
    for index, item in enumerate(stages):
        stage = None
        if item.id is not None:
            stage = pipeline.stages.filter(pk=item.id).first()
            if stage is None:
                raise ServiceError(
                    _("No stage of this pipeline has this id."), field=f"stages.{index}.id"
                )
        try:
            services.stage_save(
                by=request.user,
                pipeline=pipeline,
                stage=stage,
                name=item.name,
                state=item.state,
                probability=item.probability,
                colour=item.colour,
                requires=item.requires,
            )
        except ServiceError as refused:
            errors = {f"stages.{index}.{k}": v for k, v in refused.message_dict.items()}
            raise ServiceError(errors=errors) from None


@router.post(
    "/pipelines",
    response={201: PipelineOut, **problems(400, 403, 422)},
    summary="Create a pipeline",
)
def pipeline_create(request: HttpRequest, payload: PipelineIn):
    """A new pipeline; with `stages`, they replace the single stage it starts with."""
    _require(request, SETTINGS)
    from django.db import transaction

    with transaction.atomic():
        pipeline = services.pipeline_save(
            by=request.user, name=payload.name, kind=payload.kind, active=payload.active
        )
        if payload.stages:
            starter = pipeline.stages.get()
            _save_stages(request, pipeline, payload.stages)
            services.stage_delete(by=request.user, stage=starter)
    return Status(201, _pipelines().get(pk=pipeline.pk))


@router.patch(
    "/pipelines/{pipeline_id}",
    response={200: PipelineOut, **problems(400, 403, 404, 422)},
    summary="Change a pipeline",
)
def pipeline_update(request: HttpRequest, pipeline_id: Id, payload: PipelinePatch):
    """Rename, (de)activate, add or change stages, reorder them."""
    _require(request, SETTINGS)
    pipeline = Pipeline.objects.filter(pk=pipeline_id).first()
    if pipeline is None:
        raise Http404
    from django.db import transaction

    with transaction.atomic():
        if payload.name is not None or payload.active is not None:
            services.pipeline_save(
                by=request.user,
                pipeline=pipeline,
                name=payload.name if payload.name is not None else pipeline.name,
                kind=pipeline.kind,
                active=payload.active if payload.active is not None else pipeline.active,
            )
        _save_stages(request, pipeline, payload.stages)
        if payload.order is not None:
            try:
                services.stages_reorder(by=request.user, pipeline=pipeline, stage_ids=payload.order)
            except ServiceError as refused:
                raise _rename(refused, stages="order") from None
    return _pipelines().get(pk=pipeline.pk)


# ----------------------------------------------------------------------------- forecast


@router.get("/forecast", response={200: list[ForecastOut], **problems(422)}, summary="Forecast")
def forecast(
    request: HttpRequest,
    start: dt.date | None = None,
    months: Annotated[int, Field(ge=1, le=36)] = 12,
    pipeline: Id | None = None,
    owner: Id | None = None,
):
    """Open deals' value × probability by expected-close month and owner, won beside it."""
    start = (start or clock.today()).replace(day=1)
    rows = queries.forecast(
        request.user, start=start, months=months, pipeline=pipeline, owner=owner
    )
    return [
        ForecastOut(
            month=r.month,
            owner_id=r.owner_id,
            owner_name=r.owner_name,
            currency=r.currency,
            weighted_minor=r.weighted.minor,
            pipeline_value_minor=r.pipeline_value.minor,
            won_minor=r.won.minor,
            open_count=r.open_count,
            won_count=r.won_count,
        )
        for r in rows
    ]
