"""`clientbase restore PATH [--yes] [--database-url URL]`: put a backup back, then check it."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections

from clientbase.core.backup import BackupError, database_from_url, database_restore


class Command(BaseCommand):
    help = (
        "Restore a backup made by `clientbase backup` into the configured database, or "
        "into another one; stop the web servers and workers first."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="the backup file")
        parser.add_argument(
            "--database-url",
            help="restore into this database instead (sqlite:///PATH or postgres://…/NAME; "
            "a PostgreSQL database must exist already)",
        )
        parser.add_argument(
            "--yes",
            action="store_true",
            help="replace what the target database holds now",
        )

    def handle(self, *args, path, database_url=None, yes=False, **options):
        try:
            if database_url:
                database = database_from_url(database_url)
            else:
                database = connections[DEFAULT_DB_ALIAS].settings_dict
            result = database_restore(source=path, database=database, replace=yes)
        except BackupError as refused:
            raise CommandError(str(refused)) from refused
        self.stdout.write(f"Restored {path} into {result.target}")
        self.stdout.write(f"integrity: {result.integrity}")
        for count in result.counts:
            self.stdout.write(f"{count.table}\t{count.rows:,} rows")
        if result.dropped:
            self.stdout.write(f"dropped, not in the backup: {', '.join(result.dropped)}")
