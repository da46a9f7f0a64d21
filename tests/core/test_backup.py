"""Backup and restore: the drill under concurrent writes, the commands, and refusals."""

import contextlib
import datetime as dt
import secrets
import sqlite3
import stat
import threading
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from urllib.parse import quote

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings

from clientbase.accounts.services import user_create
from clientbase.core.backup import (
    BackupError,
    PgDatabase,
    TableCount,
    database_from_url,
    postgres_backup,
    postgres_restore,
    sqlite_backup,
    sqlite_restore,
    summary_tables,
)
from clientbase.core.models import NumberSeries

transactional = pytest.mark.django_db(transaction=True)
DRILL_TABLES = ("core_numberseries", "core_cronrun")


# --- helpers ---------------------------------------------------------------------------------


def rows(database: dict, query: str) -> list[tuple]:
    """Run a query on a database given as a Django DATABASES entry, outside Django."""
    if database["ENGINE"].endswith("sqlite3"):
        with contextlib.closing(sqlite3.connect(database["NAME"])) as db:
            return db.execute(query).fetchall()
    with PgDatabase.from_settings(database).connect() as db:
        return db.execute(query).fetchall()


def tables(database: dict) -> list[str]:
    """The names of the tables a database holds, sorted."""
    if database["ENGINE"].endswith("sqlite3"):
        query = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
    else:
        query = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
    return [name for (name,) in rows(database, query)]


def postgres_url(settings_dict: dict, name: str) -> str:
    """A postgres:// URL for another database on the server of the test database."""
    user = quote(settings_dict["USER"] or "")
    password = quote(settings_dict["PASSWORD"] or "")
    login = f"{user}:{password}@" if password else f"{user}@" if user else ""
    host = settings_dict["HOST"] or "localhost"
    port = settings_dict["PORT"] or 5432
    return f"postgres://{login}{host}:{port}/{name}"


@dataclass(frozen=True)
class Fresh:
    """An empty database to restore into, by URL and as a DATABASES entry."""

    url: str
    settings: dict


@pytest.fixture
def fresh(on_postgres, tmp_path):
    """A brand-new empty database: a new SQLite file, or a new PostgreSQL database."""
    if not on_postgres:
        url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        yield Fresh(url=url, settings=database_from_url(url))
        return
    name = f"drill_{secrets.token_hex(6)}"
    server = PgDatabase.from_settings(connection.settings_dict)
    with server.connect() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = postgres_url(connection.settings_dict, name)
    try:
        yield Fresh(url=url, settings=database_from_url(url))
    finally:
        with server.connect() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def put_table(database: dict, name: str) -> None:
    """Give a database one table of its own with one row, as data a restore must not lose."""
    if database["ENGINE"].endswith("sqlite3"):
        with contextlib.closing(sqlite3.connect(database["NAME"])) as db:
            db.execute(f"CREATE TABLE {name} (x integer)")
            db.execute(f"INSERT INTO {name} VALUES (7)")
            db.commit()
        return
    with PgDatabase.from_settings(database).connect() as db:
        db.execute(f"CREATE TABLE {name} (x integer)")
        db.execute(f"INSERT INTO {name} VALUES (7)")


class Writer(threading.Thread):
    """Commits drill row 1, 2, 3… each in its own transaction, until told to stop."""

    def __init__(self, connect, *, begin: str, placeholder: str):
        super().__init__(daemon=True)
        self.connect = connect
        self.begin = begin
        # One NumberSeries and one CronRun row per transaction: a restore that holds one
        # without the other has torn a transaction.
        self.statements = [
            "INSERT INTO core_numberseries (key, prefix, padding, next_value)"
            " VALUES (%s, '', 0, %s)",
            "INSERT INTO core_cronrun (job, run_date, started_at, status, result)"
            " VALUES ('drill', '2026-01-01', '2026-01-01 00:00:00+00:00', 'ok', %s)",
        ]
        self.statements = [sql.replace("%s", placeholder) for sql in self.statements]
        self.committed = 0  # set after COMMIT returns: these rows are surely committed
        self.attempted = 0  # set before BEGIN: no row beyond it can be committed yet
        self.failures: list[Exception] = []
        self.progress = threading.Condition()
        self.stopping = threading.Event()

    def run(self):
        try:
            db = self.connect()
            try:
                while not self.stopping.is_set():
                    seq = self.attempted = self.committed + 1
                    db.execute(self.begin)
                    db.execute(self.statements[0], (f"drill-{seq:06d}", seq))
                    db.execute(self.statements[1], (str(seq),))
                    db.execute("COMMIT")
                    with self.progress:
                        self.committed = seq
                        self.progress.notify_all()
            finally:
                db.close()
        except Exception as failure:  # reported by the test, not lost in the thread
            self.failures.append(failure)
            with self.progress:
                self.progress.notify_all()

    def wait_for(self, count: int) -> int:
        """Block until at least `count` rows are committed; the number committed."""
        with self.progress:
            self.progress.wait_for(lambda: self.committed >= count or self.failures, timeout=60)
            assert self.failures == []
            return self.committed

    def finish(self) -> int:
        """Stop writing; the number of rows committed in all."""
        self.stopping.set()
        self.join(timeout=60)
        assert self.failures == []
        return self.committed


def drill_rows(database: dict) -> tuple[list[int], list[int]]:
    """The drill's sequence numbers in NumberSeries and in CronRun, each sorted."""
    series = rows(database, "SELECT next_value FROM core_numberseries WHERE key LIKE 'drill-%'")
    runs = rows(database, "SELECT result FROM core_cronrun WHERE job = 'drill'")
    return sorted(int(v) for (v,) in series), sorted(int(v) for (v,) in runs)


# --- the drill -------------------------------------------------------------------------------


@transactional
def test_sqlite_drill_backs_up_under_writes_and_restores_every_row(on_postgres, tmp_path):
    if on_postgres:
        pytest.skip("the SQLite drill; the PostgreSQL one runs on PostgreSQL")
    # given: a live WAL database file with the real schema, and a writer that keeps writing
    live = tmp_path / "live.sqlite3"
    connection.ensure_connection()
    with contextlib.closing(sqlite3.connect(live)) as schema:
        connection.connection.backup(schema)
        schema.execute("PRAGMA journal_mode=WAL")
    writer = Writer(
        lambda: sqlite3.connect(live, isolation_level=None, timeout=20, check_same_thread=False),
        begin="BEGIN IMMEDIATE",
        placeholder="?",
    )
    writer.start()
    before = writer.wait_for(300)
    # when: the backup runs while the writer goes on
    result = sqlite_backup(source=live, output=tmp_path / "drill.sqlite3")
    after = writer.attempted
    writer.wait_for(after + 50)
    total = writer.finish()
    restored = sqlite_restore(
        source=result.path, target=tmp_path / "fresh.sqlite3", replace=False, tables=DRILL_TABLES
    )
    # then: the restore holds every row committed before the backup began, as an unbroken
    # prefix 1..j, both rows of every transaction, and nothing committed after it ended
    series, runs = drill_rows({"ENGINE": "sqlite3", "NAME": tmp_path / "fresh.sqlite3"})
    j = len(series)
    assert before <= j <= after
    assert series == list(range(1, j + 1))
    assert runs == series
    assert restored.integrity == "ok"
    assert restored.counts == (TableCount("core_numberseries", j), TableCount("core_cronrun", j))
    assert result.size == result.path.stat().st_size
    assert result.path.read_bytes()[:16] == b"SQLite format 3\x00"
    # and the live database kept every row the writer committed
    assert drill_rows({"ENGINE": "sqlite3", "NAME": live}) == (
        list(range(1, total + 1)),
        list(range(1, total + 1)),
    )
    assert total >= after + 50


@pytest.mark.postgres
@transactional
def test_postgres_drill_backs_up_under_writes_and_restores_every_row(fresh, tmp_path):
    # given: a writer that keeps committing into the test database
    live = PgDatabase.from_settings(connection.settings_dict)
    writer = Writer(live.connect, begin="BEGIN", placeholder="%s")
    writer.start()
    before = writer.wait_for(300)
    # when: pg_dump runs while the writer goes on, and the dump goes into a fresh database
    result = postgres_backup(database=live, output=tmp_path / "drill.dump")
    after = writer.attempted
    writer.wait_for(after + 50)
    total = writer.finish()
    restored = postgres_restore(
        source=result.path,
        database=PgDatabase.from_settings(fresh.settings),
        replace=False,
        tables=DRILL_TABLES,
    )
    # then: every row committed before the dump began, an unbroken prefix, whole transactions
    series, runs = drill_rows(fresh.settings)
    j = len(series)
    assert before <= j <= after
    assert series == list(range(1, j + 1))
    assert runs == series
    assert restored.integrity == "ok"
    assert restored.counts == (TableCount("core_numberseries", j), TableCount("core_cronrun", j))
    assert result.path.read_bytes()[:5] == b"PGDMP"
    assert drill_rows(connection.settings_dict) == (
        list(range(1, total + 1)),
        list(range(1, total + 1)),
    )
    assert total >= after + 50


# --- the commands ----------------------------------------------------------------------------


@transactional
@time_machine.travel(dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC), tick=False)
def test_backup_command_writes_a_file_named_by_the_time(on_postgres, tmp_path):
    # given: a database with data
    NumberSeries.objects.create(key="invoice", next_value=42)
    out = StringIO()
    # when
    with override_settings(VAR_DIR=tmp_path):
        call_command("backup", stdout=out)
    # then: the file is where the default says, whole, and the command says where and how big
    suffix = "dump" if on_postgres else "sqlite3"
    path = tmp_path / "backups" / f"clientbase-20260304T050607Z.{suffix}"
    assert out.getvalue() == f"{path}\t{path.stat().st_size:,} bytes\n"
    magic = b"PGDMP" if on_postgres else b"SQLite format 3\x00"
    assert path.read_bytes()[: len(magic)] == magic
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    # and only its owner may read it: it holds password hashes and two-step secrets
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


@transactional
def test_backup_command_refuses_an_existing_output(tmp_path):
    # given: a file already at the output
    path = tmp_path / "taken.sqlite3"
    path.write_bytes(b"keep")
    # when / then: refused, the file untouched, no partial file left beside it
    with pytest.raises(CommandError) as refused:
        call_command("backup", output=path, stdout=StringIO())
    assert str(refused.value) == f"{path} already exists; choose another --output"
    assert path.read_bytes() == b"keep"
    assert [p.name for p in tmp_path.iterdir()] == ["taken.sqlite3"]


@transactional
def test_backup_then_restore_commands_round_trip_into_a_fresh_database(fresh, org, tmp_path):
    # given: data committed in the live database, and its backup (no role: a transactional
    # test flushes the roles the data migration made)
    user_create(username="root", password=None, by=None, org_unit=org["company"])
    NumberSeries.objects.create(key="invoice", prefix="INV-", padding=5, next_value=42)
    path = tmp_path / "round-trip.backup"
    call_command("backup", output=path, stdout=StringIO())
    live_counts = [
        (table, rows(connection.settings_dict, f"SELECT count(*) FROM {table}")[0][0])
        for table in summary_tables()
    ]
    out = StringIO()
    # when
    call_command("restore", path, database_url=fresh.url, stdout=out)
    # then: the same data, checked, with counts printed
    target = fresh.settings["NAME"]
    if not fresh.url.startswith("sqlite"):
        target = str(PgDatabase.from_settings(fresh.settings))
    expected = [f"Restored {path} into {target}", "integrity: ok"]
    expected += [f"{table}\t{count:,} rows" for table, count in live_counts]
    assert out.getvalue().splitlines() == expected
    assert rows(
        fresh.settings, "SELECT key, prefix, padding, next_value FROM core_numberseries"
    ) == [("invoice", "INV-", 5, 42)]
    assert rows(fresh.settings, "SELECT username FROM accounts_user") == [("root",)]
    assert dict(live_counts)["accounts_user"] == 1


@transactional
def test_restore_command_refuses_a_target_holding_data_without_yes(fresh, tmp_path):
    # given: a backup, and a target that already holds a table
    NumberSeries.objects.create(key="invoice", next_value=42)
    path = tmp_path / "backup"
    call_command("backup", output=path, stdout=StringIO())
    put_table(fresh.settings, "precious")
    # when / then: refused, and the target still holds only its own table and row
    with pytest.raises(CommandError) as refused:
        call_command("restore", path, database_url=fresh.url, stdout=StringIO())
    assert "already holds data; restore over it only when told to replace it (--yes)" in str(
        refused.value
    )
    assert tables(fresh.settings) == ["precious"]
    assert rows(fresh.settings, "SELECT x FROM precious") == [(7,)]


@transactional
def test_restore_command_with_yes_replaces_what_the_target_held(fresh, on_postgres, tmp_path):
    # given: a backup, and a target that already holds a table of its own
    NumberSeries.objects.create(key="invoice", next_value=42)
    path = tmp_path / "backup"
    call_command("backup", output=path, stdout=StringIO())
    put_table(fresh.settings, "stale")
    out = StringIO()
    # when
    call_command("restore", path, database_url=fresh.url, yes=True, stdout=out)
    # then: the target is the backup, whole: its tables, not the stale one
    assert tables(fresh.settings) == tables(connection.settings_dict)
    assert "stale" not in tables(fresh.settings)
    stale = "public.stale" if on_postgres else "stale"
    assert out.getvalue().splitlines()[-1] == f"dropped, not in the backup: {stale}"
    assert rows(fresh.settings, "SELECT key, next_value FROM core_numberseries") == [
        ("invoice", 42)
    ]


@transactional
def test_restore_command_refuses_the_live_database_without_yes(tmp_path):
    # given: a backup of the configured database, then a change made after it
    path = tmp_path / "backup"
    call_command("backup", output=path, stdout=StringIO())
    NumberSeries.objects.create(key="after-backup", next_value=9)
    # when / then: refused; the change made after the backup is still there
    with pytest.raises(CommandError) as refused:
        call_command("restore", path, stdout=StringIO())
    assert "already holds data" in str(refused.value)
    assert list(NumberSeries.objects.values_list("key", "next_value")) == [("after-backup", 9)]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda good: b"", id="empty"),
        pytest.param(lambda good: secrets.token_bytes(4096), id="random-bytes"),
        pytest.param(lambda good: good[:8192], id="truncated"),
    ],
)
@transactional
def test_restore_command_refuses_a_damaged_backup(damage, fresh, on_postgres, tmp_path):
    # given: a damaged copy of a good backup (random bytes cannot start like a backup by
    # chance: the file magic is 5 to 16 bytes)
    good = tmp_path / "good"
    call_command("backup", output=good, stdout=StringIO())
    bad = tmp_path / "bad"
    bad.write_bytes(damage(good.read_bytes()))
    kind = "PostgreSQL" if on_postgres else "SQLite"
    if bad.read_bytes()[:5] == good.read_bytes()[:5]:
        expected = (
            "pg_restore failed: pg_restore: error: could not read from input file: end of file"
            if on_postgres
            else f"Cannot restore {bad}: database disk image is malformed"
        )
    else:
        expected = f"{bad} is not a {kind} backup (damaged or another kind of file)"
    # when / then: refused with the reason, and the fresh target still empty
    with pytest.raises(CommandError) as refused:
        call_command("restore", bad, database_url=fresh.url, stdout=StringIO())
    assert str(refused.value) == expected
    if on_postgres:
        assert tables(fresh.settings) == []
    else:
        assert not Path(fresh.settings["NAME"]).exists()


def test_restore_command_refuses_a_missing_file(db, fresh, tmp_path):
    # when / then
    with pytest.raises(CommandError) as refused:
        call_command("restore", tmp_path / "nowhere", database_url=fresh.url, stdout=StringIO())
    assert str(refused.value) == f"No backup at {tmp_path / 'nowhere'}"


def test_restore_command_refuses_a_backup_of_the_other_kind(db, fresh, on_postgres, tmp_path):
    # given: a file that starts like the other database's backup
    other = tmp_path / "other"
    other.write_bytes((b"SQLite format 3\x00" if on_postgres else b"PGDMP") + bytes(100))
    found, target = ("SQLite", "PostgreSQL") if on_postgres else ("PostgreSQL", "SQLite")
    # when / then
    with pytest.raises(CommandError) as refused:
        call_command("restore", other, database_url=fresh.url, stdout=StringIO())
    assert str(refused.value) == f"{other} is a {found} backup; the target database is {target}"


def test_restore_command_refuses_an_unknown_database_url(tmp_path):
    # when / then
    with pytest.raises(CommandError) as refused:
        call_command("restore", tmp_path / "x", database_url="mysql://h/db", stdout=StringIO())
    assert str(refused.value) == "The database URL must be sqlite:///PATH or postgres://…/NAME"


# --- the functions, where the commands cannot reach ------------------------------------------


def test_sqlite_restore_refuses_a_database_that_is_not_clientbase(tmp_path):
    # given: a sound SQLite file without Django's migration table
    other = tmp_path / "other.sqlite3"
    with contextlib.closing(sqlite3.connect(other)) as db:
        db.execute("CREATE TABLE notes (x text)")
    target = tmp_path / "target.sqlite3"
    # when / then: refused before the target is made
    with pytest.raises(BackupError) as refused:
        sqlite_restore(source=other, target=target, replace=False)
    assert str(refused.value) == f"{other} is not a Clientbase backup (no django_migrations)"
    assert not target.exists()


def test_sqlite_backup_of_a_missing_database_leaves_no_file(tmp_path):
    # when / then
    with pytest.raises(BackupError) as refused:
        sqlite_backup(source=tmp_path / "gone.sqlite3", output=tmp_path / "out" / "b.sqlite3")
    assert str(refused.value) == f"No database file at {tmp_path / 'gone.sqlite3'}"
    assert list((tmp_path / "out").iterdir()) == []
    assert not (tmp_path / "gone.sqlite3").exists()
