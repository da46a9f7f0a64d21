"""`clientbase backup [--output PATH]`: a consistent copy of the database, taken live."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections

from clientbase.core.backup import BackupError, database_backup, default_output


class Command(BaseCommand):
    help = (
        "Back up the database while the application keeps running: SQLite's online backup "
        "API, or pg_dump (custom format) on PostgreSQL."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--output",
            type=Path,
            help="the file to write (must not exist); default "
            "var/backups/clientbase-<UTC time>.sqlite3 or .dump",
        )

    def handle(self, *args, output=None, **options):
        # The connection's settings, not settings.DATABASES: they name the test database
        # under the test runner.
        database = connections[DEFAULT_DB_ALIAS].settings_dict
        try:
            target = output or default_output(var_dir=Path(settings.VAR_DIR), database=database)
            result = database_backup(database=database, output=target)
        except BackupError as refused:
            raise CommandError(str(refused)) from refused
        self.stdout.write(f"{result.path}\t{result.size:,} bytes")
