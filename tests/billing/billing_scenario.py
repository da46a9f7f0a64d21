"""A billing run scenario driven from outside the test process: seed clients, then check.

`python -m tests.billing.billing_scenario seed N DAY` makes N clients with one monthly
service each, due on DAY; `... check DAY` prints what the runs billed, as JSON.
"""

import datetime as dt
import json
import sys

import django


def seed(count: int, day: dt.date) -> None:
    """N clients in roubles, each with one active monthly service due on `day`."""
    from clientbase.accounts.models import OrgUnit
    from clientbase.billing.models import Service
    from clientbase.catalog.models import Price, Product
    from clientbase.clients.models import Client

    unit = OrgUnit.objects.filter(kind="company").first() or OrgUnit.objects.create(
        name="Company", kind="company"
    )
    product = Product.objects.create(code="hosting", name="Hosting")
    Price.objects.create(product=product, currency="RUB", cycle="monthly", amount_minor=100000)
    clients = Client.objects.bulk_create(
        Client(
            number=f"C{i:06d}",
            name=f"Client {i}",
            email=f"c{i}@example.com",
            currency="RUB",
            org_unit=unit,
        )
        for i in range(count)
    )
    Service.objects.bulk_create(
        Service(client=c, product=product, cycle="monthly", currency="RUB",
                recurring_minor=100000, status="active", registered_on=day,
                period_start=day, next_due_on=day)
        for c in clients
    )  # fmt: skip


def check(day: dt.date) -> dict:
    """What was billed for the period starting on `day`, and whether the books agree."""
    from django.db.models import Count

    from clientbase.billing.ledger import ledger_verify
    from clientbase.billing.models import BilledPeriod, Invoice, InvoiceLine, LedgerEntry, Service

    lines_per_service = (
        InvoiceLine.objects.filter(period_start=day)
        .values("service_id")
        .annotate(n=Count("id"))
        .values_list("n", flat=True)
    )
    return {
        "services": Service.objects.count(),
        "billed_periods": BilledPeriod.objects.filter(period_start=day).count(),
        "lines_per_service": sorted(set(lines_per_service)),
        "services_billed": len(lines_per_service),
        "not_advanced": Service.objects.filter(next_due_on__lte=day).count(),
        "invoices": Invoice.objects.count(),
        "numbers": sorted(Invoice.objects.values_list("number_value", flat=True)),
        "ledger_entries": LedgerEntry.objects.count(),
        "ledger_ok": ledger_verify().ok,
    }


if __name__ == "__main__":
    django.setup()
    action, *args = sys.argv[1:]
    if action == "seed":
        seed(int(args[0]), dt.date.fromisoformat(args[1]))
    else:
        print(json.dumps(check(dt.date.fromisoformat(args[0]))))
