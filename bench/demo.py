"""Benchmark: demo clients generated a second, beside a raw insert of the same rows."""

import argparse
import time

from django.core.management.base import CommandError
from django.db import connection, transaction

from clientbase.clients.models import Client
from clientbase.core.demo import ensure_demo_org
from clientbase.core.demo_clients import (
    DEFAULT_SEED,
    demo_clients_create,
    demo_pools,
    roomy_sqlite_cache,
)

DEFAULT_CLIENTS = 100_000


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _baseline_seconds() -> float:
    """Seconds one executemany takes to insert again every client row, ready-made tuples."""
    meta = Client._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {quote(meta.db_table)} ORDER BY {quote('id')}")
        stored = cursor.fetchall()
    # The same values with new number and email, which are unique; prepared before the clock.
    fresh = {fields.index(meta.get_field("number")), fields.index(meta.get_field("email"))}
    rows = [
        tuple(f"b{value}" if i in fresh else value for i, value in enumerate(row)) for row in stored
    ]
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"
    )
    started = time.perf_counter()
    # With the page cache the generator gets, so the ratio compares like with like.
    with roomy_sqlite_cache(), transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(sql, rows)
    return time.perf_counter() - started


def run(argv: list[str]) -> dict:
    """Generate --clients demo clients into the empty database; return the figures."""
    parser = argparse.ArgumentParser(prog="clientbase bench demo")
    parser.add_argument("--clients", type=_positive, default=DEFAULT_CLIENTS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    options = parser.parse_args(argv)
    if Client.objects.exists():
        raise CommandError("the benchmark needs an empty database; this one holds clients")

    org = ensure_demo_org()
    started = time.perf_counter()
    demo_pools(options.seed)
    pools_seconds = time.perf_counter() - started
    result = demo_clients_create(clients=options.clients, org=org, seed=options.seed)
    baseline = _baseline_seconds()

    rate = result.created / result.seconds
    baseline_rate = result.created / baseline
    return {
        "clients": result.created,
        "seconds": round(result.seconds, 3),
        "rows_per_second": round(rate),
        "baseline_rows_per_second": round(baseline_rate),
        "ratio": round(rate / baseline_rate, 3),
        "pools_seconds": round(pools_seconds, 3),
        "database": connection.vendor,
    }
