"""Benchmark: client import and export (PLT-5) of a large file, beside raw SQL doing the same.

1. A CSV of --rows realistic clients (demo names, addresses, valid phones and tax ids in
   four markets), with a few broken rows and some emails repeated, written to disk.
2. Its import (validation, de-duplication, bulk writes with history), then the same file
   again, which must change nothing; rows a second and the process's peak memory (and that
   of its child processes: the import reads and checks a big file in a second process).
3. The export of every client to CSV (and to XLSX), rows a second.
4. Baselines: the same client rows (and their audit and newsfeed rows) inserted again by
   one raw executemany or COPY, and the exported columns read by raw SQL into csv.writer.
"""

import argparse
import csv
import multiprocessing
import os
import random
import resource
import tempfile
import time
from pathlib import Path

from django.core.management.base import CommandError
from django.db import connection, transaction

from clientbase.clients import io
from clientbase.clients.models import Client
from clientbase.core.demo import DEMO_USERS, ensure_demo_org
from clientbase.core.demo_clients import (
    COMPANY_MAILBOXES,
    DEFAULT_SEED,
    MARKETS,
    PERSONAL_DOMAINS,
    PHONE_PATTERNS,
    demo_pools,
    demo_tax_id,
)
from clientbase.core.models import AuditEntry, Event
from clientbase.core.visibility import visible

DEFAULT_ROWS = 1_000_000
HEADERS = [
    "Kind", "Name", "Email", "Phone", "Tax id", "Street", "Postcode", "City", "Country",
    "Currency", "Language", "Owner",
]  # fmt: skip
# One row in this many is broken (in one of four ways), and one in this many repeats the
# email of a row a little above it.
BROKEN_EVERY = 1_000
REPEATED_EVERY = 200
# Rows a raw baseline reads back and inserts again per statement.
BASELINE_CHUNK = 20_000


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _peak_rss_mb() -> float:
    """The process's peak resident memory so far (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _children_peak_rss_mb() -> float:
    """The peak resident memory of the largest child process that has ended (the file's
    writer, or the import's reading process)."""
    return round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)


def _rss_now_mb() -> float:
    """The process's resident memory now (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def write_file(path: Path, rows: int, seed: int) -> dict:
    """The CSV of `rows` clients; what it holds (good, broken, repeated)."""
    pools = demo_pools(seed)
    rng = random.Random(f"{seed}-clients-io")
    sellers = {
        market.country: [u[0] for u in DEMO_USERS if u[3] == "sales" and u[5] == market.language]
        or [u[0] for u in DEMO_USERS if u[3] == "sales"]
        for market in MARKETS
    }
    weights = [market.weight for market in MARKETS]
    broken = repeated = 0
    emails: list[str] = []
    with path.open("w", newline="", encoding="utf-8") as target:
        writer = csv.writer(target)
        writer.writerow(HEADERS)
        for i in range(rows):
            market = rng.choices(MARKETS, weights)[0]
            pool = pools[market.country]
            company = rng.random() < 0.4
            if company:
                name, domain = rng.choice(pool.companies)
                email = f"{rng.choice(COMPANY_MAILBOXES)}.{i}@{domain}.example"
            else:
                gender = "m" if rng.random() < 0.5 else "f"
                first, first_slug = rng.choice(pool.firsts[gender])
                last, last_slug = rng.choice(pool.lasts[gender])
                name = f"{first} {last}"
                email = f"{first_slug}.{last_slug}.{i}@{rng.choice(PERSONAL_DOMAINS)}"
            phone = rng.choice(pool.phones)
            if rng.random() < 0.5:
                # As people type them: a space after the country code.
                code = str(PHONE_PATTERNS[market.country][0])
                phone = f"+{code} {phone[len(code) + 1 :]}"
            tax_id = demo_tax_id(rng, market.country, company=company)
            country = market.country
            if i % BROKEN_EVERY == BROKEN_EVERY - 1:
                broken += 1
                flaw = (i // BROKEN_EVERY) % 4
                if flaw == 0:
                    email = email.replace("@", " at ")
                elif flaw == 1:
                    phone = "+1 555"
                elif flaw == 2:
                    country = "Atlantis"
                else:
                    tax_id = "12345" if market.country in ("RU", "FR", "VN") else "#?!"
            elif i % REPEATED_EVERY == REPEATED_EVERY - 1 and emails:
                repeated += 1
                email = emails[-rng.randint(1, len(emails))].upper()
            emails.append(email)
            if len(emails) > 1_000:
                emails = emails[-100:]
            writer.writerow(
                [
                    "Company" if company else "Individual",
                    name,
                    email,
                    phone,
                    tax_id,
                    rng.choice(pool.streets),
                    rng.choice(pool.postcodes),
                    rng.choice(pool.cities),
                    country,
                    market.currency,
                    market.language,
                    rng.choice(sellers[market.country]),
                ]
            )
    return {"rows": rows, "broken": broken, "repeated": repeated}


def _in_child(function, *args):
    """A function's result, computed in a forked child: its memory never counts in ours.

    Forked, not spawned: this module is loaded from bench/ and cannot be imported by name.
    """
    receiving, sending = multiprocessing.Pipe(duplex=False)

    def work() -> None:
        sending.send(function(*args))

    child = multiprocessing.get_context("fork").Process(target=work)
    child.start()
    result = receiving.recv()
    child.join()
    if child.exitcode:
        raise CommandError(f"{function.__name__} failed in its process")
    return result


def import_file(path: Path, user) -> tuple[io.ImportResult, float]:
    """The file imported as the import page does it; the result and the seconds it took."""
    with path.open("rb") as upload:
        started = time.perf_counter()
        sheet = io.inspect_upload(upload)
        mapping = io.check_mapping(sheet, io.guess_mapping(sheet.headers))
        result = io.import_clients(upload, sheet, mapping, by=user)
        return result, time.perf_counter() - started


def _counts() -> tuple[int, int, int, int]:
    return (
        Client.everything.count(),
        Event.objects.count(),
        AuditEntry.objects.count(),
        sum(Client.everything.values_list("version", flat=True).iterator(chunk_size=20_000)),
    )


def _reinsert_seconds(model, *, where: str = "", fresh: tuple[str, ...] = ()) -> tuple[float, int]:
    """Seconds to insert again, by raw executemany or COPY, the rows of a table (fresh values
    in the unique columns), read back in chunks beforehand; and the rows inserted."""
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    columns = ", ".join(quote(f.column) for f in fields)
    renamed = {i for i, f in enumerate(fields) if f.name in fresh}
    insert = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MAX(id) FROM {table}")
        (last,) = cursor.fetchone()
    seconds, done, after = 0.0, 0, 0
    while after < (last or 0):
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, {columns} FROM {table} WHERE id > %s {where} ORDER BY id LIMIT %s",
                [after, BASELINE_CHUNK],
            )
            stored = cursor.fetchall()
        if not stored:
            break
        after = stored[-1][0]
        rows = [
            tuple(f"b{value}" if i in renamed else value for i, value in enumerate(row[1:]))
            for row in stored
            if row[0] <= last
        ]
        started = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                cursor.executemany(insert, rows)
        seconds += time.perf_counter() - started
        done += len(rows)
    return seconds, done


def _analyze_where_autovacuum_is_off() -> bool:
    """ANALYZE the filled tables, as autovacuum does after a load, where it is turned off.

    Without statistics PostgreSQL plans the re-import's lookups and the export for the empty
    tables it last saw (the export then walked a partial index and looked up users row by
    row at a third of its speed); whether the bench did so is in the figures.
    """
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        if cursor.fetchone()[0] == "on":
            return False
        for model in (Client, AuditEntry, Event):
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
    return True


def export_seconds(user, target: Path, fmt: str) -> tuple[float, int]:
    """Seconds to export every client the user sees, as the export page streams it; bytes."""
    clients = visible(Client.objects.all(), user)
    started = time.perf_counter()
    size = 0
    with target.open("wb") as out:
        if fmt == "csv":
            chunks = io.csv_chunks(io.export_rows(clients, dates_as_text=True))
        else:
            chunks = io.xlsx_chunks(io.export_rows(clients), title="Clients")
        for chunk in chunks:
            size += out.write(chunk)
    return time.perf_counter() - started, size


def baseline_export_seconds(target: Path) -> float:
    """Seconds to read the same columns by raw SQL and write them with csv.writer."""
    names = [name for name, _label in io.EXPORT_COLUMNS]
    sql, params = Client.objects.values_list(*names).query.sql_with_params()
    started = time.perf_counter()
    # A server-side cursor on PostgreSQL, as the export's iterator uses: rows stream.
    with (
        target.open("w", newline="", encoding="utf-8") as out,
        connection.chunked_cursor() as cursor,
    ):
        writer = csv.writer(out)
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(io.EXPORT_CHUNK):
            writer.writerows(rows)
    return time.perf_counter() - started


def run(argv: list[str]) -> dict:
    """Write, import, import again and export --rows clients; return the figures."""
    parser = argparse.ArgumentParser(prog="clientbase bench clients_io")
    parser.add_argument("--rows", type=_positive, default=DEFAULT_ROWS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--user", default="admin", help="the demo user who imports")
    parser.add_argument("--no-xlsx", action="store_true", help="skip the XLSX export")
    options = parser.parse_args(argv)
    if Client.everything.exists():
        raise CommandError("the benchmark needs an empty database; this one holds clients")
    user = ensure_demo_org().users[options.user]
    folder = Path(os.environ.get("CLIENTBASE_VAR_DIR") or tempfile.mkdtemp())
    path = folder / "clients.csv"
    figures: dict = {"rows": options.rows, "database": connection.vendor}

    started = time.perf_counter()
    made = _in_child(write_file, path, options.rows, options.seed)
    figures["file_mb"] = round(path.stat().st_size / 1024 / 1024, 1)
    figures["file_seconds"] = round(time.perf_counter() - started, 1)
    figures["rss_before_import_mb"] = _rss_now_mb()
    figures["peak_rss_before_import_mb"] = _peak_rss_mb()

    children_before = _children_peak_rss_mb()
    first, seconds = import_file(path, user)
    figures["import_seconds"] = round(seconds, 1)
    figures["import_rows_per_second"] = round(options.rows / seconds)
    figures["import_peak_rss_mb"] = _peak_rss_mb()
    # The reading process (a fork, for a file of PARALLEL_FROM_BYTES and more) is not in
    # the figure above; ended children are, here (the file writer's too, before it).
    figures["children_peak_rss_before_import_mb"] = children_before
    figures["children_peak_rss_after_import_mb"] = _children_peak_rss_mb()
    figures["imported"] = {
        "created": first.created,
        "updated": first.updated,
        "unchanged": first.unchanged,
        "failed": first.failed,
        "errors": first.errors_total,
    }
    figures["file"] = made

    figures["analyzed_by_bench"] = _analyze_where_autovacuum_is_off()
    before = _counts()
    second, seconds = import_file(path, user)
    figures["reimport_seconds"] = round(seconds, 1)
    figures["reimport_rows_per_second"] = round(options.rows / seconds)
    figures["reimported"] = {
        "created": second.created,
        "updated": second.updated,
        "unchanged": second.unchanged,
        "failed": second.failed,
    }
    figures["reimport_changed_nothing"] = _counts() == before
    figures["reimport_peak_rss_mb"] = _peak_rss_mb()

    clients = first.created
    seconds, size = export_seconds(user, folder / "export.csv", "csv")
    figures["export_csv_rows_per_second"] = round(clients / seconds)
    figures["export_csv_mb"] = round(size / 1024 / 1024, 1)
    if not options.no_xlsx:
        seconds, size = export_seconds(user, folder / "export.xlsx", "xlsx")
        figures["export_xlsx_rows_per_second"] = round(clients / seconds)
        figures["export_xlsx_mb"] = round(size / 1024 / 1024, 1)
    seconds = baseline_export_seconds(folder / "baseline.csv")
    figures["baseline_export_rows_per_second"] = round(clients / seconds)
    figures["export_ratio"] = round(
        figures["export_csv_rows_per_second"] / figures["baseline_export_rows_per_second"], 3
    )

    client_seconds, inserted = _reinsert_seconds(Client, fresh=("number", "email"))
    # The same history rows again: the audit entries and newsfeed events of the clients.
    history_seconds = _reinsert_seconds(AuditEntry)[0] + _reinsert_seconds(Event)[0]
    figures["baseline_insert_rows_per_second"] = round(inserted / client_seconds)
    figures["baseline_insert_with_history_rows_per_second"] = round(
        inserted / (client_seconds + history_seconds)
    )
    figures["import_ratio"] = round(
        figures["import_rows_per_second"] / figures["baseline_insert_with_history_rows_per_second"],
        3,
    )
    figures["import_ratio_clients_only"] = round(
        figures["import_rows_per_second"] / figures["baseline_insert_rows_per_second"], 3
    )
    figures["load_average"] = round(os.getloadavg()[0], 1)
    for name in ("clients.csv", "export.csv", "export.xlsx", "baseline.csv"):
        (folder / name).unlink(missing_ok=True)
    return figures
