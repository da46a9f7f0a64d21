"""KPI over the API: the report for a person or team and period, and targets (SAL-8).

A person or team out of the caller's sight is a 404; setting targets needs `sales.kpi`
(403); bad input is a 422 problem at the field.
"""

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Annotated, Literal

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status
from ninja.pagination import paginate
from pydantic import StringConstraints

from clientbase.core import clock
from clientbase.core.api_base import Id, Page, problems
from clientbase.core.errors import ServiceError
from clientbase.core.money import Money
from clientbase.sales import kpi_queries as queries
from clientbase.sales.kpi_services import kpi_target_delete, kpi_target_save
from clientbase.sales.models import KpiTarget

router = Router(tags=["kpi"])

MetricCode = Literal[
    "calls",
    "meetings",
    "emails",
    "quote_emails",
    "new_leads",
    "contacted",
    "converted",
    "revenue",
    "new_buyers",
    "returning_buyers",
]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{3}$")]
Day = Annotated[dt.date, Field(ge=dt.date(2000, 1, 1), le=dt.date(2100, 12, 31))]
Amount = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=3)]
Percent = Annotated[Decimal, Field(ge=0, le=100, max_digits=5, decimal_places=2)]
_RENAMES = {"user": "user_id", "org_unit": "team_id", "value": "target"}


@contextmanager
def _fields() -> Iterator[None]:
    """Re-raise a service's refusal with each field named as the API calls it."""
    try:
        yield
    except ServiceError as refused:
        if not hasattr(refused, "error_dict"):
            raise
        errors = {_RENAMES.get(name, name): msgs for name, msgs in refused.message_dict.items()}
        raise ServiceError(errors=errors) from refused


def _require(request: HttpRequest, action: str) -> None:
    if not request.user.has_perm(action):
        raise PermissionDenied


def _money(amount: Money) -> dict:
    return {"amount": f"{amount.amount:f}", "currency": amount.currency}


# ----------------------------------------------------------------------------- schemas


class KpiAmountOut(Schema):
    """An amount: a decimal string in major units, and its currency."""

    amount: str = Field(examples=["1250.50"])
    currency: str = Field(examples=["EUR"])


class TargetOut(Schema):
    """A target for a person or a team over a period."""

    id: int
    user_id: int | None
    team_id: int | None = Field(alias="org_unit_id")
    metric: str
    period_start: dt.date
    period_end: dt.date
    target: str = Field(description="a count, or for revenue an amount in major units")
    currency: str = Field(description="for revenue; empty for counts")
    commission_percent: str

    @staticmethod
    def resolve_target(obj: KpiTarget) -> str:
        return f"{obj.money.amount:f}" if obj.money else str(obj.target)

    @staticmethod
    def resolve_commission_percent(obj: KpiTarget) -> str:
        return f"{obj.commission_percent:f}"


class TargetIn(Schema):
    """A new target: for a person (`user_id`) or a team (`team_id`)."""

    user_id: Id | None = None
    team_id: Id | None = None
    metric: MetricCode
    period_start: Day
    period_end: Day
    target: Amount = Field(description="a whole count, or for revenue an amount such as 15000.00")
    currency: Currency | Literal[""] = Field("", description="required for revenue")
    commission_percent: Percent = Decimal(0)


class TargetPatch(Schema):
    """Fields of a target to change."""

    metric: MetricCode | None = None
    period_start: Day | None = None
    period_end: Day | None = None
    target: Amount | None = None
    currency: Currency | None = None
    commission_percent: Percent | None = None


class MetricOut(Schema):
    """One measure of the report."""

    metric: str
    label: str
    definition: str
    target: str | None = Field(description="a count, or for revenue an amount")
    target_currency: str
    actual: int | None = Field(description="the count done; null for revenue")
    revenue: list[KpiAmountOut] = Field(description="for revenue: per currency")
    percent: str | None = Field(description="of the target achieved, to 0.1")
    commission: list[KpiAmountOut]


class MemberOut(Schema):
    """One person of a team's report."""

    user_id: int
    name: str
    metrics: list[MetricOut]


class KpiOut(Schema):
    """The report: whose, for which days, each measure and the commission."""

    subject: Literal["user", "team"]
    subject_id: int
    name: str
    period_start: dt.date
    period_end: dt.date
    metrics: list[MetricOut]
    commission: list[KpiAmountOut]
    members: list[MemberOut] = Field(description="for a team: each person's measures")


class KpiQuery(Schema):
    """Whose report and which days; by default yours, this month."""

    user: Id | None = Field(None, description="a person's id")
    team: Id | None = Field(None, description="a team's (org unit's) id")
    start: Day | None = Field(None, description="first day; default the 1st of this month")
    end: Day | None = Field(None, description="last day; default the end of this month")


def _metric(row: queries.MetricRow) -> dict:
    target = None
    if row.target is not None:
        target = f"{row.target_money.amount:f}" if row.is_money else str(row.target.target)
    return {
        "metric": row.metric,
        "label": row.label,
        "definition": row.definition,
        "target": target,
        "target_currency": row.target.currency if row.target is not None else "",
        "actual": row.count,
        "revenue": [_money(m) for m in row.revenue],
        "percent": None if row.percent is None else f"{row.percent:f}",
        "commission": [_money(m) for m in row.commission],
    }


# ----------------------------------------------------------------------------- the report


@router.get("/kpi", response={200: KpiOut, **problems(403, 404, 422)}, summary="KPI report")
def kpi_report(request: HttpRequest, params: Query[KpiQuery]):
    """Each measure's actual against its target for a person or team in your sight.

    Without `user` or `team` it is your own; reading someone else's needs `sales.kpi`.
    """
    if not queries.may_read_kpi(request.user):
        raise PermissionDenied
    if params.user is not None and params.team is not None:
        raise ServiceError(_("Ask for a person or a team, not both."), field="team")
    month = queries.month_period(clock.today())
    start, end = params.start or month.start, params.end or month.end
    if end < start:
        raise ServiceError(_("The period ends before it starts."), field="end")
    key = f"t{params.team}" if params.team else f"u{params.user or request.user.pk}"
    subject = queries.subject_for(request.user, key)
    if subject is None:
        raise Http404
    if subject.user != request.user:
        _require(request, queries.KPI)
    report = queries.kpi_report(request.user, subject, queries.Period(start, end))
    return {
        "subject": "team" if subject.is_team else "user",
        "subject_id": (subject.team or subject.user).pk,
        "name": subject.name,
        "period_start": start,
        "period_end": end,
        "metrics": [_metric(row) for row in report.rows],
        "commission": [_money(m) for m in report.commission],
        "members": [
            {
                "user_id": m.user.pk,
                "name": m.user.display_name,
                "metrics": [_metric(r) for r in m.rows],
            }
            for m in report.members
        ],
    }


# ----------------------------------------------------------------------------- targets


def _target(request: HttpRequest, target_id: int) -> KpiTarget:
    target = queries.targets_for(request.user).filter(pk=target_id).first()
    if target is None:
        raise Http404
    return target


def _subject(request: HttpRequest, user_id: int | None, team_id: int | None) -> dict:
    if (user_id is None) == (team_id is None):
        raise ServiceError(_("Give a person (user_id) or a team (team_id)."), field="user_id")
    if user_id is not None:
        user = queries.people_in_sight(request.user).filter(pk=user_id).first()
        if user is None:
            raise ServiceError(_("No person you may see has this id."), field="user_id")
        return {"user": user, "org_unit": None}
    team = queries.teams_in_sight(request.user).filter(pk=team_id).first()
    if team is None:
        raise ServiceError(_("No team you may see has this id."), field="team_id")
    return {"user": None, "org_unit": team}


@router.get(
    "/kpi/targets", response={200: list[TargetOut], **problems(403, 422)}, summary="List targets"
)
@paginate(Page)
def target_list(
    request: HttpRequest,
    user: Id | None = None,
    team: Id | None = None,
    metric: MetricCode | None = None,
    on: Day | None = None,
):
    """Targets of people and teams in your sight, newest period first; `on` keeps the
    periods that include a day."""
    _require(request, queries.KPI)
    targets = queries.targets_for(request.user)
    if user is not None:
        targets = targets.filter(user_id=user)
    if team is not None:
        targets = targets.filter(org_unit_id=team)
    if metric:
        targets = targets.filter(metric=metric)
    if on is not None:
        targets = targets.filter(period_start__lte=on, period_end__gte=on)
    return targets


@router.post(
    "/kpi/targets",
    response={201: TargetOut, **problems(400, 403, 422)},
    summary="Set a target",
)
def target_create(request: HttpRequest, payload: TargetIn):
    """A target for a person or team in your sight; one per measure and period."""
    _require(request, queries.KPI)
    with _fields():
        target = kpi_target_save(
            by=request.user,
            **_subject(request, payload.user_id, payload.team_id),
            metric=payload.metric,
            period_start=payload.period_start,
            period_end=payload.period_end,
            value=payload.target,
            currency=payload.currency,
            commission_percent=payload.commission_percent,
        )
    return Status(201, target)


@router.get(
    "/kpi/targets/{target_id}",
    response={200: TargetOut, **problems(403, 404, 422)},
    summary="Get a target",
)
def target_get(request: HttpRequest, target_id: Id):
    """A target of a person or team in your sight."""
    _require(request, queries.KPI)
    return _target(request, target_id)


@router.patch(
    "/kpi/targets/{target_id}",
    response={200: TargetOut, **problems(400, 403, 404, 422)},
    summary="Change a target",
)
def target_update(request: HttpRequest, target_id: Id, payload: TargetPatch):
    """Change some fields of a target; the person or team stays."""
    _require(request, queries.KPI)
    target = _target(request, target_id)
    changes = payload.dict(exclude_unset=True, exclude_none=True)
    current = {
        "metric": target.metric,
        "period_start": target.period_start,
        "period_end": target.period_end,
        "target": target.money.amount if target.money else target.target,
        "currency": target.currency,
        "commission_percent": target.commission_percent,
    } | changes
    with _fields():
        kpi_target_save(
            by=request.user,
            target=target,
            user=target.user,
            org_unit=target.org_unit,
            metric=current["metric"],
            period_start=current["period_start"],
            period_end=current["period_end"],
            value=current["target"],
            currency=current["currency"],
            commission_percent=current["commission_percent"],
        )
    return _target(request, target_id)


@router.delete(
    "/kpi/targets/{target_id}",
    response={204: None, **problems(403, 404, 422)},
    summary="Remove a target",
)
def target_delete(request: HttpRequest, target_id: Id):
    """Remove a target."""
    _require(request, queries.KPI)
    with _fields():
        kpi_target_delete(by=request.user, target=_target(request, target_id))
    return Status(204, None)
