"""Demo KPI targets: this month's targets for the demo sellers and their teams."""

import random
from decimal import Decimal

from django.conf import settings

from clientbase.core import clock
from clientbase.sales.kpi_queries import month_period
from clientbase.sales.kpi_services import kpi_target_save
from clientbase.sales.models import KpiTarget

SELLERS = ("sales.paris", "sales.paris.b", "sales.lyon")
TEAMS = ("Paris", "Lyon")
# (measure, lowest and highest target a seller gets)
PERSONAL = [
    ("calls", 40, 80),
    ("meetings", 6, 14),
    ("emails", 30, 60),
    ("quote_emails", 4, 10),
    ("new_leads", 10, 25),
    ("contacted", 8, 20),
    ("converted", 2, 6),
    ("new_buyers", 1, 4),
]


def demo_kpi_create(*, org, seed: int = 7) -> int:
    """Set this month's targets for the demo sellers and their branches; returns how many."""
    rng = random.Random(seed)
    period = month_period(clock.today())
    dates = {"period_start": period.start, "period_end": period.end}
    admin = org.users["admin"]
    currency = settings.DEFAULT_CURRENCY
    made = 0

    def missing(**subject) -> bool:
        return not KpiTarget.objects.filter(**subject, **dates).exists()

    for username in SELLERS:
        seller = org.users[username]
        for metric, low, high in PERSONAL:
            if missing(user=seller, metric=metric):
                value = rng.randint(low, high)
                kpi_target_save(by=admin, user=seller, metric=metric, value=value, **dates)
                made += 1
        if missing(user=seller, metric="revenue"):
            kpi_target_save(
                by=admin,
                user=seller,
                metric="revenue",
                value=Decimal(rng.randrange(8_000, 20_000, 500)),
                currency=currency,
                commission_percent=Decimal(rng.choice(["2.5", "3", "4"])),
                **dates,
            )
            made += 1
    for name in TEAMS:
        team = org.units[name]
        for metric, value in [("calls", 150), ("meetings", 25), ("converted", 10)]:
            if missing(org_unit=team, metric=metric):
                kpi_target_save(by=admin, org_unit=team, metric=metric, value=value, **dates)
                made += 1
        if missing(org_unit=team, metric="revenue"):
            kpi_target_save(
                by=admin,
                org_unit=team,
                metric="revenue",
                value=Decimal(40_000),
                currency=currency,
                commission_percent=Decimal("1"),
                **dates,
            )
            made += 1
    return made
