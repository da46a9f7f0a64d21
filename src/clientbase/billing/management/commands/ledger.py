"""`clientbase ledger verify`: walk the ledger's hash chain and name the first broken entry."""

from django.core.management.base import BaseCommand, CommandError

from clientbase.billing.ledger import ledger_verify


class Command(BaseCommand):
    help = (
        "Check the billing ledger: `verify` recomputes every entry's hash along the chain and "
        "fails, naming the first entry altered, inserted or removed."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        verify = actions.add_parser("verify", help="check the hash chain from the first entry")
        verify.add_argument(
            "--chunk-size", type=int, default=20_000, help="entries read from the database at once"
        )

    def handle(self, *args, action=None, chunk_size=20_000, **options):
        result = ledger_verify(chunk_size=chunk_size)
        if not result.ok:
            raise CommandError(
                f"Ledger broken after {result.checked:,} good entries: {result.problem}"
            )
        self.stdout.write(f"Ledger intact: {result.checked:,} entries checked")
