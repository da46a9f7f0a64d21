"""The KPI report: each measure's actual against its target for a person or a team (SAL-8).

Every actual is one grouped query by owner over rows the viewer may see, so a team of fifty
costs as many queries as one person.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery, Sum
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from clientbase.accounts.models import OrgUnit, User
from clientbase.billing.models import Payment, PaymentAllocation, Refund
from clientbase.clients.models import Client
from clientbase.core import clock
from clientbase.core.money import Money
from clientbase.core.visibility import Scope, user_scope, visible
from clientbase.sales.models import Activity, KpiTarget, Lead

Metric = KpiTarget.Metric
KPI = "sales.kpi"
WORK = "sales.work"

ACTIVITY_METRICS = {
    Activity.Kind.CALL: Metric.CALLS,
    Activity.Kind.MEETING: Metric.MEETINGS,
    Activity.Kind.EMAIL: Metric.EMAILS,
    Activity.Kind.QUOTE_EMAIL: Metric.QUOTE_EMAILS,
}
# The kinds of activity that reach the lead; tasks and to-dos are our own work.
CONTACT_KINDS = [*ACTIVITY_METRICS, Activity.Kind.SMS]

DEFINITIONS: dict[str, Promise] = {
    Metric.CALLS: _("Calls marked done in the period, owned by the person."),
    Metric.MEETINGS: _("Meetings marked done in the period, owned by the person."),
    Metric.EMAILS: _("Emails marked done (sent) in the period, owned by the person."),
    Metric.QUOTE_EMAILS: _("Quote emails marked done (sent) in the period, owned by the person."),
    Metric.NEW_LEADS: _("Leads created in the period and owned by the person."),
    Metric.CONTACTED: _(
        "Leads owned by the person whose first done call, meeting, email, quote email or SMS "
        "falls in the period."
    ),
    Metric.CONVERTED: _("Leads owned by the person converted to a client in the period."),
    Metric.REVENUE: _(
        "Payments received in the period and allocated to invoices of clients the person owns "
        "(the client's owner), less what was refunded from their invoices in the period; per "
        "currency."
    ),
    Metric.NEW_BUYERS: _(
        "Clients the person owns whose first payment ever was received in the period."
    ),
    Metric.RETURNING_BUYERS: _(
        "Clients the person owns who paid in the period and had paid before it."
    ),
}
COMMISSION_DEFINITION = _(
    "Revenue times the commission percent of the revenue target, rounded half up once to the "
    "cent, per currency."
)
TEAM_DEFINITION = _("A team's actual is the sum over the people of the team and the teams below.")


# --- periods and subjects ------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """The days a report covers, both ends included."""

    start: dt.date
    end: dt.date

    @property
    def since(self) -> dt.datetime:
        return clock.start_of_day(self.start)

    @property
    def until(self) -> dt.datetime:
        """The first instant after the period."""
        return clock.start_of_day(self.end + dt.timedelta(days=1))


def month_period(day: dt.date) -> Period:
    """The calendar month of a day."""
    start = day.replace(day=1)
    following = (start + dt.timedelta(days=32)).replace(day=1)
    return Period(start, following - dt.timedelta(days=1))


def quarter_period(day: dt.date) -> Period:
    """The calendar quarter of a day."""
    start = dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    last_month = month_period(dt.date(start.year, start.month + 2, 1))
    return Period(start, last_month.end)


def shortcuts(today: dt.date) -> list[tuple[Promise, Period]]:
    """The periods a person picks most: this and last month, this and last quarter."""
    this_month = month_period(today)
    this_quarter = quarter_period(today)
    return [
        (_("This month"), this_month),
        (_("Last month"), month_period(this_month.start - dt.timedelta(days=1))),
        (_("This quarter"), this_quarter),
        (_("Last quarter"), quarter_period(this_quarter.start - dt.timedelta(days=1))),
    ]


def may_read_kpi(user) -> bool:
    """A seller reads their own KPI; `sales.kpi` reads anyone's in sight."""
    return user.has_perm(WORK) or user.has_perm(KPI)


def people_in_sight(viewer) -> QuerySet[User]:
    """Active people whose KPI the viewer may read (as far as their scope reaches)."""
    people = User.objects.filter(is_active=True).select_related("org_unit")
    scope = user_scope(viewer)
    if scope == Scope.ALL:
        return people.order_by("first_name", "last_name", "username")
    if scope == Scope.UNIT and viewer.org_unit_id is not None:
        people = people.filter(org_unit__path__startswith=viewer.org_unit.path)
        return people.order_by("first_name", "last_name", "username")
    return people.filter(pk=viewer.pk) if scope else people.none()


def teams_in_sight(viewer) -> QuerySet[OrgUnit]:
    """Org units whose KPI the viewer may read: none for someone who sees only their own."""
    scope = user_scope(viewer)
    if scope == Scope.ALL:
        return OrgUnit.objects.order_by("path")
    if scope == Scope.UNIT and viewer.org_unit_id is not None:
        return OrgUnit.objects.filter(path__startswith=viewer.org_unit.path).order_by("path")
    return OrgUnit.objects.none()


@dataclass(frozen=True)
class Subject:
    """Whom a report is about: one person or one team."""

    user: User | None = None
    team: OrgUnit | None = None

    @property
    def key(self) -> str:
        return f"u{self.user.pk}" if self.user else f"t{self.team.pk}"

    @property
    def name(self) -> str:
        return self.user.display_name if self.user else self.team.name

    @property
    def is_team(self) -> bool:
        return self.team is not None


def subject_for(viewer, key: str) -> Subject | None:
    """The person (`u<id>`) or team (`t<id>`) a key names, if the viewer may see them."""
    kind, digits = key[:1], key[1:]
    if kind not in ("u", "t") or not digits.isdigit() or len(digits) > 18:
        return None
    if kind == "u":
        person = people_in_sight(viewer).filter(pk=int(digits)).first()
        return Subject(user=person) if person else None
    team = teams_in_sight(viewer).filter(pk=int(digits)).first()
    return Subject(team=team) if team else None


# --- actuals -------------------------------------------------------------------------------


@dataclass
class Actuals:
    """What one person (or a whole team) did in a period."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(Metric.values, 0))
    revenue: dict[str, int] = field(default_factory=dict)  # currency -> minor units

    def add(self, other: Actuals) -> None:
        for metric, count in other.counts.items():
            self.counts[metric] += count
        for currency, minor in other.revenue.items():
            self.revenue[currency] = self.revenue.get(currency, 0) + minor

    def money(self) -> tuple[Money, ...]:
        return tuple(Money(minor, cur) for cur, minor in sorted(self.revenue.items()) if minor)


def _count_by_owner(rows, into: dict[int, Actuals], metric: str) -> None:
    for row in rows:
        into[row["owner_id"]].counts[metric] = row["n"]


def actuals_by_person(viewer, owner_ids: list[int], period: Period) -> dict[int, Actuals]:
    """Each person's actuals in the period, from rows the viewer may see: seven queries."""
    found: dict[int, Actuals] = defaultdict(Actuals)
    since, until = period.since, period.until
    done = visible(Activity.objects, viewer).filter(
        owner_id__in=owner_ids,
        kind__in=list(ACTIVITY_METRICS),
        done_at__gte=since,
        done_at__lt=until,
    )
    for row in done.values("owner_id", "kind").annotate(n=Count("pk")).order_by():
        found[row["owner_id"]].counts[ACTIVITY_METRICS[row["kind"]]] = row["n"]
    leads = visible(Lead.objects, viewer).filter(owner_id__in=owner_ids)
    per_owner = ("owner_id",)
    _count_by_owner(
        leads.filter(created_at__gte=since, created_at__lt=until)
        .values(*per_owner)
        .annotate(n=Count("pk"))
        .order_by(),
        found,
        Metric.NEW_LEADS,
    )
    first_contact = (
        Activity.objects.filter(lead=OuterRef("pk"), kind__in=CONTACT_KINDS, done_at__isnull=False)
        .order_by("done_at")
        .values("done_at")[:1]
    )
    _count_by_owner(
        leads.annotate(first_contact=Subquery(first_contact))
        .filter(first_contact__gte=since, first_contact__lt=until)
        .values(*per_owner)
        .annotate(n=Count("pk"))
        .order_by(),
        found,
        Metric.CONTACTED,
    )
    _count_by_owner(
        leads.filter(converted_at__gte=since, converted_at__lt=until)
        .values(*per_owner)
        .annotate(n=Count("pk"))
        .order_by(),
        found,
        Metric.CONVERTED,
    )
    received = visible(PaymentAllocation.objects, viewer).filter(
        payment__client__owner_id__in=owner_ids,
        payment__received_on__gte=period.start,
        payment__received_on__lte=period.end,
    )
    for row in (
        received.values(owner_id=F("payment__client__owner_id"), currency=F("payment__currency"))
        .annotate(paid=Sum("amount_minor"))
        .order_by()
    ):
        found[row["owner_id"]].revenue[row["currency"]] = row["paid"]
    # Credit paid out (no invoice) never counted as revenue, so only invoice refunds come off.
    given_back = visible(Refund.objects, viewer).filter(
        client__owner_id__in=owner_ids,
        invoice__isnull=False,
        created_at__gte=since,
        created_at__lt=until,
    )
    for row in (
        given_back.values(owner_id=F("client__owner_id"), cur=F("currency"))
        .annotate(back=Sum("amount_minor"))
        .order_by()
    ):
        revenue = found[row["owner_id"]].revenue
        revenue[row["cur"]] = revenue.get(row["cur"], 0) - row["back"]
    first_paid = (
        Payment.objects.filter(client=OuterRef("pk")).order_by("received_on").values("received_on")
    )[:1]
    paid_in_period = Payment.objects.filter(
        client=OuterRef("pk"), received_on__gte=period.start, received_on__lte=period.end
    )
    buyers = (
        visible(Client.objects, viewer)
        .filter(owner_id__in=owner_ids)
        .annotate(first_paid=Subquery(first_paid))
        .filter(Exists(paid_in_period))
        .values("owner_id")
        .annotate(
            new=Count("pk", filter=Q(first_paid__gte=period.start)),
            returning=Count("pk", filter=Q(first_paid__lt=period.start)),
        )
        .order_by()
    )
    for row in buyers:
        found[row["owner_id"]].counts[Metric.NEW_BUYERS] = row["new"]
        found[row["owner_id"]].counts[Metric.RETURNING_BUYERS] = row["returning"]
    return found


# --- the report ----------------------------------------------------------------------------


def commission(revenue: Money, percent: Decimal) -> Money:
    """A percent of revenue, rounded half up once to the minor unit."""
    return revenue * Decimal(percent).scaleb(-2)


def _percent(actual: int, target: int) -> Decimal | None:
    if target <= 0:
        return None
    return (Decimal(100 * actual) / target).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class MetricRow:
    """One measure of the report: its target, what was done and how far that got."""

    metric: str
    label: str
    definition: str
    target: KpiTarget | None
    count: int | None  # None for revenue
    revenue: tuple[Money, ...] = ()
    percent: Decimal | None = None
    commission: tuple[Money, ...] = ()

    @property
    def is_money(self) -> bool:
        return self.metric == Metric.REVENUE

    @property
    def target_money(self) -> Money | None:
        if self.target is None or not self.is_money:
            return None
        return Money(self.target.target, self.target.currency)


def _rows(actuals: Actuals, targets: dict[str, KpiTarget]) -> list[MetricRow]:
    rows = []
    for metric, label in Metric.choices:
        target = targets.get(metric)
        definition = str(DEFINITIONS[metric])
        if metric == Metric.REVENUE:
            revenue = actuals.money()
            percent, earned = None, ()
            if target is not None:
                in_target_currency = actuals.revenue.get(target.currency, 0)
                percent = _percent(in_target_currency, target.target)
                if target.commission_percent:
                    earned = tuple(commission(m, target.commission_percent) for m in revenue)
            rows.append(
                MetricRow(metric, str(label), definition, target, None, revenue, percent, earned)
            )
            continue
        count = actuals.counts[metric]
        percent = _percent(count, target.target) if target is not None else None
        rows.append(MetricRow(metric, str(label), definition, target, count, percent=percent))
    return rows


@dataclass(frozen=True)
class MemberRow:
    """One person of a team's report."""

    user: User
    rows: list[MetricRow]


@dataclass(frozen=True)
class KpiReport:
    """A person's or a team's measures over a period, and for a team each member's."""

    subject: Subject
    period: Period
    rows: list[MetricRow]
    members: list[MemberRow]

    @property
    def commission(self) -> tuple[Money, ...]:
        return next((r.commission for r in self.rows if r.metric == Metric.REVENUE), ())


def kpi_report(viewer, subject: Subject, period: Period) -> KpiReport:
    """The report for a subject the viewer may see (the caller checked): nine queries at most."""
    if subject.is_team:
        people = list(
            User.objects.filter(org_unit__path__startswith=subject.team.path).order_by(
                "first_name", "last_name", "username"
            )
        )
    else:
        people = [subject.user]
    ids = [person.pk for person in people]
    found = actuals_by_person(viewer, ids, period)
    targets = KpiTarget.objects.filter(period_start=period.start, period_end=period.end).filter(
        Q(user_id__in=ids) if not subject.is_team else Q(user_id__in=ids) | Q(org_unit=subject.team)
    )
    own: dict[str, KpiTarget] = {}
    personal: dict[int, dict[str, KpiTarget]] = defaultdict(dict)
    for target in targets:
        if target.user_id is None:
            own[target.metric] = target
        else:
            personal[target.user_id][target.metric] = target
    if not subject.is_team:
        own = personal[subject.user.pk]
    total = Actuals()
    for person in people:
        total.add(found.get(person.pk, Actuals()))
    members = []
    if subject.is_team:
        members = [
            MemberRow(person, _rows(found.get(person.pk, Actuals()), personal[person.pk]))
            for person in people
        ]
    return KpiReport(subject, period, _rows(total, own), members)


def targets_for(viewer) -> QuerySet[KpiTarget]:
    """Targets of the people and teams in the viewer's sight."""
    return (
        KpiTarget.objects.filter(
            Q(user__in=people_in_sight(viewer)) | Q(org_unit__in=teams_in_sight(viewer))
        )
        .select_related("user", "org_unit")
        .order_by("-period_start", "user__username", "org_unit__path", "metric", "id")
    )
