"""`clientbase demo --clients N`: the demo organisation, its staff and N clients."""

from django.core.management.base import BaseCommand, CommandError
from django.test import override_settings

from clientbase.billing.demo import demo_billing_create
from clientbase.catalog.demo import demo_catalog
from clientbase.core.demo import DEMO_PASSWORD, ensure_demo_org
from clientbase.core.demo_clients import BATCH_SIZE, DEFAULT_SEED, demo_clients_create
from clientbase.marketing.demo import demo_templates_create
from clientbase.sales.activity_demo import demo_activity_create
from clientbase.sales.deal_demo import demo_deal_create
from clientbase.sales.kpi_demo import demo_kpi_create
from clientbase.sales.lead_demo import demo_lead_create
from clientbase.sales.quote_demo import demo_quote_create
from clientbase.support.demo import demo_support_create

# The sales CRM's demo, in an order where each finds what it builds on (deals before the
# leads whose conversion would make deals of its own); each makes nothing when rerun.
SALES_DEMO = [
    (demo_templates_create, "message templates"),
    (demo_deal_create, "deals"),
    (demo_lead_create, "leads"),
    (demo_activity_create, "activities"),
    (demo_quote_create, "quotes and contracts"),
    (demo_kpi_create, "KPI targets"),
]

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
        for create, what in SALES_DEMO:
            # Demo records mail nobody: a quote "sent" in the demo stays in memory.
            with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
                made = create(org=org, seed=seed)
            if made:
                self.stdout.write(f"Made {made} demo {what}.")
        self.stdout.write(self.style.SUCCESS(f"Demo administrator: admin / {DEMO_PASSWORD}"))
