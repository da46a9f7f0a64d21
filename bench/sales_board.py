"""Benchmark: the deals' kanban board, moving a card, and the weighted forecast (SAL-2, SAL-3).

1. 20 sellers (the demo's Paris seller and 19 more), the default deal pipeline, then --deals
   deals over five years by bulk inserts (COPY on PostgreSQL, executemany on SQLite); about
   --open of them open, among the newest quarter (half in the first stage, 30 % in the
   second, 20 % in the third, expected to close from two months ago to a year ahead), the
   rest closed within 90 days of creation (40 % won, 60 % lost); values from 100 to 50,000 in EUR (80 %), USD (15 %) or RUB (5 %).
2. First paint of the board: `deal_queries.board` (every column's first page and the
   totals) for the administrator (sees all) and the Paris seller (own deals), each sort;
   and the whole page through the test client (view, template, middleware). Baseline: the
   statements it sent, run as raw SQL.
3. Moves: `deal_services.deal_move` of random open deals between the first two stages
   (the second has a next-step task, so each move also makes an activity). Baseline: the
   raw UPDATE of one row by id.
4. Forecast: `deal_queries.forecast` over 12 months for the administrator and the seller.
   Baseline: its statements as raw SQL.

Options: --deals (1,000,000), --open (100,000), --queries per case (10), --moves (100),
--seed, --explain (plans of cases over target, to stderr).
"""

import argparse
import datetime as dt
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Callable

from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test import Client as HttpClient

from clientbase.accounts.models import Role
from clientbase.accounts.services import user_create
from clientbase.core import clock
from clientbase.core.demo import ensure_demo_org
from clientbase.core.demo_clients import roomy_sqlite_cache
from clientbase.core.numbering import reserve_numbers
from clientbase.sales import deal_queries, deal_services
from clientbase.sales.models import Deal, Pipeline
from clientbase.sales.pipelines import default_pipeline

DEFAULT_DEALS = 1_000_000
DEFAULT_OPEN = 100_000
DEFAULT_QUERIES = 10
DEFAULT_MOVES = 100
BATCH = 50_000
TARGETS_MS = {"board": 100, "move": 30, "forecast": 300}
CURRENCIES = {"EUR": 80, "USD": 15, "RUB": 5}
COLUMNS = (
    "id", "number", "name", "pipeline_id", "stage_id", "status", "value_minor", "currency",
    "probability", "expected_close", "campaign", "client_id", "lead_id", "lost_reason",
    "closed_on", "notes", "created_at", "stage_entered_at", "version", "owner_id", "org_unit_id",
)  # fmt: skip
NAMES = ["Website", "Hosting", "Support plan", "Migration", "Licences", "Audit", "Training"]


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(0.95 * len(ordered)) - 1, 0)]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def _sellers(org) -> list:
    role = Role.objects.get(slug="sales")
    people = [org.users["sales.paris"]]
    for n in range(1, 20):
        people.append(
            user_create(
                username=f"seller{n:02d}",
                password=None,
                by=None,
                first_name="Seller",
                last_name=f"{n:02d}",
                email=f"seller{n:02d}@bench.example",
                role=role,
                org_unit=org.units["Paris Team A" if n % 2 else "Paris Team B"],
            )
        )
    return people


def _write(rows: list[tuple]) -> None:
    quote = connection.ops.quote_name
    table = quote(Deal._meta.db_table)
    columns = ", ".join(quote(c) for c in COLUMNS)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(COLUMNS))
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)


def generate(deals: int, open_deals: int, rng: random.Random, sellers: list) -> Pipeline:
    """`deals` deals, `open_deals` of them open, oldest first, by bulk inserts."""
    pipeline = default_pipeline(Pipeline.Kind.DEAL)
    stages = list(pipeline.stages.order_by("position"))
    open_stages, won, lost = stages[:3], stages[3], stages[4]
    people = [(u.pk, u.org_unit_id) for u in sellers]
    adapt = connection.ops.adapt_datetimefield_value
    now = clock.now()
    today = clock.today()
    history = dt.timedelta(days=5 * 365)
    step = history / deals
    # The newest quarter holds the open deals, mixed with the recently closed ones.
    recent_from = deals - deals // 4
    open_share = min(1.0, open_deals / max(deals - recent_from, 1))
    with roomy_sqlite_cache():
        for first in range(0, deals, BATCH):
            count = min(BATCH, deals - first)
            currencies = rng.choices(list(CURRENCIES), list(CURRENCIES.values()), k=count)
            rows = []
            with transaction.atomic():
                numbers = reserve_numbers("deal", count)
                for j in range(count):
                    i = first + j
                    created = now - history + step * i
                    owner, unit = rng.choice(people)
                    value = rng.randint(100, 50_000) * 100
                    closed_on = expected = None
                    reason = ""
                    if i >= recent_from and rng.random() < open_share:
                        stage = rng.choices(open_stages, [50, 30, 20])[0]
                        expected = today + dt.timedelta(days=rng.randint(-60, 365))
                        status = "open"
                    else:
                        stage = won if rng.random() < 0.4 else lost
                        status = stage.state
                        closed_on = (created + dt.timedelta(days=rng.randint(1, 90))).date()
                        closed_on = min(closed_on, today)
                        expected = closed_on
                        reason = "Price" if status == "lost" else ""
                    rows.append((
                        i + 1, numbers[j].text, f"{rng.choice(NAMES)} {i}", pipeline.pk,
                        stage.pk, status, value, currencies[j], stage.probability, expected, "",
                        None, None, reason, closed_on, "", adapt(created), adapt(created), 1,
                        owner, unit,
                    ))  # fmt: skip
                _write(rows)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('sales_deal', 'id'), "
                "(SELECT max(id) FROM sales_deal))"
            )
            cursor.execute("VACUUM ANALYZE")
        else:
            cursor.execute("ANALYZE")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return pipeline


class Case:
    """Calls of the code under test, each with the statements it sent, replayable as raw SQL."""

    def __init__(self) -> None:
        self.calls: list[Callable[[], object]] = []
        self.statements: list[list[tuple[str, object]]] = []
        self.queries = 0

    def add(self, call: Callable[[], object]) -> None:
        sent: list[tuple[str, object]] = []

        def capture(execute, sql, params, many, context):
            sent.append((sql, params))
            return execute(sql, params, many, context)

        with connection.execute_wrapper(capture):
            call()
        self.queries = max(self.queries, len(sent))
        self.calls.append(call)
        self.statements.append(sent)


def _raw(statements: list[tuple[str, object]]) -> Callable[[], None]:
    def run() -> None:
        with connection.cursor() as cursor:
            for sql, params in statements:
                cursor.execute(sql, params)
                if cursor.description is not None:
                    cursor.fetchall()

    return run


def _timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _figures(mine: list[float], raw: list[float] | None, queries: int, target: str) -> dict:
    figures = {
        "p50_ms": _ms(statistics.median(mine)),
        "p95_ms": _ms(_p95(mine)),
        "queries": queries,
        "target_ms": TARGETS_MS[target],
    }
    if raw:
        figures.update(
            baseline_p50_ms=_ms(statistics.median(raw)),
            baseline_p95_ms=_ms(_p95(raw)),
            ratio=round(_p95(mine) / max(_p95(raw), 1e-6), 2),
        )
    figures["within_target"] = figures["p95_ms"] <= TARGETS_MS[target]
    return figures


def _measure(case: Case, target: str) -> dict:
    mine, raw = [], []
    for call, statements in zip(case.calls, case.statements, strict=True):
        mine.append(_timed(call))
        raw.append(_timed(_raw(statements)))
    return _figures(mine, raw, case.queries, target)


def _explain(name: str, statements: list[tuple[str, object]]) -> None:
    with connection.cursor() as cursor:
        for sql, params in statements:
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            if connection.vendor == "postgresql":
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            else:
                cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            plan = "\n".join(" ".join(str(c) for c in row) for row in cursor.fetchall())
            print(f"--- {name}\n{sql}\n{params}\n{plan}\n", file=sys.stderr)


def _board_cases(users: dict, pipeline: Pipeline, n: int, options) -> dict:
    cases = {}
    for who, user in users.items():
        for sort in deal_queries.SORTS:
            filters = deal_queries.BoardFilters(sort=sort)
            case = Case()
            for _k in range(n):
                case.add(lambda u=user, f=filters: deal_queries.board(u, pipeline, f))
            cases[f"{who}_{sort}"] = _measure(case, "board")
            if options.explain and not cases[f"{who}_{sort}"]["within_target"]:
                _explain(f"board {who}_{sort}", case.statements[0])
    return cases


def _page_cases(users: dict, n: int) -> dict:
    """The whole board page through the test client: view, template and middleware."""
    cases = {}
    for who, user in users.items():
        http = HttpClient(HTTP_HOST="localhost")
        http.force_login(user)
        http.get("/sales/deals/board/", secure=True)  # warm: session, templates
        times = []
        for _k in range(n):
            started = time.perf_counter()
            response = http.get("/sales/deals/board/", secure=True)
            times.append(time.perf_counter() - started)
            assert response.status_code == 200, response.status_code
        cases[who] = _figures(times, None, 0, "board")
    return cases


def _moves(users: dict, pipeline: Pipeline, count: int, rng: random.Random) -> dict:
    stages = list(pipeline.stages.order_by("position"))
    first, second = stages[0], stages[1]
    deal_services.stage_task_save(by=None, stage=second, subject="Send the proposal")
    seller = users["own"]
    ids = list(
        Deal.objects.filter(stage=first, owner=seller).values_list("pk", flat=True)[: count * 3]
    )
    rng.shuffle(ids)
    mine, raw = [], []
    queries = 0
    for pk in ids[:count]:
        deal = deal_queries.deal_get(seller, pk)
        sent: list = []

        def capture(execute, sql, params, many, context, sent=sent):
            sent.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(capture):
            started = time.perf_counter()
            deal_services.deal_move(by=seller, deal=deal, stage=second, version=deal.version)
            mine.append(time.perf_counter() - started)
        queries = max(queries, len(sent))

        def baseline(pk=pk):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE sales_deal SET stage_id = %s, probability = %s, version = version + 1 "
                    "WHERE id = %s",
                    [second.pk, second.probability, pk],
                )

        raw.append(_timed(baseline))
    return _figures(mine, raw, queries, "move")


def _forecast_cases(users: dict, n: int, options) -> dict:
    start = clock.today().replace(day=1)
    cases = {}
    for who, user in users.items():
        case = Case()
        for _k in range(n):
            case.add(lambda u=user: deal_queries.forecast(u, start=start, months=12))
        cases[who] = _measure(case, "forecast")
        if options.explain and not cases[who]["within_target"]:
            _explain(f"forecast {who}", case.statements[0])
    return cases


def run(argv: list[str]) -> dict:
    """Generate the deals, then time the board, moves and the forecast."""
    parser = argparse.ArgumentParser(prog="clientbase bench sales_board")
    parser.add_argument("--deals", type=_positive, default=DEFAULT_DEALS)
    parser.add_argument("--open", type=_positive, default=DEFAULT_OPEN)
    parser.add_argument("--queries", type=_positive, default=DEFAULT_QUERIES, help="per case")
    parser.add_argument("--moves", type=_positive, default=DEFAULT_MOVES)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--explain", action="store_true", help="plans of slow cases to stderr")
    options = parser.parse_args(argv)
    if options.open > options.deals:
        raise CommandError("--open cannot exceed --deals")
    if Deal.objects.exists():
        raise CommandError("the benchmark needs an empty database; this one holds deals")

    rng = random.Random(options.seed)
    org = ensure_demo_org()
    sellers = _sellers(org)
    started = time.perf_counter()
    pipeline = generate(options.deals, options.open, rng, sellers)
    summary_rows = deal_services.deal_summary_rebuild()
    fill_seconds = time.perf_counter() - started
    users = {"all": org.users["admin"], "own": org.users["sales.paris"]}
    load_before = os.getloadavg()[0]
    board = _board_cases(users, pipeline, options.queries, options)
    page = _page_cases(users, options.queries)
    forecast = _forecast_cases(users, options.queries, options)
    move = _moves(users, pipeline, options.moves, rng)
    worst_board = max(c["p95_ms"] for c in board.values())
    worst_page = max(c["p95_ms"] for c in page.values())
    worst_forecast = max(c["p95_ms"] for c in forecast.values())
    return {
        "database": connection.vendor,
        "deals": options.deals,
        "open": Deal.objects.filter(status=Deal.Status.OPEN).count(),
        "fill_seconds": round(fill_seconds, 1),
        "summary_rows": summary_rows,
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "board": board,
        "board_page": page,
        "move": move,
        "forecast": forecast,
        "worst_board_p95_ms": worst_board,
        "worst_board_page_p95_ms": worst_page,
        "move_p95_ms": move["p95_ms"],
        "worst_forecast_p95_ms": worst_forecast,
        "within_target": worst_board <= TARGETS_MS["board"]
        and worst_page <= TARGETS_MS["board"]
        and move["p95_ms"] <= TARGETS_MS["move"]
        and worst_forecast <= TARGETS_MS["forecast"],
    }
