"""Demo billing: orders, services, invoices and payments for some demo clients, made through
the same services a clerk uses, so every figure agrees with the ledger."""

import datetime as dt
import random

from django.db.models import Exists, OuterRef

from clientbase.billing import services
from clientbase.billing.models import Invoice, Order
from clientbase.catalog.models import Price, Product
from clientbase.clients.models import Client
from clientbase.core import clock

DEFAULT_ACCOUNTS = 60


def demo_billing_create(*, by, accounts: int = DEFAULT_ACCOUNTS, seed: int = 7) -> int:
    """Sell to clients without an order until `accounts` clients have one (a rerun only tops
    up); returns how many were sold to."""
    rng = random.Random(seed)
    demo_dunning_create(by=by)
    priced = set(Price.objects.values_list("currency", flat=True))
    products = list(Product.objects.filter(kind="product", active=True).order_by("code"))
    if not products or not priced:
        return 0
    ordered = Exists(Order.objects.filter(client=OuterRef("pk")))
    missing = max(accounts - Client.objects.filter(ordered).count(), 0)
    clients = (
        Client.objects.filter(status="active", currency__in=priced)
        .exclude(ordered)
        .order_by("pk")[:missing]
    )
    sold = 0
    for client in clients:
        chosen = rng.sample(products, k=min(len(products), rng.choice((1, 1, 2))))
        items = []
        for product in chosen:
            cycles = list(
                Price.objects.filter(product=product, currency=client.currency).values_list(
                    "cycle", flat=True
                )
            )
            if cycles:
                options = {o.code: rng.randint(1, 8) for o in product.options.all()}
                items.append(services.ItemSpec(product, rng.choice(cycles), 1, options))
        if not items:
            continue
        order = services.order_create(by=by, client=client, items=items, send_email=False)
        if rng.random() < 0.1:
            continue  # some orders stay pending for the dashboard
        order = services.order_accept(by=by, order=order)
        invoice = order.invoice
        # Spread invoice dates over the last two months, so some are overdue.
        issued = clock.today() - dt.timedelta(days=rng.randint(0, 60))
        services.invoice_update(
            by=by, invoice=invoice, issued_on=issued, due_on=issued + dt.timedelta(days=14)
        )
        invoice = services.invoice_issue(by=by, invoice=invoice)
        sold += 1
        _pay_some(rng, by, client, invoice)
    return sold


def demo_dunning_create(*, by) -> None:
    """The default dunning scenario a new installation starts from (once)."""
    from decimal import Decimal

    from clientbase.billing import dunning
    from clientbase.billing.models import DunningScenario

    if DunningScenario.objects.exists():
        return
    scenario = dunning.scenario_save(by=by, name="Standard", minimum_percent=50, is_default=True)
    for day, action, extra in [
        (-3, "remind", {}),
        (1, "remind", {}),
        (7, "fee", {"fee_percent": Decimal(5)}),
        (14, "suspend", {}),
        (30, "collections", {}),
        (120, "write_off", {}),
    ]:
        dunning.step_add(by=by, scenario=scenario, day=day, action=action, **extra)


def _pay_some(rng: random.Random, by, client: Client, invoice: Invoice) -> None:
    roll = rng.random()
    if not invoice.total_minor or roll < 0.25:
        return
    amount = invoice.total if roll > 0.45 else invoice.money(invoice.total_minor // 2)
    if amount.minor <= 0:
        return
    services.payment_record(
        by=by,
        client=client,
        amount=amount,
        method=client.payment_method,
        invoices=[(invoice, None)],
        reference=f"Demo payment for {invoice.number}",
    )
