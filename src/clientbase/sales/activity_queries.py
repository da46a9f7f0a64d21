"""Reads of activities: the card panel, calendar, to-do list, lists and counters (ACT-4, ACT-5)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Count, Q, QuerySet

from clientbase.core import clock
from clientbase.core.visibility import Scope, get_visible_or_404, user_scope, visible
from clientbase.sales.models import Activity

COUNTED_KINDS = ("call", "meeting", "email", "quote_email")
PANEL_RECENT = 10
PANEL_UPCOMING = 20


def activities(user) -> QuerySet[Activity]:
    """Every activity the user may see, with what a row shows loaded."""
    return visible(Activity.objects.all(), user).select_related("owner", "client", "lead", "deal")


def activity_get(user, pk: int) -> Activity:
    """One activity in the user's sight, else 404."""
    return get_visible_or_404(Activity.objects.select_related("owner"), user, pk=pk)


@dataclass(frozen=True)
class ActivityPanel:
    """What a card's activity panel shows and what its quick form posts back."""

    upcoming: list[Activity]
    recent: list[Activity]
    counts: dict[str, int]
    next_step: Activity | None
    now: dt.datetime
    client_id: int | None = None
    lead_id: int | None = None
    deal_id: int | None = None
    kinds: list = field(default_factory=lambda: Activity.Kind.choices)
    outcomes: list = field(default_factory=lambda: Activity.Outcome.choices)

    @property
    def subject_query(self) -> str:
        """The query string that names the card (client, lead or deal) the panel is on."""
        for name in ("deal", "lead", "client"):
            value = getattr(self, f"{name}_id")
            if value:
                return f"{name}={value}"
        return ""


def _subject_filter(client, lead, deal) -> Q:
    if deal is not None:
        return Q(deal=deal)
    if lead is not None:
        return Q(lead=lead)
    if client is not None:
        return Q(client=client)
    raise ValueError("panel_for needs a client, a lead or a deal")


def panel_for(user, *, client=None, lead=None, deal=None) -> ActivityPanel:
    """The activity panel of a client, lead or deal card, through the user's sight."""
    rows = activities(user).filter(_subject_filter(client, lead, deal))
    upcoming = list(rows.filter(done_at__isnull=True).order_by("due_at", "id")[:PANEL_UPCOMING])
    recent = list(rows.filter(done_at__isnull=False).order_by("-done_at", "-id")[:PANEL_RECENT])
    counted = (
        rows.filter(done_at__isnull=False, kind__in=COUNTED_KINDS)
        .order_by()
        .values("kind")
        .annotate(n=Count("id"))
    )
    counts = dict.fromkeys(COUNTED_KINDS, 0) | {row["kind"]: row["n"] for row in counted}
    return ActivityPanel(
        upcoming=upcoming,
        recent=recent,
        counts=counts,
        next_step=upcoming[0] if upcoming else None,
        now=clock.now(),
        client_id=client.pk if client is not None else None,
        lead_id=lead.pk if lead is not None else None,
        deal_id=deal.pk if deal is not None else None,
    )


def overdue(user) -> QuerySet[Activity]:
    """The user's own undone activities whose time has passed."""
    return activities(user).filter(owner=user, done_at__isnull=True, due_at__lt=clock.now())


def calls_and_meetings_this_week(user) -> QuerySet[Activity]:
    """The user's own calls and meetings due this week (Monday to Sunday)."""
    start, end = week_bounds(clock.today())
    return activities(user).filter(
        owner=user, kind__in=("call", "meeting"), due_at__gte=start, due_at__lt=end
    )


def week_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """Start of the Monday of the day's week and start of the next Monday."""
    monday = day - dt.timedelta(days=day.weekday())
    return clock.start_of_day(monday), clock.start_of_day(monday + dt.timedelta(days=7))


def between(user, owner, start: dt.datetime, end: dt.datetime) -> list[Activity]:
    """The owner's activities due in [start, end), as far as the user sees."""
    return list(
        activities(user)
        .filter(owner=owner, due_at__gte=start, due_at__lt=end)
        .order_by("due_at", "id")
    )


def people_in_sight(user) -> QuerySet:
    """The staff whose calendar the user may open: everyone, their unit and below, or self."""
    from clientbase.accounts.models import User

    people = User.objects.filter(is_active=True).select_related("org_unit")
    scope = user_scope(user)
    if scope == Scope.ALL:
        return people.order_by("first_name", "last_name", "username")
    if scope == Scope.UNIT and user.org_unit_id is not None:
        return people.filter(org_unit__path__startswith=user.org_unit.path).order_by(
            "first_name", "last_name", "username"
        )
    return people.filter(pk=user.pk)


@dataclass(frozen=True)
class TodoList:
    """The to-do list of one person: what is late, what is for today, what comes next."""

    overdue: list[Activity]
    today: list[Activity]
    upcoming: list[Activity]
    done_today: list[Activity]


UPCOMING_ON_THE_LIST = 100


def todo_for(user) -> TodoList:
    """The user's own undone activities split by when, and what they did today."""
    today = clock.today()
    now = clock.now()
    start, end = clock.start_of_day(today), clock.start_of_day(today + dt.timedelta(days=1))
    mine = activities(user).filter(owner=user)
    undone = mine.filter(done_at__isnull=True).order_by("due_at", "id")
    return TodoList(
        overdue=list(undone.filter(due_at__lt=now)),
        today=list(undone.filter(due_at__gte=now, due_at__lt=end)),
        upcoming=list(undone.filter(due_at__gte=end)[:UPCOMING_ON_THE_LIST]),
        done_today=list(mine.filter(done_at__gte=start, done_at__lt=end).order_by("-done_at")),
    )


@dataclass(frozen=True)
class ActivityFilters:
    """What the activity list is narrowed to."""

    kind: str = ""
    owner: int | None = None
    client: int | None = None
    lead: int | None = None
    deal: int | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    done: bool | None = None


def activity_list(user, filters: ActivityFilters) -> QuerySet[Activity]:
    """Activities in sight, narrowed by the filters, the latest first."""
    rows = activities(user)
    if filters.kind:
        rows = rows.filter(kind=filters.kind)
    for name in ("owner", "client", "lead", "deal"):
        value = getattr(filters, name)
        if value is not None:
            rows = rows.filter(**{f"{name}_id": value})
    if filters.start is not None:
        rows = rows.filter(due_at__gte=filters.start)
    if filters.end is not None:
        rows = rows.filter(due_at__lt=filters.end)
    if filters.done is not None:
        rows = rows.filter(done_at__isnull=not filters.done)
    return rows.order_by("-due_at", "-id")


@dataclass(frozen=True)
class CalendarDay:
    """One day of a calendar with its activities in time order."""

    day: dt.date
    activities: list[Activity]
    in_month: bool = True
    is_today: bool = False


@dataclass(frozen=True)
class Calendar:
    """A day, week or month of one person's activities."""

    mode: str
    day: dt.date
    start: dt.date
    end: dt.date  # exclusive
    days: list[CalendarDay]
    previous: dt.date
    following: dt.date

    @property
    def weeks(self) -> list[list[CalendarDay]]:
        """The days in rows of seven (for the month grid)."""
        return [self.days[i : i + 7] for i in range(0, len(self.days), 7)]


CALENDAR_MODES = ("day", "week", "month")


def _month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def calendar_for(user, owner, mode: str, day: dt.date) -> Calendar:
    """The owner's calendar for the day, week or month around `day`, as far as the user sees."""
    if mode == "day":
        start, end = day, day + dt.timedelta(days=1)
        previous, following = day - dt.timedelta(days=1), day + dt.timedelta(days=1)
    elif mode == "week":
        start = day - dt.timedelta(days=day.weekday())
        end = start + dt.timedelta(days=7)
        previous, following = day - dt.timedelta(days=7), day + dt.timedelta(days=7)
    else:
        first = _month_start(day)
        start = first - dt.timedelta(days=first.weekday())
        after = _add_months(first, 1)
        end = after + dt.timedelta(days=(7 - after.weekday()) % 7)
        previous, following = _add_months(first, -1), after
    rows = between(user, owner, clock.start_of_day(start), clock.start_of_day(end))
    zone = clock.company_timezone()
    by_day: dict[dt.date, list[Activity]] = {}
    for activity in rows:
        by_day.setdefault(activity.due_at.astimezone(zone).date(), []).append(activity)
    today = clock.today()
    days = []
    current = start
    while current < end:
        days.append(
            CalendarDay(
                day=current,
                activities=by_day.get(current, []),
                in_month=mode != "month" or current.month == day.month,
                is_today=current == today,
            )
        )
        current += dt.timedelta(days=1)
    return Calendar(mode, day, start, end, days, previous, following)
