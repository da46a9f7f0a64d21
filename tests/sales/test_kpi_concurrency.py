"""Two managers setting the same team target at once on PostgreSQL: one target, one refusal."""

import datetime as dt

import pytest
from django.db import connection

from clientbase.core.errors import ServiceError
from clientbase.sales.kpi_services import kpi_target_save
from clientbase.sales.models import KpiTarget
from tests.support.test_concurrency import _at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _needs_postgres():
    if connection.vendor != "postgresql":
        pytest.skip("row locks under real concurrency are what this tests")


def test_the_same_team_target_saved_twice_at_once_is_kept_once(sales_manager, admin_user, org):
    # Given two people saving a team target for the same measure and period at the same moment
    def save(by, value):
        return kpi_target_save(
            by=by,
            org_unit=org["team_a"],
            metric="calls",
            period_start=dt.date(2025, 4, 1),
            period_end=dt.date(2025, 4, 30),
            value=value,
        )

    results = _at_once(save, [(sales_manager, 10), (admin_user, 20)])
    # Then one is saved and the other refused at the measure
    refused = [r for r in results if isinstance(r, ServiceError)]
    saved = [r for r in results if isinstance(r, KpiTarget)]
    assert len(refused) == 1 and len(saved) == 1, results
    assert refused[0].message_dict == {
        "metric": ["This person or team already has a target for this measure and period."]
    }
    assert list(KpiTarget.objects.values_list("target", flat=True)) == [saved[0].target]
