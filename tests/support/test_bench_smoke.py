"""The support desk's benchmarks still run, at a tiny size, and report sound figures."""

import io
import json

import pytest
from django.core.management import call_command
from django.db import connection

from clientbase.support.models import Ticket


@pytest.fixture(autouse=True)
def once_per_build(db):
    """A benchmark always runs in a scratch SQLite database of its own, whatever the suite
    runs on, so the PostgreSQL pass would only repeat the SQLite one (and its migrations)."""
    if connection.vendor != "sqlite":
        pytest.skip("the benchmarks' smoke tests run in the SQLite pass")


def _bench(*args: str) -> dict:
    out = io.StringIO()
    call_command("bench", *args, stdout=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])


def test_bench_support_ingest_threads_every_reply(db):
    # given the user's own (test) database holds no tickets
    # when the ingest benchmark runs over 40 mails from 20 clients and guests, 15 a batch
    # (read in this process), and 10 more one a transaction
    figures = _bench(
        "support_ingest", "--messages", "40", "--clients", "20", "--batch", "15", "--single",
        "10", "--serial",
    )  # fmt: skip

    # then every mail became a ticket or a reply on the right one, attachments kept
    assert (figures["bench"], figures["database"], figures["messages"]) == (
        "support_ingest",
        "sqlite",
        40,
    )
    assert figures["threading_ok"] is True
    assert figures["misthreaded"] == 0
    assert figures["outcomes"] == {"ticket": figures["tickets"], "reply": figures["replies"]}
    assert figures["tickets"] + figures["replies"] == 40
    assert figures["replies"] > 0
    assert figures["attachments_stored"] == figures["attachments_sent"] > 0
    for key in ("messages_per_s", "baseline_messages_per_s", "ratio", "batch_p50_ms"):
        assert figures[key] > 0, key
    assert (figures["batch"], figures["parallel_reading"]) == (15, False)
    single = figures["single"]
    assert single["messages"] == 10
    assert sum(single["outcomes"].values()) == 10
    assert single["outcomes"]["ticket"] == single["tickets"] > 0
    for key in ("messages_per_s", "p50_ms", "p95_ms", "ratio"):
        assert single[key] > 0, key
    # and it ran in a scratch database, leaving the user's data alone
    assert Ticket.objects.count() == 0


def test_bench_support_tickets_times_every_filter_with_one_query(db):
    # given the user's own (test) database holds no tickets
    # when the ticket list benchmark runs over 400 tickets, 2 calls per case
    figures = _bench("support_tickets", "--tickets", "400", "--clients", "60", "--queries", "2")

    # then it generated them all and timed every filter for both users
    assert (figures["bench"], figures["database"], figures["tickets"]) == (
        "support_tickets",
        "sqlite",
        400,
    )
    assert sum(figures["statuses"].values()) == 400
    cases = {
        "none", "status_awaiting", "status_unresolved", "status_each", "department", "priority",
        "assignee_me", "assignee_none", "assignee_user", "my_queue", "overdue", "complaint",
        "client", "q_number", "q_email", "q_subject_word", "q_subject_rare", "combined",
        "deep_20_pages",
    }  # fmt: skip
    assert set(figures["list"]) == {f"{who}_{c}" for who in ("all", "own") for c in cases}
    assert set(figures["counters"]) == {
        f"{who}_{c}" for who in ("all", "own") for c in ("awaiting_reply", "overdue", "my_queue")
    }
    # and a page of the list, like each counter, is one statement
    for name, case in {**figures["list"], **figures["counters"]}.items():
        assert case["queries"] == 1, name
        assert case["p95_ms"] > 0 and case["baseline_p95_ms"] > 0, name
    assert figures["worst_p95_ms"] == max(c["p95_ms"] for c in figures["list"].values())
    assert "with_indexes" not in figures
    assert Ticket.objects.count() == 0
