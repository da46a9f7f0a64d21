"""Benchmark: the ticket list (SUP-1) over a million tickets, any filter, beside its raw SQL.

1. --clients demo clients (the fastest generator: COPY on PostgreSQL), five departments,
   20 staff who take tickets (the administrator, the Paris seller and 18 agents), then
   --tickets tickets by bulk inserts (COPY on PostgreSQL, executemany in big transactions on
   SQLite, its subject trigram index filled once after them), then ANALYZE. Distribution: 65 % from clients, the rest from guests; most
   closed, the unresolved ones (about 6 %, 5 % awaiting our reply) mostly among the recent;
   a third of those awaiting past their deadline; 1 % complaints; 0.3 % merged;
   priorities low 25 %, medium 55 %, high 15 %, urgent 5 %; subjects in four languages.
2. `ticket_page(user, TicketFilters(...))` timed server-side (the query and the models it
   builds) for the administrator (sees everything) and for a seller whose role's scope is
   "own" (sees the tickets of their own clients and the guests' tickets assigned to them),
   over every filter, and 20 pages deep by `next_after`; beside it, as the baseline, the
   very statement it sent, run as raw SQL and fetched as tuples. `ratio` is p95 over the
   baseline's p95.
3. The dashboard counters (awaiting reply, overdue, my queue) the same way, counted as the
   list page and the dashboard count them: up to queries.COUNT_CAP + 1 (shown as "99+").

Options: --tickets (1,000,000), --clients (100,000), --queries per case (30), --seed,
--explain (the plan of each case's statement missing the target, to stderr; EXPLAIN
ANALYZE on PostgreSQL, EXPLAIN QUERY PLAN on SQLite), --index SQL (repeatable: run after
the first pass, then every case is timed again under `with_indexes`, to measure an index
the models do not have yet).
"""

import argparse
import contextlib
import datetime as dt
import importlib
import math
import os
import random
import re
import statistics
import sys
import time
from collections.abc import Callable

from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.models import Count

from clientbase.accounts.models import Role
from clientbase.accounts.services import user_create
from clientbase.clients.models import Client
from clientbase.core import clock
from clientbase.core.demo import ensure_demo_org
from clientbase.core.demo_clients import DEFAULT_SEED, demo_clients_create, roomy_sqlite_cache
from clientbase.core.numbering import reserve_numbers
from clientbase.support import queries
from clientbase.support.models import Ticket
from clientbase.support.queries import TicketFilters
from clientbase.support.services import department_save

DEFAULT_TICKETS = 1_000_000
DEFAULT_CLIENTS = 100_000
DEFAULT_QUERIES = 30
DEEP_PAGES = 20
TARGET_MS = 50
BATCH = 100_000
HISTORY = dt.timedelta(days=730)

DEPARTMENTS = [  # name, address, share of tickets
    ("Technical support", "support@bench.example", 40),
    ("Billing", "billing@bench.example", 25),
    ("Sales questions", "sales@bench.example", 15),
    ("Domains", "domains@bench.example", 10),
    ("Abuse", "abuse@bench.example", 10),
]
PRIORITIES = {"low": 25, "medium": 55, "high": 15, "urgent": 5}
# Unresolved tickets by status; 80 % of them wait for our reply.
UNRESOLVED = {"open": 45, "customer_reply": 35, "answered": 10, "on_hold": 5, "in_progress": 5}
SOURCES = {"email": 70, "staff": 20, "api": 10}
SUBJECTS = [
    "Не работает почта на домене {n}", "Счёт {n} не оплачивается картой",
    "Ошибка 502 на сервере vps-{n}", "Перенос сайта на новый тариф",
    "Problème de facturation n°{n}", "Le site ne répond plus depuis ce matin",
    "Certificat SSL expiré sur site{n}.fr", "Demande de remboursement",
    "Không truy cập được trang quản trị", "Hóa đơn số {n} bị sai số tiền",
    "Cannot log in to the control panel", "Invoice {n} charged twice",
    "Website down since this morning", "Upgrade request for account {n}",
]  # fmt: skip
# Words an agent types to find a ticket by its subject, common and rare.
SUBJECT_WORDS = ["почта", "facturation", "trang quản trị", "charged", "тариф", "SSL", "down"]
COLUMNS = (
    "id", "org_unit_id", "number", "client_id", "contact_id", "email", "name",
    "department_id", "subject", "subject_search", "priority", "status", "owner_id", "cc", "is_complaint",
    "source", "created_at", "last_activity_at", "due_at", "escalated_at", "closed_at",
    "closed_by_id", "merged_into_id", "access_key", "version",
)  # fmt: skip


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


def _pick(rng: random.Random, weights: dict[str, int], k: int) -> list[str]:
    return rng.choices(list(weights), list(weights.values()), k=k)


# --- Data ------------------------------------------------------------------------------------


def _staff(org) -> list:
    """The 20 people tickets are assigned to."""
    role = Role.objects.get(slug="support")
    agents = [org.users["admin"], org.users["sales.paris"]]
    for n in range(1, 19):
        agents.append(
            user_create(
                username=f"agent{n:02d}",
                password=None,
                by=None,
                first_name="Agent",
                last_name=f"{n:02d}",
                email=f"agent{n:02d}@bench.example",
                role=role,
                org_unit=org.units["Clientbase Demo"],
            )
        )
    return agents


def _write(rows: list[tuple]) -> None:
    quote = connection.ops.quote_name
    table = quote(Ticket._meta.db_table)
    columns = ", ".join(quote(c) for c in COLUMNS)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(COLUMNS))
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)


@contextlib.contextmanager
def _subject_index_later():
    """On SQLite, the subject FTS index built once after the inserts, not row by row by its
    triggers (which take as long as the inserts themselves)."""
    if connection.vendor != "sqlite":
        yield
        return
    fts = importlib.import_module("clientbase.support.migrations.0007_ticket_subject_fts")
    with connection.cursor() as cursor:
        for statement in fts.sqlite_drop_statements():
            cursor.execute(statement)
    yield
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in fts.sqlite_create_statements():
            cursor.execute(statement)


def generate(tickets: int, rng: random.Random, org, staff: list, departments: list) -> None:
    """`tickets` tickets in id order, oldest first, by bulk inserts."""
    people = list(Client.objects.values_list("id", "email", "name", "org_unit_id"))
    staff_ids = [u.pk for u in staff]
    company_unit = org.units["Clientbase Demo"].pk
    dept_ids = [d.pk for d in departments]
    dept_weights = [w for _n, _e, w in DEPARTMENTS]
    adapt = connection.ops.adapt_datetimefield_value
    now = clock.now()
    start = now - HISTORY
    step = HISTORY / tickets
    recent = int(tickets * 0.92)  # the newest 8 % hold most unresolved tickets
    with roomy_sqlite_cache(), _subject_index_later():
        for first in range(0, tickets, BATCH):
            count = min(BATCH, tickets - first)
            rows = []
            priorities = _pick(rng, PRIORITIES, count)
            sources = _pick(rng, SOURCES, count)
            unresolved = _pick(rng, UNRESOLVED, count)
            depts = rng.choices(dept_ids, dept_weights, k=count)
            with transaction.atomic():
                numbers = reserve_numbers("ticket", count)
                for j in range(count):
                    i = first + j
                    created = start + step * i
                    open_share = 0.65 if i >= recent else 0.012
                    status = unresolved[j] if rng.random() < open_share else "closed"
                    if rng.random() < 0.65:
                        client_id, email, name, unit = rng.choice(people)
                    else:
                        client_id, unit = None, company_unit
                        email, name = f"guest{rng.randrange(400_000)}@mail.example", "Guest"
                    if status == "closed" or rng.random() < 0.6:
                        owner = rng.choice(staff_ids)
                    else:
                        owner = None
                    activity = created + dt.timedelta(minutes=rng.randint(5, 7 * 24 * 60))
                    due = closed = closed_by = merged = None
                    if status in Ticket.AWAITING:
                        # A third past their deadline; the rest due within two hours.
                        if rng.random() < 1 / 3:
                            due = now - dt.timedelta(minutes=rng.randint(1, 60 * 24 * 10))
                        else:
                            due = now + dt.timedelta(minutes=rng.randint(1, 120))
                    elif status == "closed":
                        closed, closed_by = activity, owner
                        if i and rng.random() < 0.003:
                            merged = i  # the ticket before this one (ids start at 1)
                    text = rng.choice(SUBJECTS).format(n=rng.randrange(10_000, 100_000))
                    rows.append((
                        i + 1, unit, numbers[j].text, client_id, None, email, name, depts[j],
                        text, text.lower(), priorities[j], status, owner, "[]", rng.random() < 0.01,
                        sources[j], adapt(created), adapt(activity),
                        adapt(due) if due else None, None, adapt(closed) if closed else None,
                        closed_by, merged, f"{i:08x}{rng.getrandbits(128):032x}", 1,
                    ))  # fmt: skip
                _write(rows)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The ids were given explicitly: the identity continues after them.
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('support_ticket', 'id'), "
                "(SELECT max(id) FROM support_ticket))"
            )
            cursor.execute("VACUUM ANALYZE")
        else:
            cursor.execute("ANALYZE")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")


# --- Timing ----------------------------------------------------------------------------------


class Case:
    """Calls of the code under test, each with the statement it sent, as raw SQL."""

    def __init__(self) -> None:
        self.calls: list[Callable[[], object]] = []
        self.statements: list[tuple[str, object]] = []
        self.queries = 0

    def add(self, call: Callable[[], object]) -> None:
        # Run once, untimed: it warms the cache as a running server has it, and gives the
        # statement for the baseline, with its parameters bound the same way (SQLite plans
        # a literal value differently from a bound one).
        sent: list[tuple[str, object]] = []

        def capture(execute, sql, params, many, context):
            sent.append((sql, params))
            return execute(sql, params, many, context)

        with connection.execute_wrapper(capture):
            call()
        self.queries = max(self.queries, len(sent))
        self.calls.append(call)
        self.statements.append(sent[-1])


def _raw(sql: str, params: object) -> Callable[[], list]:
    def run() -> list:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    return run


def _timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _measure(case: Case) -> dict:
    mine, raw = [], []
    for index, (call, statement) in enumerate(zip(case.calls, case.statements, strict=True)):
        baseline = _raw(*statement)
        if index % 2:
            raw.append(_timed(baseline))
            mine.append(_timed(call))
        else:
            mine.append(_timed(call))
            raw.append(_timed(baseline))
    return {
        "p50_ms": _ms(statistics.median(mine)),
        "p95_ms": _ms(_p95(mine)),
        "baseline_p50_ms": _ms(statistics.median(raw)),
        "baseline_p95_ms": _ms(_p95(raw)),
        "ratio": round(_p95(mine) / _p95(raw), 2),
        "queries": case.queries,
    }


def _explain(name: str, statement: tuple[str, object]) -> None:
    sql, params = statement
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        plan = "\n".join(" ".join(str(c) for c in row) for row in cursor.fetchall())
    print(f"--- {name}\n{sql}\n{params}\n{plan}\n", file=sys.stderr)


def _page(user, filters: TicketFilters, after: int | None = None) -> Callable[[], object]:
    return lambda: queries.ticket_page(user, filters, after=after)


def _filter_cases(rng: random.Random, user, n: int, departments: list) -> dict[str, Case]:
    """Every filter of the list, `n` times each with values drawn from the data."""
    visible = queries.tickets_for(user)
    top = Ticket.objects.order_by("-id").values_list("id", flat=True).first()

    def sample(field: str, fallback: object, **where) -> list:
        values: list = []
        for _round in range(50):  # a tiny base may hold too few; then repeat what there is
            ids = [rng.randint(1, top) for _ in range(n * 4)]
            found = visible.filter(pk__in=ids, **where).values_list(field, flat=True)
            values += [v for v in found if v is not None]
            if len(values) >= n:
                break
        return ((values or [fallback]) * n)[:n]

    # The five-digit number in a subject with the letters before it (digits alone would
    # look a ticket number up): a handful of tickets have it.
    subjects = sample("subject", "vps-10000")
    rare = [m.group().strip() for s in subjects if (m := re.search(r".{4}\d{5}", s))]
    rare = ((rare or ["vps-10000"]) * n)[:n]
    statuses = list(Ticket.Status.values)
    plans: dict[str, list[TicketFilters]] = {
        "none": [TicketFilters()] * n,
        "status_awaiting": [TicketFilters(status="awaiting")] * n,
        "status_unresolved": [TicketFilters(status="unresolved")] * n,
        "status_each": [TicketFilters(status=statuses[k % len(statuses)]) for k in range(n)],
        "department": [TicketFilters(department=departments[k % 5].pk) for k in range(n)],
        "priority": [TicketFilters(priority=list(PRIORITIES)[k % 4]) for k in range(n)],
        "assignee_me": [TicketFilters(assignee="me")] * n,
        "assignee_none": [TicketFilters(assignee="none")] * n,
        "assignee_user": [TicketFilters(assignee=str(v)) for v in sample("owner_id", 1)],
        # The "my queue" counter's link.
        "my_queue": [TicketFilters(assignee="me", status="unresolved")] * n,
        "overdue": [TicketFilters(overdue=True)] * n,
        "complaint": [TicketFilters(complaint=True)] * n,
        "client": [TicketFilters(client=c) for c in sample("client_id", 0, client__isnull=False)],
        "q_number": [TicketFilters(q=f"#{int(v)}") for v in sample("number", "1")],
        "q_email": [TicketFilters(q=e) for e in sample("email", "nobody@bench.example")],
        "q_subject_word": [TicketFilters(q=SUBJECT_WORDS[k % 7]) for k in range(n)],
        "q_subject_rare": [TicketFilters(q=w) for w in rare],
        "combined": [
            TicketFilters(
                department=departments[k % 5].pk,
                status="awaiting",
                priority=list(PRIORITIES)[k % 4],
            )
            for k in range(n)
        ],
    }
    cases = {}
    for name, filters in plans.items():
        case = Case()
        for f in filters:
            case.add(_page(user, f))
        cases[name] = case
    # Twenty pages deep, following next_after as the "more" link does.
    deep, after = Case(), None
    for _page_number in range(DEEP_PAGES):
        page = queries.ticket_page(user, TicketFilters(), after=after)
        deep.add(_page(user, TicketFilters(), after))
        after = page.next_after
        if after is None:
            break
    cases["deep_20_pages"] = deep
    return cases


def _counter_cases(user, n: int) -> dict[str, Case]:
    cases = {}
    for name, count in (
        ("awaiting_reply", lambda: queries.count_upto(queries.awaiting_reply(user))),
        ("overdue", lambda: queries.count_upto(queries.overdue(user))),
        ("my_queue", lambda: queries.count_upto(queries.my_queue(user))),
    ):
        case = Case()
        for _k in range(n):
            case.add(count)
        cases[name] = case
    return cases


def run(argv: list[str]) -> dict:
    """Generate the tickets, then time every filter of the list and the counters."""
    parser = argparse.ArgumentParser(prog="clientbase bench support_tickets")
    parser.add_argument("--tickets", type=_positive, default=DEFAULT_TICKETS)
    parser.add_argument("--clients", type=_positive, default=DEFAULT_CLIENTS)
    parser.add_argument("--queries", type=_positive, default=DEFAULT_QUERIES, help="per case")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--explain", action="store_true", help="plans of slow cases to stderr")
    parser.add_argument(
        "--index", action="append", default=[], help="SQL run after a first pass; timed again"
    )
    options = parser.parse_args(argv)
    if Ticket.objects.exists():
        raise CommandError("the benchmark needs an empty database; this one holds tickets")

    rng = random.Random(options.seed)
    started = time.perf_counter()
    org = ensure_demo_org()
    generated = demo_clients_create(clients=options.clients, org=org, seed=options.seed)
    staff = _staff(org)
    departments = [
        department_save(
            by=None,
            name=name,
            email=email,
            org_unit=org.units["Clientbase Demo"],
            is_default=position == 0,
            position=position,
        )
        for position, (name, email, _share) in enumerate(DEPARTMENTS)
    ]
    clients_seconds = time.perf_counter() - started
    started = time.perf_counter()
    generate(options.tickets, rng, org, staff, departments)
    fill_seconds = time.perf_counter() - started
    figures = _measure_all(options, org, departments)
    index_seconds = 0.0
    if options.index:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            for sql in options.index:
                cursor.execute(sql)
            cursor.execute("ANALYZE")
        index_seconds = time.perf_counter() - started
        # The same cases again (same seed, same values) with the indexes.
        figures["with_indexes"] = _measure_all(options, org, departments)
    status_counts = dict(Ticket.objects.order_by().values_list("status").annotate(n=Count("id")))
    return {
        "database": connection.vendor,
        "tickets": Ticket.objects.count(),
        "clients": generated.total,
        "statuses": status_counts,
        "clients_seconds": round(clients_seconds, 1),
        "fill_seconds": round(fill_seconds, 1),
        "fill_tickets_per_s": round(options.tickets / fill_seconds),
        "extra_indexes": options.index,
        "index_seconds": round(index_seconds, 1),
        "queries_per_case": options.queries,
        "target_p95_ms": TARGET_MS,
        **figures,
    }


def _measure_all(options, org, departments) -> dict:
    """Every list case and counter for the administrator and the seller."""
    rng = random.Random(options.seed + 1)
    users = {"all": org.users["admin"], "own": org.users["sales.paris"]}
    load_before = os.getloadavg()[0]
    lists, counters = {}, {}
    for who, user in users.items():
        for name, case in _filter_cases(rng, user, options.queries, departments).items():
            lists[f"{who}_{name}"] = _measure(case)
            if options.explain and lists[f"{who}_{name}"]["p95_ms"] > TARGET_MS:
                _explain(f"{who}_{name}", case.statements[0])
        for name, case in _counter_cases(user, options.queries).items():
            counters[f"{who}_{name}"] = _measure(case)
            if options.explain and counters[f"{who}_{name}"]["p95_ms"] > TARGET_MS:
                _explain(f"{who}_{name}", case.statements[0])
    worst = max(lists, key=lambda k: lists[k]["p95_ms"])
    worst_counter = max(counters, key=lambda k: counters[k]["p95_ms"])
    return {
        # The machine's load while timing (absolute times grow with it; ratios less).
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "list": lists,
        "counters": counters,
        "worst_p95_ms": lists[worst]["p95_ms"],
        "worst_case": worst,
        "worst_counter_p95_ms": counters[worst_counter]["p95_ms"],
        "worst_counter": worst_counter,
        "over_target": sorted(k for k, v in lists.items() if v["p95_ms"] > TARGET_MS),
        "counters_over_target": sorted(k for k, v in counters.items() if v["p95_ms"] > TARGET_MS),
        "within_target": lists[worst]["p95_ms"] <= TARGET_MS
        and counters[worst_counter]["p95_ms"] <= TARGET_MS,
    }
