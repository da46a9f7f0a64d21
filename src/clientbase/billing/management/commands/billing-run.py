"""`clientbase billing-run`: generate the invoices that fall due, now, from this machine."""

import datetime as dt

from django.core.management.base import BaseCommand

from clientbase.billing.run import billing_run_now, billing_run_work, rate


class Command(BaseCommand):
    help = "Invoice every service due within the days in advance; safe to run again at any time."

    def add_arguments(self, parser):
        parser.add_argument("--day", help="the run's day (YYYY-MM-DD); default today")
        parser.add_argument("--workers", type=int, default=1, help="processes billing chunks")
        parser.add_argument("--work", type=int, help="join a started run as one more worker")

    def handle(self, *args, day=None, workers=1, work=None, **options):
        if work:
            self.stdout.write(f"{billing_run_work(work)} chunks billed")
            return
        run_day = dt.date.fromisoformat(day) if day else None
        run = billing_run_now(day=run_day, helpers=workers - 1)
        self.stdout.write(
            f"run {run.pk}: {run.invoices} invoices, {run.held} held, {run.errors} errors, "
            f"{rate(run)} invoices/s"
        )
