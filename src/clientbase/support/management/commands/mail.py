"""`clientbase mail ingest` files a message read from standard input; `mail poll` polls IMAP."""

import sys

from django.core.management.base import BaseCommand, CommandError

from clientbase.support.imap import poll_all
from clientbase.support.intake import mail_ingest
from clientbase.support.models import Department


class Command(BaseCommand):
    help = "Support mail: file a raw message from standard input, or poll the IMAP mailboxes."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        ingest = actions.add_parser(
            "ingest", help="File one RFC 5322 message read from standard input (MTA pipe)."
        )
        ingest.add_argument(
            "--department",
            help="Department name or support address (default: by the recipients).",
        )
        actions.add_parser("poll", help="Fetch new mail from every department's mailbox.")

    def handle(self, *args, action, department=None, **options):
        if action == "poll":
            self.stdout.write(poll_all())
            return
        target = None
        if department:
            target = (
                Department.objects.filter(name=department).first()
                or Department.objects.filter(email__iexact=department).first()
            )
            if target is None:
                raise CommandError(f"No department named {department!r}.")
        raw = sys.stdin.buffer.read()
        if not raw.strip():
            raise CommandError("No message on standard input.")
        result = mail_ingest(raw, via="pipe", department=target)
        number = f" #{result.ticket.number}" if result.ticket else ""
        reason = f" ({result.reason})" if result.reason else ""
        self.stdout.write(f"{result.outcome}{number}{reason}")
