"""`clientbase worker`: run background tasks (database queue, or RQ when REDIS_URL is set)."""

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Process background tasks until stopped."

    def add_arguments(self, parser):
        parser.add_argument("--queue", default="default")

    def handle(self, *args, queue, **options):
        if settings.REDIS_URL:
            call_command("rqworker", queue, with_scheduler=True)
        else:
            call_command("db_worker", queue_name=queue, interval=1.0)
