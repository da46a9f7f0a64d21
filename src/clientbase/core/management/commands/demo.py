"""`clientbase demo --clients N`: the demo organisation, its staff and N clients."""

from django.core.management.base import BaseCommand, CommandError

from clientbase.billing.demo import demo_billing_create
from clientbase.catalog.demo import demo_catalog
from clientbase.core.demo import DEMO_PASSWORD, ensure_demo_org
from clientbase.core.demo_clients import BATCH_SIZE, DEFAULT_SEED, demo_clients_create
from clientbase.support.demo import demo_support_create

# A progress line every this many clients, so a million-client run shows it is alive.
PROGRESS_EVERY = 100_000


class Command(BaseCommand):
    help = (
        "Create the demo units and staff, then the demo clients missing to reach --clients "
        "in all; safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--clients", type=int, default=300, help="clients the base should hold in all"
        )
        parser.add_argument(
            "--seed", type=int, default=DEFAULT_SEED, help="the same seed makes the same data"
        )
        parser.add_argument(
            "--billing-accounts",
            type=int,
            default=60,
            help="clients without orders to sell to, invoice and collect from",
        )
        parser.add_argument(
            "--batch-size", type=int, default=BATCH_SIZE, help="clients per transaction"
        )

    def handle(self, *args, clients, seed, batch_size, billing_accounts, **options):
        if clients < 0:
            raise CommandError("--clients cannot be negative")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        org = ensure_demo_org()
        demo_catalog()
        shown = 0

        def progress(done: int, missing: int) -> None:
            nonlocal shown
            if done - shown >= PROGRESS_EVERY and done < missing:
                shown = done
                self.stdout.write(f"  {done:,} of {missing:,} clients…")

        result = demo_clients_create(
            clients=clients, org=org, seed=seed, batch_size=batch_size, progress=progress
        )
        if result.created:
            line = f"Created {result.created:,} demo clients in {result.seconds:.1f} s"
            if result.created >= PROGRESS_EVERY:
                line += f" ({result.created / result.seconds:,.0f} a second)"
            self.stdout.write(f"{line}; {result.total:,} clients in all.")
        else:
            self.stdout.write(f"{result.total:,} clients already; none created.")
        sold = demo_billing_create(by=org.users["billing"], accounts=billing_accounts)
        if sold:
            self.stdout.write(f"Sold to {sold} demo clients: orders, services, invoices, payments.")
        tickets = demo_support_create(org=org)
        if tickets:
            self.stdout.write(f"Opened {tickets} demo support tickets.")
        self.stdout.write(self.style.SUCCESS(f"Demo administrator: admin / {DEMO_PASSWORD}"))
