"""`clientbase bench NAME`: run a benchmark from bench/ in a fresh database; one JSON line."""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

# Set, to its scratch folder, in the child process that runs the benchmark.
SANDBOX_ENV = "CLIENTBASE_BENCH_SANDBOX"


def bench_dir() -> Path:
    """The folder of benchmark scripts: bench/ at the root of the source checkout."""
    return Path(os.environ.get("CLIENTBASE_BENCH_DIR", settings.PROJECT_DIR / "bench"))


def available() -> list[str]:
    """Names of the benchmarks in bench/."""
    folder = bench_dir()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))


class Command(BaseCommand):
    help = (
        "Run a benchmark from bench/ (e.g. `clientbase bench demo --clients 100000`) in a "
        "fresh temporary SQLite database and print its figures as one JSON line."
    )
    # The parent only starts the child; the child checks and migrates its own database.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("name", help="the benchmark: a file name in bench/ without .py")
        parser.add_argument(
            "--database-url",
            help="an empty scratch database to use instead of a temporary SQLite file "
            "(its tables are created and filled); give it before NAME",
        )
        parser.add_argument(
            "bench_args",
            nargs=argparse.REMAINDER,
            help="the benchmark's own options, e.g. --clients 1000",
        )

    def handle(self, *args, name, database_url, bench_args, **options):
        if not name.isidentifier() or name not in available():
            known = ", ".join(available()) or f"none (no benchmarks in {bench_dir()})"
            raise CommandError(f"No benchmark {name!r}; available: {known}")
        # The child runs the benchmark only where the parent put it: a stray variable in a
        # shell must not turn a user's own database into the scratch one.
        if os.environ.get(SANDBOX_ENV) == str(settings.VAR_DIR):
            self._run_here(name, bench_args)
        else:
            self._run_in_sandbox(name, bench_args, database_url)

    def _run_in_sandbox(self, name: str, bench_args: list[str], database_url: str | None):
        # A child process, so the benchmark's settings point at the scratch database from the
        # start and the user's own data is never opened.
        with tempfile.TemporaryDirectory(prefix="clientbase-bench-") as scratch:
            env = {
                **os.environ,
                SANDBOX_ENV: str(Path(scratch)),
                "CLIENTBASE_VAR_DIR": str(Path(scratch)),
                "DATABASE_URL": database_url or f"sqlite:///{Path(scratch) / 'bench.sqlite3'}",
            }
            child = subprocess.run(
                [sys.executable, "-m", "clientbase.cli", "bench", name, *bench_args],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
                check=False,
            )
        if child.returncode != 0:
            raise CommandError(f"benchmark {name!r} failed (exit status {child.returncode})")
        lines = child.stdout.strip().splitlines()
        if not lines:
            raise CommandError(f"benchmark {name!r} printed no figures")
        self.stdout.write(lines[-1])

    def _run_here(self, name: str, bench_args: list[str]):
        call_command("migrate", verbosity=0, interactive=False)
        spec = importlib.util.spec_from_file_location(f"bench_{name}", bench_dir() / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        figures = module.run(bench_args)
        self.stdout.write(json.dumps({"bench": name, **figures}))
