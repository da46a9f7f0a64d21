"""The weighted forecast: value × probability per month, owner and currency, rounded once."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clientbase.core.money import Money, round_half_up
from clientbase.sales import deal_queries as queries
from clientbase.sales import deal_services as services
from clientbase.sales.models import Deal, DealSummary, Pipeline
from clientbase.sales.pipelines import default_pipeline

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2025, 3, 10, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(values=st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=4),
       stages=st.lists(st.sampled_from(["Needs analysis", "Proposal", "Negotiation"]), min_size=4, max_size=4))  # fmt: skip
def test_weighted_value_is_the_exact_sum_rounded_once(seller, values, stages):
    Deal.objects.all().delete()
    DealSummary.objects.all().delete()
    pipeline = default_pipeline(Pipeline.Kind.DEAL)
    exact = Decimal(0)
    for value, stage_name in zip(values, stages, strict=False):
        stage = pipeline.stages.get(name=stage_name)
        services.deal_create(
            by=seller, name="X", value=Money(value, "EUR"), stage=stage,
            expected_close=dt.date(2025, 3, 31),
        )  # fmt: skip
        exact += Decimal(value * stage.probability) / 100

    (row,) = queries.forecast(seller, start=dt.date(2025, 3, 1), months=1)

    assert row.weighted == Money(round_half_up(exact), "EUR")
    assert row.pipeline_value == Money(sum(values), "EUR")


def test_forecast_page_shows_rows_and_chart(seller, other_seller, signed_in):
    services.deal_create(
        by=seller, name="Mine", value=Money(100000, "EUR"), expected_close=dt.date(2025, 5, 3)
    )
    services.deal_create(
        by=other_seller, name="Theirs", value=Money(999, "USD"), expected_close=dt.date(2025, 5, 3)
    )
    page = signed_in(seller).get(reverse("sales:forecast"))
    assert page.status_code == 200
    (row,) = page.context["rows"]
    assert (row.month, row.weighted, row.open_count) == (
        dt.date(2025, 5, 1),
        Money(10000, "EUR"),
        1,
    )
    chart = page.context["chart"]
    assert chart["labels"][:3] == ["2025-03", "2025-04", "2025-05"]
    assert chart["series"]["EUR"]["weighted"][2] == 100.0
    assert "USD" not in chart["series"]
    assert 'id="forecast-chart"' in page.content.decode()


def test_forecast_filters_by_owner_and_pipeline(sales_manager, seller, other_seller):
    services.deal_create(
        by=seller, name="A", value=Money(1000, "EUR"), expected_close=dt.date(2025, 3, 20)
    )
    services.deal_create(
        by=other_seller, name="B", value=Money(2000, "EUR"), expected_close=dt.date(2025, 3, 20)
    )
    everyone = queries.forecast(sales_manager, start=dt.date(2025, 3, 1))
    only = queries.forecast(sales_manager, start=dt.date(2025, 3, 1), owner=other_seller.pk)
    other = queries.forecast(sales_manager, start=dt.date(2025, 3, 1), pipeline=999)
    assert [r.owner_name for r in everyone] == ["Marie Dupont", "Minh Tran"]
    assert [r.weighted for r in only] == [Money(200, "EUR")]
    assert other == []
