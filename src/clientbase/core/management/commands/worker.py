"""`clientbase worker`: run background tasks (database queue, or RQ when REDIS_URL is set)."""

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Process background tasks until stopped."

    def add_arguments(self, parser):
        parser.add_argument("--queue", default="default")
        parser.add_argument(
            "--batch", action="store_true", help="process what is queued now, then exit"
        )

    def handle(self, *args, queue, batch, **options):
        if settings.REDIS_URL:
            # RQ must build jobs with the Tasks backend's class, which calls the task function.
            call_command(
                "rqworker",
                queue,
                job_class="django_tasks_rq.backend.Job",
                with_scheduler=not batch,
                burst=batch,
            )
        else:
            call_command("db_worker", queue_name=queue, interval=1.0, batch=batch)
