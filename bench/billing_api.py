"""Benchmark: issuing an invoice and recording a payment through the REST API, with a long ledger.

1. A catalogue product, clients in RUB, and the ledger pre-filled with --ledger-entries
   filler entries (a valid hash chain, written by bulk inserts, the head set to its end),
   so every posting appends to a long chain as it does in production.
2. `POST /api/v1/invoices/{id}/issue` on --requests drafts (made beforehand by the
   service), then `POST /api/v1/payments` paying each of those invoices, through the
   whole stack (middleware, token, ninja, services, ledger) with Django's test client;
   p50 and p95 in milliseconds of each.
3. Baseline: the same kind of ledger row inserted by one raw SQL INSERT in its own
   transaction, --requests times in the same run; `*_ratio` is p95 / baseline p95.
"""

import argparse
import cProfile
import datetime as dt
import json
import math
import os
import pstats
import statistics
import sys
import time
from decimal import Decimal

from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test import Client as HttpClient
from django.test.utils import setup_test_environment

from clientbase.accounts.services import token_create
from clientbase.billing import services
from clientbase.billing.ledger import GENESIS, entry_hash, ledger_verify
from clientbase.billing.models import Invoice, LedgerEntry, LedgerHead, Payment
from clientbase.catalog.models import ConfigOption, Cycle, OptionPrice, Price, Product
from clientbase.clients.services import client_create
from clientbase.core.demo import ensure_demo_org

DEFAULT_LEDGER_ENTRIES = 100_000
DEFAULT_REQUESTS = 200
WARM_UP = 5
CHUNK = 20_000
TARGET_P95_MS = 30
API = "/api/v1"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _not_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _p(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def _stats(name: str, seconds: list[float]) -> dict:
    return {
        f"{name}_p50_ms": _ms(statistics.median(seconds)),
        f"{name}_p95_ms": _ms(_p(seconds, 0.95)),
    }


LEDGER_COLUMNS = [
    "seq", "client_id", "account", "kind", "invoice_id", "amount_minor", "currency",
    "reference", "posted_at", "prev_hash", "hash", "actor_id", "owner_id", "org_unit_id",
]  # fmt: skip


def _insert_sql() -> str:
    quote = connection.ops.quote_name
    return (
        f"INSERT INTO {quote(LedgerEntry._meta.db_table)} "
        f"({', '.join(quote(c) for c in LEDGER_COLUMNS)}) "
        f"VALUES ({', '.join(['%s'] * len(LEDGER_COLUMNS))})"
    )


def fill_ledger(entries: int, client, user) -> float:
    """Append `entries` credit adjustments of one client to the chain; seconds taken.

    The rows are what ledger_post would write (ledger_verify accepts the chain), inserted
    by executemany (COPY on PostgreSQL) in chunks, with the head moved to the last one.
    """
    started = time.perf_counter()
    head = LedgerHead.objects.filter(pk=1).first()
    seq, prev = (head.last_seq, head.last_hash) if head else (0, GENESIS)
    posted_at = dt.datetime(2019, 1, 1, tzinfo=dt.UTC)
    stored_at = connection.ops.adapt_datetimefield_value(posted_at)
    sql = _insert_sql()
    quote = connection.ops.quote_name
    copy = (
        f"COPY {quote(LedgerEntry._meta.db_table)} "
        f"({', '.join(quote(c) for c in LEDGER_COLUMNS)}) FROM STDIN"
    )
    done = 0
    while done < entries:
        rows = []
        for _ in range(min(CHUNK, entries - done)):
            seq += 1
            # +1.00 then -1.00, so the filler client's credit stays near zero.
            amount = 100 if seq % 2 else -100
            digest = entry_hash(
                seq=seq,
                prev_hash=prev,
                client_id=client.pk,
                account=LedgerEntry.Account.CREDIT,
                kind=LedgerEntry.Kind.ADJUSTMENT,
                invoice_id=None,
                amount_minor=amount,
                currency="RUB",
                reference=client.number,
                posted_at=posted_at,
            )
            rows.append((
                seq, client.pk, "credit", "adjustment", None, amount, "RUB", client.number,
                stored_at, prev, digest, user.pk, client.owner_id, client.org_unit_id,
            ))  # fmt: skip
            prev = digest
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                with cursor.copy(copy) as stream:
                    for row in rows:
                        stream.write_row(row)
            else:
                cursor.executemany(sql, rows)
            LedgerHead.objects.update_or_create(pk=1, defaults={"last_seq": seq, "last_hash": prev})
        done += len(rows)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {LedgerEntry._meta.db_table}")
    return time.perf_counter() - started


def _product() -> Product:
    product = Product.objects.create(code="bench-access", name="Access per user")
    Price.objects.create(product=product, currency="RUB", cycle=Cycle.SEMI_ANNUAL, amount_minor=0)
    users = ConfigOption.objects.create(product=product, code="users", name="Users", min_units=1)
    OptionPrice.objects.create(
        option=users, currency="RUB", cycle=Cycle.SEMI_ANNUAL, unit_minor=80000
    )
    return product


def _drafts(user, clients, count: int) -> list[Invoice]:
    """`count` drafts of two lines spread over the clients, made by the service."""
    lines = [
        services.LineSpec("Access per user", Decimal("800.00"), Decimal(5)),
        services.LineSpec("Setup", Decimal("120.50"), Decimal(1)),
    ]
    return [
        services.invoice_create(by=user, client=clients[i % len(clients)], lines=lines)
        for i in range(count)
    ]


def _timed_post(http: HttpClient, path: str, body: dict | None, expect: int) -> float:
    data = json.dumps(body or {})
    started = time.perf_counter()
    # secure: the scratch settings redirect plain HTTP to HTTPS, as production does.
    response = http.post(path, data, content_type="application/json", secure=True)
    elapsed = time.perf_counter() - started
    if response.status_code != expect:
        raise CommandError(f"POST {path} answered {response.status_code}: {response.content!r}")
    return elapsed


def baseline_inserts(count: int, client, user) -> list[float]:
    """Seconds of each raw INSERT of one ledger row, each in its own transaction."""
    sql = _insert_sql()
    # Far above the chain, so the rows never meet a real posting (the chain is not checked).
    seq = 10**12
    posted_at = dt.datetime(2019, 1, 1, tzinfo=dt.UTC)
    timings = []
    for i in range(count):
        row = [seq + i, client.pk, "credit", "adjustment", None, 100, "RUB", "bench",
               posted_at, GENESIS, GENESIS, user.pk, client.owner_id, client.org_unit_id]  # fmt: skip
        started = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, row)
        timings.append(time.perf_counter() - started)
    return timings


def run(argv: list[str]) -> dict:
    """Fill the ledger, then time issuing invoices and recording payments over the API."""
    parser = argparse.ArgumentParser(prog="clientbase bench billing_api")
    parser.add_argument("--ledger-entries", type=_not_negative, default=DEFAULT_LEDGER_ENTRIES)
    parser.add_argument("--requests", type=_positive, default=DEFAULT_REQUESTS)
    parser.add_argument("--clients", type=_positive, default=20)
    parser.add_argument(
        "--profile", action="store_true", help="print a cProfile of the requests to stderr"
    )
    options = parser.parse_args(argv)
    if LedgerEntry.objects.exists() or Invoice.objects.exists():
        raise CommandError("the benchmark needs an empty database; this one has billing data")
    # The test client's host and the in-memory mail backend, as in tests.
    setup_test_environment()
    user = ensure_demo_org().users["admin"]
    figures: dict = {
        "ledger_entries": options.ledger_entries,
        "requests": options.requests,
        "database": connection.vendor,
    }

    clients = [
        client_create(by=user, name=f"Bench {i}", email=f"bench{i}@example.com", currency="RUB")
        for i in range(options.clients + 1)
    ]
    filler, clients = clients[0], clients[1:]
    _product()
    figures["fill_seconds"] = round(fill_ledger(options.ledger_entries, filler, user), 1)

    http = HttpClient(
        headers={
            "Authorization": f"Bearer {token_create(user=user, name='bench', by=None).secret}"
        },
    )
    drafts = _drafts(user, clients, options.requests + WARM_UP)
    profiler = cProfile.Profile() if options.profile else None
    if profiler:
        profiler.enable()
    issue = [_timed_post(http, f"{API}/invoices/{draft.pk}/issue", None, 200) for draft in drafts][
        WARM_UP:
    ]
    pay = [
        _timed_post(
            http,
            f"{API}/payments",
            {
                "client_id": draft.client_id,
                "amount": "4120.50",
                "currency": "RUB",
                "method": "bank_transfer",
                "reference": f"bench {draft.pk}",
                "invoices": [{"invoice_id": draft.pk, "amount": None}],
            },
            201,
        )
        for draft in drafts
    ][WARM_UP:]
    if profiler:
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(60)
    paid = Invoice.objects.filter(pk__in=[d.pk for d in drafts], status="paid").count()
    if paid != len(drafts) or Payment.objects.count() != len(drafts):
        raise CommandError(f"only {paid} of {len(drafts)} invoices were paid")
    figures["ledger_entries_after"] = LedgerEntry.objects.count()
    started = time.perf_counter()
    figures["ledger_verified"] = ledger_verify().ok
    figures["verify_seconds"] = round(time.perf_counter() - started, 1)
    baseline = baseline_inserts(options.requests, filler, user)

    figures |= _stats("issue", issue) | _stats("payment", pay) | _stats("baseline", baseline)
    base = max(figures["baseline_p95_ms"], 0.01)
    figures["issue_ratio"] = round(figures["issue_p95_ms"] / base, 1)
    figures["payment_ratio"] = round(figures["payment_p95_ms"] / base, 1)
    figures["target_p95_ms"] = TARGET_P95_MS
    figures["within_target"] = (
        figures["issue_p95_ms"] <= TARGET_P95_MS and figures["payment_p95_ms"] <= TARGET_P95_MS
    )
    figures["load_average"] = round(os.getloadavg()[0], 1)
    return figures
