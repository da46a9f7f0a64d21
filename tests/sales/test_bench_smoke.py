"""The board benchmark still runs at a tiny size and reports sound figures."""

import io
import json

import pytest
from django.core.management import call_command
from django.db import connection

from clientbase.sales.models import Deal


@pytest.fixture(autouse=True)
def once_per_build(db):
    """The benchmark runs in a scratch SQLite database of its own: the SQLite pass suffices."""
    if connection.vendor != "sqlite":
        pytest.skip("the benchmarks' smoke tests run in the SQLite pass")


def test_bench_sales_board_times_board_moves_and_forecast(db):
    out = io.StringIO()
    call_command(
        "bench", "sales_board", "--deals", "600", "--open", "200", "--queries", "2",
        "--moves", "3", stdout=out,
    )  # fmt: skip
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    figures = json.loads(lines[0])

    assert (figures["bench"], figures["database"], figures["deals"]) == (
        "sales_board",
        "sqlite",
        600,
    )
    assert 100 < figures["open"] < 300
    assert set(figures["board"]) == {
        f"{w}_{s}" for w in ("all", "own") for s in ("new", "value", "close")
    }
    for case in figures["board"].values():
        assert case["p95_ms"] > 0 and case["baseline_p95_ms"] > 0
        assert case["queries"] == 7  # stages, totals, five columns
    assert set(figures["board_page"]) == {"all", "own"}
    assert set(figures["forecast"]) == {"all", "own"}
    assert figures["forecast"]["all"]["queries"] == 2  # totals, owner names
    assert figures["move"]["p95_ms"] > 0
    assert figures["summary_rows"] > 0
    # and the user's own database is left alone
    assert Deal.objects.count() == 0
