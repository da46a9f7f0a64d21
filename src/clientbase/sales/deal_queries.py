"""Reads of deals, boards and the forecast, always through visibility."""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, F, Q, QuerySet, Sum

from clientbase.accounts.models import User
from clientbase.core import clock
from clientbase.core.money import Money, round_half_up
from clientbase.core.visibility import get_visible_or_404, visible
from clientbase.sales.models import Deal, DealSummary, Lead, Pipeline, Stage
from clientbase.sales.pipelines import default_pipeline

PAGE = 20
CLOSED_STATES = (Stage.State.WON, Stage.State.LOST)
_OWNER_FIELDS = ("owner__first_name", "owner__last_name", "owner__username")
# What a card shows: loading only these keeps a board's hundred cards cheap to build.
CARD_FIELDS = {
    Pipeline.Kind.DEAL: (
        "number", "name", "stage_id", "value_minor", "currency", "expected_close",
        "lost_reason", "version", "client__name", *_OWNER_FIELDS,
    ),
    Pipeline.Kind.LEAD: (
        "number", "name", "company", "stage_id", "potential_minor", "currency", "next_step_on",
        "dead_reason", "version", "client__name", *_OWNER_FIELDS,
    ),
}  # fmt: skip
_HUNDRED = Decimal(100)
SORTS = {
    "new": ("-created_at", "-id"),
    "value": ("-value_minor", "-id"),
    "close": (F("expected_close").asc(nulls_last=True), "id"),
}
LEAD_SORTS = {
    "new": ("-created_at", "-id"),
    "value": ("-potential_minor", "-id"),
    "close": (F("next_step_on").asc(nulls_last=True), "id"),
}


def deals_for(user) -> QuerySet[Deal]:
    """The deals a user may see."""
    return visible(Deal.objects.all(), user)


def deal_get(user, pk: int) -> Deal:
    """One deal the user may see, with what its card shows; else a 404."""
    return get_visible_or_404(
        Deal.objects.select_related("stage", "pipeline", "client", "lead", "owner"), user, pk=pk
    )


def deal_list(
    user, *, q: str = "", status: str = "", owner: int | None = None, pipeline: int | None = None
) -> QuerySet[Deal]:
    """Deals for the list and the API, newest first, filtered."""
    deals = deals_for(user).select_related("stage", "client", "owner")
    if q:
        deals = deals.filter(Q(name__icontains=q) | Q(number__iexact=q))
    if status:
        deals = deals.filter(status=status)
    if owner is not None:
        deals = deals.filter(owner_id=owner)
    if pipeline is not None:
        deals = deals.filter(pipeline_id=pipeline)
    return deals.order_by("-created_at", "-id")


def pipelines_of(kind: str) -> list[Pipeline]:
    """Active pipelines of a kind, the default one made on first use."""
    default_pipeline(kind)
    return list(Pipeline.objects.filter(kind=kind, active=True).order_by("position", "id"))


@dataclass
class ColumnTotals:
    """What a column holds: how many, and how much per currency (and weighted, for deals)."""

    count: int = 0
    values: list[Money] = field(default_factory=list)
    weighted: list[Money] = field(default_factory=list)


@dataclass
class Column:
    """One stage on a board with its first cards and totals."""

    stage: Stage
    cards: list
    totals: ColumnTotals
    more: bool


@dataclass(frozen=True)
class BoardFilters:
    """What a board shows: sort and whose records."""

    sort: str = "new"
    owner: int | None = None
    mine: bool = False


def _board_rows(user, kind: str, filters: BoardFilters) -> QuerySet:
    rows = deals_for(user) if kind == Pipeline.Kind.DEAL else visible(Lead.objects.all(), user)
    if filters.mine:
        rows = rows.filter(owner=user)
    elif filters.owner is not None:
        rows = rows.filter(owner_id=filters.owner)
    return rows


def _recent() -> dt.date:
    # Won and lost columns show this month and the two before: the board is for work in
    # progress, and whole months let the running totals count exactly those cards.
    first = clock.today().replace(day=1)
    for _ in range(2):
        first = (first - dt.timedelta(days=1)).replace(day=1)
    return first


def column_cards(
    user, stage: Stage, filters: BoardFilters, *, offset: int = 0, limit: int = PAGE
) -> tuple[list, bool]:
    """One page of a column's cards and whether more follow.

    Won and lost columns hold the deals closed this month and the two before, the recently
    closed first, whatever the sort: years of closed deals are history, not work.
    """
    kind = stage.pipeline.kind
    sorts = SORTS if kind == Pipeline.Kind.DEAL else LEAD_SORTS
    order = sorts.get(filters.sort, sorts["new"])
    rows = _board_rows(user, kind, filters).filter(stage=stage)
    if kind == Pipeline.Kind.DEAL and stage.state in CLOSED_STATES:
        rows = rows.filter(closed_on__gte=_recent())
        order = ("-closed_on", "-id")
    rows = rows.select_related("owner", "client").only(*CARD_FIELDS[kind]).order_by(*order)
    cards = [with_amount(card) for card in rows[offset : offset + limit + 1]]
    return cards[:limit], len(cards) > limit


def with_amount(record: Deal | Lead) -> Deal | Lead:
    """The record with `amount`, its value (a deal) or potential (a lead) as Money."""
    minor = record.value_minor if isinstance(record, Deal) else record.potential_minor
    record.amount = Money(minor, record.currency)
    return record


def _totals(user, pipeline: Pipeline, filters: BoardFilters, stages) -> dict[int, ColumnTotals]:
    if pipeline.kind == Pipeline.Kind.DEAL:
        # Deals: from the running totals the services keep, not by summing every deal.
        rows = visible(DealSummary.objects.filter(stage__in=[s.pk for s in stages]), user)
        rows = rows.filter(Q(status=Deal.Status.OPEN) | Q(month__gte=_recent()))
        # (A closed deal's month is its closing month, so this counts the closed columns' cards.)
        if filters.mine:
            rows = rows.filter(owner=user)
        elif filters.owner is not None:
            rows = rows.filter(owner_id=filters.owner)
        sums = {"total": Sum("value_minor"), "n": Sum("count"), "weighted": Sum("weighted")}
    else:
        rows = _board_rows(user, pipeline.kind, filters).filter(stage__in=[s.pk for s in stages])
        sums = {"total": Sum("potential_minor"), "n": Count("id")}
    rows = rows.order_by().values("stage_id", "currency").annotate(**sums)
    totals: dict[int, ColumnTotals] = defaultdict(ColumnTotals)
    for row in rows:
        if not row["n"]:
            continue
        column = totals[row["stage_id"]]
        column.count += row["n"]
        column.values.append(Money(int(row["total"] or 0), row["currency"]))
        if "weighted" in row:
            column.weighted.append(
                Money(round_half_up(Decimal(row["weighted"] or 0) / _HUNDRED), row["currency"])
            )
    return totals


def column_totals(
    user, pipeline: Pipeline, filters: BoardFilters, stages: list[Stage]
) -> list[tuple[Stage, ColumnTotals]]:
    """The totals of some columns (those a move changed)."""
    totals = _totals(user, pipeline, filters, stages)
    return [(stage, totals[stage.pk]) for stage in stages]


def board(user, pipeline: Pipeline, filters: BoardFilters) -> list[Column]:
    """Every column of a pipeline with its first page of cards and its totals."""
    stages = list(pipeline.stages.select_related("pipeline").order_by("position", "id"))
    totals = _totals(user, pipeline, filters, stages)
    columns = []
    for stage in stages:
        cards, more = column_cards(user, stage, filters)
        columns.append(Column(stage, cards, totals[stage.pk], more))
    return columns


# --- forecast -------------------------------------------------------------------------------


@dataclass
class ForecastRow:
    """One month and owner in one currency: the weighted open value beside what was won."""

    month: dt.date
    owner_id: int | None
    owner_name: str
    currency: str
    weighted: Money
    pipeline_value: Money
    won: Money
    open_count: int = 0
    won_count: int = 0


def _month(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date().replace(day=1)
    return value.replace(day=1)


def forecast(
    user,
    *,
    start: dt.date,
    months: int = 12,
    pipeline: int | None = None,
    owner: int | None = None,
) -> list[ForecastRow]:
    """Open deals' value × probability by expected-close month and owner, with won beside."""
    end_year, end_month = divmod(start.month - 1 + months, 12)
    end = dt.date(start.year + end_year, end_month + 1, 1)
    rows = visible(DealSummary.objects.filter(month__gte=start, month__lt=end), user)
    if pipeline is not None:
        rows = rows.filter(pipeline_id=pipeline)
    if owner is not None:
        rows = rows.filter(owner_id=owner)
    found_rows = (
        rows.filter(status__in=[Deal.Status.OPEN, Deal.Status.WON])
        .order_by()
        .values("month", "owner_id", "currency", "status")
        .annotate(weighted=Sum("weighted"), total=Sum("value_minor"), n=Sum("count"))
    )
    table: dict[tuple, ForecastRow] = {}

    def row_for(found) -> ForecastRow:
        key = (_month(found["month"]), found["owner_id"], found["currency"])
        if key not in table:
            zero = Money.zero(found["currency"])
            table[key] = ForecastRow(key[0], key[1], "", key[2], zero, zero, zero)
        return table[key]

    for found in found_rows:
        if not found["n"]:
            continue
        row = row_for(found)
        if found["status"] == Deal.Status.OPEN:
            row.weighted = Money(
                round_half_up(Decimal(found["weighted"] or 0) / _HUNDRED), row.currency
            )
            row.pipeline_value = Money(int(found["total"] or 0), row.currency)
            row.open_count = found["n"]
        else:
            row.won = Money(int(found["total"] or 0), row.currency)
            row.won_count = found["n"]
    names = {
        u.pk: (u.get_full_name() or u.username)
        for u in User.objects.filter(pk__in={k[1] for k in table if k[1]})
    }
    for row in table.values():
        row.owner_name = names.get(row.owner_id, "—")
    return sorted(table.values(), key=lambda r: (r.month, r.owner_name, r.currency))


def closing_this_month(user) -> QuerySet[Deal]:
    """Open deals the user may see whose expected close falls in this month."""
    today = clock.today()
    first = today.replace(day=1)
    return deals_for(user).filter(
        status=Deal.Status.OPEN, expected_close__gte=first, expected_close__lte=_month_end(first)
    )


def _month_end(first: dt.date) -> dt.date:
    return (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)


def forecast_chart(rows: list[ForecastRow], *, start: dt.date, months: int) -> dict:
    """Chart data: per currency, weighted and won per month (major units, for display)."""
    labels = []
    month = start
    for _ in range(months):
        labels.append(month.strftime("%Y-%m"))
        month = (month + dt.timedelta(days=32)).replace(day=1)
    series: dict[str, dict[str, list[float]]] = {}
    for row in rows:
        per = series.setdefault(row.currency, {"weighted": [0.0] * months, "won": [0.0] * months})
        index = labels.index(row.month.strftime("%Y-%m"))
        # Chart heights only: the table beside shows the exact amounts.
        per["weighted"][index] += float(row.weighted.amount)
        per["won"][index] += float(row.won.amount)
    return {"labels": labels, "series": series}
