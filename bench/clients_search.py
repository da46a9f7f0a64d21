"""Benchmark: quick search, duplicate check and keyset list pages over many demo clients.

Each case is timed server-side (the Python call, rows turned into models included) over
fragments drawn from the data, beside the nearest raw SQL doing the same lookup through the
same index; `ratio` is p95 / baseline p95.
"""

import argparse
import math
import os
import random
import statistics
import time
from collections.abc import Callable

from django.core.management.base import CommandError
from django.db import connection

from clientbase.clients import search
from clientbase.clients.models import Client
from clientbase.core.demo import ensure_demo_org
from clientbase.core.demo_clients import DEFAULT_SEED, demo_clients_create

DEFAULT_CLIENTS = 100_000
DEFAULT_QUERIES = 60
PAGE_SIZE = 50
TARGETS_MS = {"quick_search": 50, "duplicate_check": 10, "list_page": 50}
# Digits a clerk dials before a national number, by the client's country.
NATIONAL_PREFIX = {"RU": "8", "FR": "0", "VN": "0", "GB": "0", "US": ""}
LIVE = "merged_into_id IS NULL AND deleted_at IS NULL"
LIVE_C = "c.merged_into_id IS NULL AND c.deleted_at IS NULL"
COLUMNS = "*"


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


def _timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _case(ours: list[Callable], baseline: list[Callable]) -> dict:
    """Time each pair, alternating which runs first so neither always finds a warm cache."""
    mine, raw = [], []
    for index, (call, raw_call) in enumerate(zip(ours, baseline, strict=True)):
        if index % 2:
            raw.append(_timed(raw_call))
            mine.append(_timed(call))
        else:
            mine.append(_timed(call))
            raw.append(_timed(raw_call))
    return {
        "p50_ms": _ms(statistics.median(mine)),
        "p95_ms": _ms(_p95(mine)),
        "baseline_p50_ms": _ms(statistics.median(raw)),
        "baseline_p95_ms": _ms(_p95(raw)),
        "ratio": round(_p95(mine) / _p95(raw), 2),
    }


def _raw(sql: str, params: list) -> Callable[[], list]:
    def run() -> list:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    return run


# --- Fragments, drawn from the data as a clerk would type them -------------------------------


def _sample(rng: random.Random, count: int, **filters) -> list[Client]:
    top = Client.objects.order_by("-id").values_list("id", flat=True).first()
    found: dict[int, Client] = {}
    while len(found) < count:
        ids = [rng.randint(1, top) for _ in range(count * 3)]
        for client in Client.objects.filter(pk__in=ids, **filters):
            found.setdefault(client.pk, client)
    chosen = sorted(found)
    rng.shuffle(chosen)
    return [found[pk] for pk in chosen[:count]]


def _piece(rng: random.Random, word: str, shortest: int, longest: int) -> str:
    length = rng.randint(min(shortest, len(word)), min(longest, len(word)))
    start = rng.randint(0, len(word) - length)
    return word[start : start + length]


def _surname_part(rng: random.Random, client: Client) -> str:
    words = client.name.split()
    # Surname first in Russian and Vietnamese, last elsewhere; a short one ("Lê") is typed
    # with more of the name, so the longest word stands in for it.
    surname = words[0] if client.country in ("RU", "VN") else words[-1]
    if len(surname) < 4:
        surname = max(words, key=len)
    return _piece(rng, surname, 4, 6)


def _email_part(rng: random.Random, client: Client) -> str:
    # The person's part of the address, before the per-client serial: "ier.ale" of
    # "olivier.alexandre.123@…".
    local = client.email.split("@")[0].rsplit(".", 1)[0]
    return _piece(rng, local, 6, 9)


def _phone_part(rng: random.Random, client: Client) -> str:
    code = {"RU": "7", "FR": "33", "VN": "84", "GB": "44", "US": "1"}[client.country]
    national = client.phone.removeprefix("+" + code)
    if rng.random() < 0.5:
        # The start, dialled nationally: "8 916 123", "06 73 29".
        digits = NATIONAL_PREFIX[client.country] + national[:6]
        return f"{digits[:-6]} {digits[-6:-3]} {digits[-3:]}".strip()
    tail = national[-6:]
    return f"{tail[:2]}-{tail[2:4]}-{tail[4:]}"


def _tax_id_part(rng: random.Random, client: Client) -> str:
    digits = "".join(c for c in client.tax_id if c.isdigit())
    return _piece(rng, digits, 6, 6)


# --- Raw SQL baselines -----------------------------------------------------------------------


def _quick_baseline(text: str, limit: int, owner_id: int | None) -> Callable[[], list]:
    """The same index lookup in one hand-written statement, without models.

    For a seller, with the plain condition of their sight (owner_id), not core.visibility.
    """
    query = search._read(text)
    table = search.SQLITE_TABLE
    mine = "" if owner_id is None else f" AND owner_id = {owner_id:d}"
    if connection.vendor == "sqlite":
        return _raw(
            f"SELECT c.* FROM {table} s JOIN clients_client c ON c.id = s.rowid "
            f"WHERE s.{table} MATCH %s AND {LIVE_C}{mine.replace('owner_id', 'c.owner_id')} "
            "ORDER BY s.rowid DESC LIMIT %s",
            [search._fts_query(query), limit],
        )
    document = search.pg_document_sql()
    alternatives, params = [], []
    for words in query.alternatives:
        alternatives.append(" AND ".join([f"{document} ILIKE %s"] * len(words)))
        params += [f"%{search._escape_like(word.translate(search._PG_JOIN))}%" for word in words]
    condition = " OR ".join(f"({a})" for a in alternatives)
    return _raw(
        f"SELECT {COLUMNS} FROM clients_client WHERE {LIVE}{mine} AND ({condition}) "
        "ORDER BY id DESC LIMIT %s",
        [*params, limit],
    )


def _duplicates_baseline(email: str, phone: str, tax_id: str) -> Callable[[], list]:
    """The same index seeks as find_duplicates, in one hand-written statement, without models.

    As find_duplicates, an identifier left empty is not looked up.
    """
    limit = search.DUPLICATES_PER_FIELD
    lookups = [
        ("lower(email) = lower(%s)", email),
        ("phone = %s", phone),
        (
            "id IN (SELECT c.client_id FROM clients_contactphone p JOIN clients_contact c "
            "ON c.id = p.contact_id WHERE p.number = %s)",
            phone,
        ),
        ("tax_id = %s", tax_id),
    ]
    parts, params = [], []
    for condition, value in lookups:
        if value:
            parts.append(
                f"SELECT * FROM (SELECT {COLUMNS} FROM clients_client WHERE {condition} "
                f"AND {LIVE} ORDER BY id DESC LIMIT %s) AS t{len(parts)}"
            )
            params += [value, limit]
    return _raw(" UNION ALL ".join(parts), params)


# --- Cases -----------------------------------------------------------------------------------


def _quick_cases(rng, queries: int, users: dict) -> dict:
    people = _sample(rng, queries * 2, kind="individual")
    with_tax_id = [
        c for c in _sample(rng, queries * 2) if sum(ch.isdigit() for ch in c.tax_id) >= 6
    ]
    fragments = {
        "name": [_surname_part(rng, c) for c in people[:queries]],
        "email": [_email_part(rng, c) for c in people[queries:]],
        "phone": [_phone_part(rng, c) for c in _sample(rng, queries)],
        "tax_id": [_tax_id_part(rng, c) for c in with_tax_id[:queries]],
    }
    owners = {who: None if user.is_superuser else user.pk for who, user in users.items()}
    figures = {}
    for who, user in users.items():
        for kind, texts in fragments.items():
            figures[f"{who}_{kind}"] = _case(
                [lambda t=t, u=user: search.quick_search(u, t) for t in texts],
                [_quick_baseline(t, search.QUICK_LIMIT, owners[who]) for t in texts],
            )
    figures["examples"] = {kind: texts[:3] for kind, texts in fragments.items()}
    return figures


def _duplicate_case(rng, queries: int, user) -> dict:
    calls, baselines = [], []
    for index, client in enumerate(_sample(rng, queries)):
        if index % 2:
            # While typing: the values are new to the base.
            email, phone, tax_id = f"new.{index}@example.invalid", "+33100000000", "0000000000"
        else:
            email, phone, tax_id = client.email.upper(), client.phone, client.tax_id
        calls.append(
            lambda e=email, p=phone, t=tax_id: search.find_duplicates(
                user=user, email=e, phone=p, tax_id=t
            )
        )
        baselines.append(_duplicates_baseline(email, phone, tax_id))
    return _case(calls, baselines)


def _list_cases(rng, queries: int, users: dict) -> dict:
    ids = Client.objects.order_by("id").values_list("id", flat=True)
    low, high = ids.first(), ids.last()
    span = high - low
    where = {
        "start": lambda: None,
        "middle": lambda: rng.randint(low + span * 45 // 100, low + span * 55 // 100),
        "deep": lambda: rng.randint(low + PAGE_SIZE, max(low + span // 100, low + PAGE_SIZE)),
    }
    figures = {}
    for who, user in users.items():
        everyone = search.client_search_queryset(user, "")
        mine = "" if user.is_superuser else f" AND owner_id = {user.pk:d}"
        for name, after in where.items():
            starts = [after() for _ in range(queries)]
            figures[f"{who}_{name}"] = _case(
                [
                    lambda a=a, qs=everyone: search.keyset_page(qs, after=a, size=PAGE_SIZE)
                    for a in starts
                ],
                [
                    _raw(
                        f"SELECT {COLUMNS} FROM clients_client WHERE {LIVE}{mine} AND id < %s "
                        "ORDER BY id DESC LIMIT %s",
                        [a if a is not None else high + 1, PAGE_SIZE + 1],
                    )
                    for a in starts
                ],
            )
    return figures


def run(argv: list[str]) -> dict:
    """Generate --clients demo clients, then time search, duplicates and list pages."""
    parser = argparse.ArgumentParser(prog="clientbase bench clients_search")
    parser.add_argument("--clients", type=_positive, default=DEFAULT_CLIENTS)
    parser.add_argument("--queries", type=_positive, default=DEFAULT_QUERIES, help="per case")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    options = parser.parse_args(argv)
    if Client.objects.exists():
        raise CommandError("the benchmark needs an empty database; this one holds clients")

    # A later migration may have rebuilt clients_client on SQLite (dropping the triggers)
    # before the clients app puts them back after migrate; make sure, whoever runs this.
    search.ensure_search_index()
    org = ensure_demo_org()
    generated = demo_clients_create(clients=options.clients, org=org, seed=options.seed)
    if connection.vendor == "postgresql":
        # What autovacuum does after a load; the planner needs the statistics.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    # The administrator sees everything; a seller only the clients they own.
    users = {"all": org.users["admin"], "own": org.users["sales.paris"]}
    rng = random.Random(options.seed)
    # Warm the caches as a running server has them: one untimed pass of each kind.
    _quick_cases(random.Random(options.seed + 1), 5, users)
    _list_cases(random.Random(options.seed + 1), 3, users)
    _duplicate_case(random.Random(options.seed + 1), 5, users["own"])

    load_before = os.getloadavg()[0]
    quick = _quick_cases(rng, options.queries, users)
    duplicates = _duplicate_case(rng, options.queries, users["own"])
    pages = _list_cases(rng, options.queries, users)
    examples = quick.pop("examples")
    worst = {
        "quick_search": max(f["p95_ms"] for f in quick.values()),
        "duplicate_check": duplicates["p95_ms"],
        "list_page": max(f["p95_ms"] for f in pages.values()),
    }
    return {
        "clients": generated.total,
        "database": connection.vendor,
        # The machine's load while timing (absolute times grow with it; ratios less).
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "generate_seconds": round(generated.seconds, 1),
        "queries_per_case": options.queries,
        "quick_search": quick,
        "duplicate_check": duplicates,
        "list_page": pages,
        "worst_p95_ms": worst,
        "targets_p95_ms": TARGETS_MS,
        "targets_met": all(worst[name] <= TARGETS_MS[name] for name in TARGETS_MS),
        "fragment_examples": examples,
    }
