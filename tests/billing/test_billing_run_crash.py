"""The billing run survives SIGKILL and a second run at the same time: each service is
invoiced exactly once. Each test drives real `clientbase` processes on a database of its own."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAY = "2026-03-01"
CLIENTS = 3000
CHUNK = 100


class Scenario:
    """A database of its own (a SQLite file, or a PostgreSQL database) and commands on it."""

    def __init__(self, tmp_path: Path):
        self.env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        self.env |= {
            "DJANGO_SETTINGS_MODULE": "clientbase.settings",
            "CLIENTBASE_VAR_DIR": str(tmp_path),
            "CLIENTBASE_TESTING": "false",
            "SECRET_KEY": "billing-run-crash",
            "BILLING_RUN_CHUNK": str(CHUNK),
            "BILLING_DAYS_IN_ADVANCE": "0",
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")]),
        }
        self.server_url = os.environ.get("DATABASE_URL", "")
        self.pg_name = ""
        if self.server_url.startswith("postgres"):
            self.pg_name = f"billing_crash_{uuid.uuid4().hex[:8]}"
            self._pg_admin(f'CREATE DATABASE "{self.pg_name}"')
            parts = urlsplit(self.server_url)
            self.env["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{self.pg_name}"))
        self.sqlite_file = tmp_path / "clientbase.sqlite3"
        self.command("migrate", "--no-input")

    def _pg_admin(self, sql: str) -> None:
        import psycopg

        # The server's maintenance database: the suite's own may not exist outside its run.
        admin_url = urlunsplit(urlsplit(self.server_url)._replace(path="/postgres"))
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(sql)

    def drop(self) -> None:
        if self.pg_name:
            self._pg_admin(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')

    def command(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "clientbase.cli", *args], cwd=ROOT,
                              env=self.env, capture_output=True, text=True, timeout=600)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def start_run(self) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "clientbase.cli", "billing-run", "--day", DAY],
            cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def scenario(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "tests.billing.billing_scenario", *args],
                              cwd=ROOT, env=self.env, capture_output=True, text=True,
                              timeout=600)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def chunks_done(self) -> int:
        sql = "SELECT count(*) FROM billing_billingrunchunk WHERE state = 'done'"
        if self.pg_name:
            import psycopg

            with psycopg.connect(self.env["DATABASE_URL"]) as db:
                return db.execute(sql).fetchone()[0]
        with sqlite3.connect(self.sqlite_file, timeout=20) as db:
            return db.execute(sql).fetchone()[0]


@pytest.fixture
def scenario(tmp_path):
    made = Scenario(tmp_path)
    made.scenario("seed", str(CLIENTS), DAY)
    yield made
    made.drop()


def _exactly_once(result: dict) -> None:
    assert result["services"] == CLIENTS
    assert result["billed_periods"] == CLIENTS
    assert result["services_billed"] == CLIENTS
    assert result["lines_per_service"] == [1]
    assert result["not_advanced"] == 0
    assert result["invoices"] == CLIENTS
    assert result["numbers"] == list(
        range(1, CLIENTS + 1)
    )  # gapless: the killed chunk gave its back
    assert result["ledger_entries"] == CLIENTS
    assert result["ledger_ok"] is True


def test_a_run_killed_mid_way_and_run_again_bills_every_service_once(scenario):
    run = scenario.start_run()
    deadline = time.monotonic() + 300
    while scenario.chunks_done() < 3 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert run.poll() is None, "the run finished before it could be killed: " + run.stdout.read()
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=30)
    killed_after = scenario.chunks_done()
    total_chunks = CLIENTS // CHUNK
    assert 3 <= killed_after < total_chunks

    scenario.command("billing-run", "--day", DAY)
    _exactly_once(json.loads(scenario.scenario("check", DAY)))
    # and a third run finds nothing left
    assert "0 invoices" in scenario.command("billing-run", "--day", DAY)


@pytest.mark.postgres
def test_two_runs_started_together_bill_every_service_once(scenario):
    if not scenario.pg_name:
        pytest.skip("two writers at once are a PostgreSQL matter; SQLite runs one writer")
    runs = [scenario.start_run(), scenario.start_run()]
    outputs = [run.communicate(timeout=600) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err[-2000:] for _out, err in outputs]
    _exactly_once(json.loads(scenario.scenario("check", DAY)))
