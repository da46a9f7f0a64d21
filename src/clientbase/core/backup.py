"""Backups and restores of the whole database: a consistent copy taken while writes go on."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import environ
import psycopg
from django.apps import apps
from psycopg import sql
from psycopg.conninfo import make_conninfo

from clientbase.core import clock

SQLITE_ENGINE = "django.db.backends.sqlite3"
POSTGRES_ENGINE = "django.db.backends.postgresql"
SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"
SUFFIXES = {SQLITE_ENGINE: "sqlite3", POSTGRES_ENGINE: "dump"}
# Models whose row counts an operator glances at after a restore; those not installed yet
# are skipped.
SUMMARY_MODELS = (
    "accounts.User",
    "clients.Client",
    "billing.Invoice",
    "billing.Payment",
    "support.Ticket",
    "core.Event",
)
# libpq settings that may sit in a Django PostgreSQL OPTIONS; others (pool, isolation
# level…) are Django's own and mean nothing to pg_dump.
LIBPQ_OPTIONS = frozenset(
    {
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "connect_timeout",
        "application_name",
        "options",
        "target_session_attrs",
        "service",
        "passfile",
    }
)
# A table in `pg_restore --list`: "231; 1259 16475 TABLE public accounts_apitoken owner".
TOC_TABLE = re.compile(r"^\d+; \d+ \d+ TABLE (?!DATA )(\S+) (\S+) ")


class BackupError(Exception):
    """A backup or restore that cannot be done, with the reason in words for the operator."""


@dataclass(frozen=True)
class BackupResult:
    """A finished backup file."""

    path: Path
    size: int


@dataclass(frozen=True)
class TableCount:
    """How many rows one table holds."""

    table: str
    rows: int


@dataclass(frozen=True)
class RestoreResult:
    """A finished restore, with what the check of the restored database found."""

    target: str
    integrity: str
    counts: tuple[TableCount, ...]
    # Tables the target held that the backup does not, dropped so the target is the backup.
    dropped: tuple[str, ...] = ()


@dataclass(frozen=True)
class PgDatabase:
    """Where a PostgreSQL database is and how to sign in to it."""

    name: str
    user: str = ""
    password: str = ""
    host: str = ""
    port: str = ""
    options: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_settings(cls, database: Mapping) -> PgDatabase:
        """The database of a Django DATABASES entry."""
        options = database.get("OPTIONS") or {}
        return cls(
            name=str(database["NAME"]),
            user=str(database.get("USER") or ""),
            password=str(database.get("PASSWORD") or ""),
            host=str(database.get("HOST") or ""),
            port=str(database.get("PORT") or ""),
            options=tuple(
                sorted((key, str(value)) for key, value in options.items() if key in LIBPQ_OPTIONS)
            ),
        )

    def conninfo(self) -> str:
        """A libpq connection string without the password (it goes in PGPASSWORD)."""
        params = {"dbname": self.name, "user": self.user, "host": self.host, "port": self.port}
        return make_conninfo(**{k: v for k, v in params.items() if v}, **dict(self.options))

    def tool_env(self) -> dict[str, str]:
        """The environment for pg_dump and pg_restore, so the password is not on argv."""
        env = dict(os.environ)
        if self.password:
            env["PGPASSWORD"] = self.password
        return env

    def connect(self) -> psycopg.Connection:
        """An autocommit connection."""
        try:
            return psycopg.connect(self.conninfo(), password=self.password or None, autocommit=True)
        except psycopg.Error as failure:
            raise BackupError(f"Cannot connect to database {self.name!r}: {failure}") from failure

    def __str__(self) -> str:
        where = f"{self.host or 'localhost'}:{self.port or 5432}"
        return f"postgresql://{self.user + '@' if self.user else ''}{where}/{self.name}"


def database_from_url(url: str) -> dict:
    """A Django DATABASES entry from a URL, as DATABASE_URL is read."""
    with warnings.catch_warnings():
        # An unknown scheme is reported below, in the operator's terms.
        warnings.simplefilter("ignore")
        database = environ.Env.db_url_config(url)
    if database.get("ENGINE") not in SUFFIXES or not database.get("NAME"):
        raise BackupError("The database URL must be sqlite:///PATH or postgres://…/NAME")
    return database


def default_output(*, var_dir: Path, database: Mapping) -> Path:
    """var/backups/clientbase-<UTC time>.<sqlite3|dump>, named by the time of the backup."""
    stamp = clock.now().strftime("%Y%m%dT%H%M%SZ")
    return var_dir / "backups" / f"clientbase-{stamp}.{SUFFIXES[_engine(database)]}"


def database_backup(*, database: Mapping, output: Path) -> BackupResult:
    """Back up the database of a Django DATABASES entry into a new file."""
    if _engine(database) == SQLITE_ENGINE:
        return sqlite_backup(source=database["NAME"], output=output)
    return postgres_backup(database=PgDatabase.from_settings(database), output=output)


def database_restore(
    *, source: Path, database: Mapping, replace: bool, tables: Sequence[str] | None = None
) -> RestoreResult:
    """Restore a backup into the database of a Django DATABASES entry, then check it."""
    if _engine(database) == SQLITE_ENGINE:
        return sqlite_restore(
            source=source, target=database["NAME"], replace=replace, tables=tables
        )
    return postgres_restore(
        source=source, database=PgDatabase.from_settings(database), replace=replace, tables=tables
    )


def summary_tables() -> tuple[str, ...]:
    """The tables whose row counts a restore reports."""
    found = []
    for label in SUMMARY_MODELS:
        with contextlib.suppress(LookupError):
            found.append(apps.get_model(label)._meta.db_table)
    return (*found, "django_migrations")


# --- SQLite ----------------------------------------------------------------------------------


def sqlite_backup(*, source: str | Path, output: Path) -> BackupResult:
    """Copy a live SQLite database with the online backup API into a new, standalone file."""
    with _claimed(output) as partial:
        try:
            with (
                contextlib.closing(_sqlite_open(source, read_only=True)) as live,
                contextlib.closing(sqlite3.connect(partial)) as copy,
            ):
                # One step (pages=-1) copies everything inside one read transaction, so the
                # copy is one moment's snapshot; under WAL, writers go on meanwhile. Copying
                # in several steps would restart whenever another connection writes.
                live.backup(copy, pages=-1)
                # The copy inherits WAL mode; a backup should be one self-contained file.
                copy.execute("PRAGMA journal_mode=DELETE")
                _sqlite_verify(copy, str(source))
        except sqlite3.Error as failure:
            raise BackupError(f"Cannot back up {source}: {failure}") from failure
    return BackupResult(path=output, size=output.stat().st_size)


def sqlite_restore(
    *, source: Path, target: str | Path, replace: bool, tables: Sequence[str] | None = None
) -> RestoreResult:
    """Copy a SQLite backup into the target database file (made if missing), then check it."""
    _check_kind(source, SQLITE_MAGIC, "SQLite")
    if _is_same_file(source, target):
        raise BackupError(f"{source} is the target database itself")
    try:
        with contextlib.closing(_sqlite_open(source, read_only=True)) as stored:
            # Check the backup before touching the target, so a bad file changes nothing.
            _sqlite_verify(stored, str(source))
            backed_up = _sqlite_tables(stored)
            if "django_migrations" not in backed_up:
                raise BackupError(f"{source} is not a Clientbase backup (no django_migrations)")
            with contextlib.closing(_sqlite_open(target, read_only=False)) as restored:
                held = _sqlite_tables(restored)
                if held and not replace:
                    raise BackupError(
                        f"The target {target} already holds data; restore over it only "
                        "when told to replace it (--yes)"
                    )
                stored.backup(restored, pages=-1)
                # The application runs SQLite in WAL mode (see settings).
                restored.execute("PRAGMA journal_mode=WAL")
                integrity = _sqlite_verify(restored, str(target))
                present = _sqlite_tables(restored)
                counts = tuple(
                    TableCount(table, _sqlite_count(restored, table))
                    for table in (summary_tables() if tables is None else tables)
                    if table in present
                )
    except sqlite3.Error as failure:
        raise BackupError(f"Cannot restore {source}: {failure}") from failure
    return RestoreResult(
        target=str(target),
        integrity=integrity,
        counts=counts,
        # The backup API replaces the whole file; these are the tables that went with it.
        dropped=tuple(sorted(held - backed_up)),
    )


def _sqlite_open(name: str | Path, *, read_only: bool) -> sqlite3.Connection:
    """Open a database by path or by SQLite URI, never making a missing file when reading."""
    text = str(name)
    if text == ":memory:":
        raise BackupError("A private in-memory database cannot be backed up or restored")
    if text.startswith("file:"):
        uri = text  # Django's shared in-memory test databases are named by URI
    else:
        path = Path(text).resolve()
        if read_only and not path.is_file():
            raise BackupError(f"No database file at {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        uri = f"{path.as_uri()}?mode={'ro' if read_only else 'rwc'}"
    connection = sqlite3.connect(uri, uri=True, timeout=20, isolation_level=None)
    connection.execute("PRAGMA busy_timeout=20000")
    return connection


def _sqlite_verify(connection: sqlite3.Connection, name: str) -> str:
    """PRAGMA integrity_check and foreign_key_check, or BackupError with what they found."""
    problems = [row[0] for row in connection.execute("PRAGMA integrity_check")]
    if problems != ["ok"]:
        raise BackupError(f"{name} fails the integrity check: {'; '.join(problems[:5])}")
    broken = connection.execute("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise BackupError(f"{name} has {len(broken)} broken reference(s), e.g. in {broken[0][0]}")
    return "ok"


def _sqlite_tables(connection: sqlite3.Connection) -> set[str]:
    rows = connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    )
    return {row[0] for row in rows}


def _sqlite_count(connection: sqlite3.Connection, table: str) -> int:
    quoted = '"' + table.replace('"', '""') + '"'
    return connection.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0]


# --- PostgreSQL ------------------------------------------------------------------------------


def postgres_backup(*, database: PgDatabase, output: Path) -> BackupResult:
    """pg_dump in custom format: one snapshot of the database while writes go on."""
    with _claimed(output) as partial:
        _run(
            _tool("pg_dump"),
            "--format=custom",
            "--no-password",
            f"--file={partial}",
            f"--dbname={database.conninfo()}",
            database=database,
        )
    return BackupResult(path=output, size=output.stat().st_size)


def postgres_restore(
    *, source: Path, database: PgDatabase, replace: bool, tables: Sequence[str] | None = None
) -> RestoreResult:
    """pg_restore into an existing database (all or nothing), then check every table came."""
    _check_kind(source, PG_DUMP_MAGIC, "PostgreSQL")
    pg_restore = _tool("pg_restore")
    # Reading the table of contents proves the file whole enough before the target is touched.
    listing = _run(pg_restore, "--list", str(source), database=database)
    dumped = {match.groups() for match in map(TOC_TABLE.match, listing.splitlines()) if match}
    if ("public", "django_migrations") not in dumped:
        raise BackupError(f"{source} is not a Clientbase backup (no django_migrations)")
    with database.connect() as connection:
        if _pg_tables(connection) and not replace:
            raise BackupError(
                f"The target {database} already holds data; restore over it only "
                "when told to replace it (--yes)"
            )
    _run(
        pg_restore,
        "--clean",
        "--if-exists",
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        "--single-transaction",
        "--no-password",
        f"--dbname={database.conninfo()}",
        str(source),
        database=database,
    )
    with database.connect() as connection:
        present = _pg_tables(connection)
        missing = sorted(f"{schema}.{table}" for schema, table in dumped - present)
        if missing:
            raise BackupError(f"Tables missing after the restore: {', '.join(missing[:10])}")
        # --clean replaces only what the backup holds; tables made after it (a later
        # migration, say) would stay and clash with its django_migrations. The restore has
        # committed by now, and nothing restored can reference a table the backup lacks.
        leftovers = sorted(present - dumped)
        with connection.transaction():
            for schema, table in leftovers:
                connection.execute(
                    sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(schema, table))
                )
        names = {table for schema, table in dumped if schema == "public"}
        counts = tuple(
            TableCount(table, _pg_count(connection, table))
            for table in (summary_tables() if tables is None else tables)
            if table in names
        )
    return RestoreResult(
        target=str(database),
        integrity="ok",
        counts=counts,
        dropped=tuple(f"{schema}.{table}" for schema, table in leftovers),
    )


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed (PostgreSQL client tools are needed)")
    return found


def _run(*argv: str, database: PgDatabase) -> str:
    """Run a PostgreSQL client tool; its own message becomes the error when it fails."""
    done = subprocess.run(
        argv, env=database.tool_env(), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        tool = Path(argv[0]).name
        raise BackupError(f"{tool} failed: {done.stderr.strip() or done.returncode}")
    return done.stdout


def _pg_tables(connection: psycopg.Connection) -> set[tuple[str, str]]:
    """The tables outside the system schemas, as (schema, name)."""
    # Not those an extension owns (PostGIS's spatial_ref_sys, say): pg_dump leaves them to
    # the extension, so they are neither data of ours nor leftovers to drop.
    rows = connection.execute(
        "SELECT n.nspname, c.relname FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'p')"
        " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        " AND n.nspname NOT LIKE 'pg\\_%'"
        " AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass"
        " AND d.objid = c.oid AND d.deptype = 'e')"
    )
    return {(schema, table) for schema, table in rows}


def _pg_count(connection: psycopg.Connection, table: str) -> int:
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("public", table))
    return connection.execute(query).fetchone()[0]


# --- Both ------------------------------------------------------------------------------------


def _engine(database: Mapping) -> str:
    engine = database.get("ENGINE", "")
    if engine not in SUFFIXES:
        raise BackupError(f"Backups support SQLite and PostgreSQL, not {engine}")
    return engine


@contextlib.contextmanager
def _claimed(output: Path) -> Iterator[Path]:
    """Claim the output name, write beside it, and move in only a finished backup."""
    output.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        # O_EXCL makes the claim atomic: two backups never end up in one file.
        _create_private(output)
    except FileExistsError:
        raise BackupError(f"{output} already exists; choose another --output") from None
    partial = output.with_name(f".{output.name}.partial")
    try:
        partial.unlink(missing_ok=True)
        _create_private(partial)
        yield partial
        partial.replace(output)
    except BaseException:
        partial.unlink(missing_ok=True)
        output.unlink(missing_ok=True)
        raise


def _create_private(path: Path) -> None:
    """Make an empty file only its owner can read: a backup holds password hashes."""
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def _check_kind(source: Path, magic: bytes, kind: str) -> None:
    """Refuse a missing file, or one that is not a backup of the target's kind."""
    if not source.is_file():
        raise BackupError(f"No backup at {source}")
    with source.open("rb") as file:
        head = file.read(len(SQLITE_MAGIC))
    if head.startswith(magic):
        return
    if head.startswith(SQLITE_MAGIC) or head.startswith(PG_DUMP_MAGIC):
        found = "SQLite" if head.startswith(SQLITE_MAGIC) else "PostgreSQL"
        raise BackupError(f"{source} is a {found} backup; the target database is {kind}")
    raise BackupError(f"{source} is not a {kind} backup (damaged or another kind of file)")


def _is_same_file(source: Path, target: str | Path) -> bool:
    with contextlib.suppress(OSError):
        return not str(target).startswith("file:") and source.samefile(target)
    return False
