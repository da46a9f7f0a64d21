"""`clientbase cron`: run the daily automation (safe to run as often as wished)."""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from clientbase.core.cron import JOBS, enqueue_jobs, run_jobs


class Command(BaseCommand):
    help = "Run the registered daily jobs; each is idempotent and each run is logged."

    def add_arguments(self, parser):
        parser.add_argument("--day", help="the day to run for (YYYY-MM-DD); default today")
        parser.add_argument("--only", action="append", help="run only this job (repeatable)")
        parser.add_argument("--list", action="store_true", help="list the jobs and stop")
        parser.add_argument(
            "--background", action="store_true", help="queue the jobs for the workers instead"
        )

    def handle(self, *args, day=None, only=None, list=False, background=False, **options):
        if list:
            for job in JOBS.values():
                self.stdout.write(f"{job.name}\t{job.label}")
            return
        if background:
            run_day = dt.date.fromisoformat(day) if day else None
            self.stdout.write(f"{enqueue_jobs(day=run_day)} jobs queued")
            return
        try:
            run_day = dt.date.fromisoformat(day) if day else None
            runs = run_jobs(day=run_day, only=only)
        except (ValueError, KeyError) as refused:
            raise CommandError(str(refused)) from refused
        failed = 0
        for run in runs:
            self.stdout.write(f"{run.job}: {run.status} — {run.result.splitlines()[-1:] or ''}")
            failed += run.status == "failed"
        if failed:
            raise CommandError(f"{failed} job(s) failed; see the automation log")
