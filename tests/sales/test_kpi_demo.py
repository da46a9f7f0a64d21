"""The KPI demo data: this month's targets, made once."""

from clientbase.core.demo import ensure_demo_org
from clientbase.sales.kpi_demo import demo_kpi_create
from clientbase.sales.models import KpiTarget


def test_demo_sets_this_months_targets_once(default_roles):
    org = ensure_demo_org()
    made = demo_kpi_create(org=org)
    # Nine targets for each of three sellers, four for each of two branches
    assert made == 3 * 9 + 2 * 4
    assert KpiTarget.objects.count() == made
    assert KpiTarget.objects.filter(metric="revenue", user__isnull=False).count() == 3
    assert demo_kpi_create(org=org) == 0
