"""Demo quotes and contracts: quotes at several stages, one converted, an active contract
ending this month, and a default contract template, made through the services."""

import datetime as dt
import random
from decimal import Decimal

from django.db import transaction

from clientbase.clients.models import Client
from clientbase.core import clock
from clientbase.core.demo import DemoOrg
from clientbase.core.money import Money
from clientbase.sales.models import ContractTemplate, Quote
from clientbase.sales.quote_queries import month_bounds
from clientbase.sales.quote_services import (
    QuoteLineSpec,
    contract_activate,
    contract_create,
    contract_template_save,
    quote_convert,
    quote_create,
    quote_send,
    quote_set_stage,
)

TEMPLATE_BODY = """Service agreement {{ contract.number }}

Between {{ company.name }} and {{ client.name }}, {{ client.address }}.

1. Subject. {{ company.name }} provides the services listed in this contract: {{ contract.title }}.
2. Term. The contract runs from {{ contract.starts_on }} to {{ contract.ends_on }}.
3. Price. The total value is {{ contract.value }}, invoiced as agreed.
4. Renewal. The parties may renew the contract for a further term before it ends.

Signed on {{ today }} for {{ company.name }} by {{ user.name }}.
"""

_OFFERS = [
    ("Website redesign", [("Design of 5 pages", "1", "1800"), ("Content migration", "3", "250")]),
    ("Managed hosting", [("VPS, 12 months", "12", "39"), ("Daily backups", "12", "6")]),
    ("SEO audit", [("Technical audit", "1", "900"), ("Keyword study", "1", "450")]),
    ("Support contract", [("Support hours", "20", "75")]),
    ("Mail migration", [("Mailbox move", "25", "18"), ("Training session", "1", "300", "10")]),
]


def _lines(rows) -> list[QuoteLineSpec]:
    return [
        QuoteLineSpec(
            description=row[0],
            quantity=Decimal(row[1]),
            unit_price=Decimal(row[2]),
            discount_percent=Decimal(row[3] if len(row) > 3 else 0),
        )
        for row in rows
    ]


def demo_quote_create(*, org: DemoOrg, seed: int = 7) -> int:
    """Make a handful of quotes and contracts for the demo sellers' clients; returns how many."""
    if Quote.objects.exists():
        return 0
    rng = random.Random(seed)
    sellers = [org.users[name] for name in ("sales.paris", "sales.paris.b", "sales.lyon")]
    made = 0
    with transaction.atomic():
        if not ContractTemplate.objects.exists():
            contract_template_save(
                by=org.users["admin"],
                template=None,
                name="Service agreement",
                body=TEMPLATE_BODY,
                is_default=True,
            )
        stages = ["draft", "negotiation", "sent", "accepted", "converted", "lost"]
        for n, stage in enumerate(stages):
            seller = sellers[n % len(sellers)]
            client = Client.objects.filter(owner=seller).order_by("id").first() or (
                Client.objects.filter(org_unit=seller.org_unit).order_by("id").first()
            )
            if client is None or not client.email:
                continue
            title, rows = _OFFERS[rng.randrange(len(_OFFERS))]
            quote = quote_create(by=seller, client=client, title=title, lines=_lines(rows))
            made += 1
            if stage == "negotiation":
                quote_set_stage(by=seller, quote=quote, stage="negotiation")
            if stage in ("sent", "accepted", "converted", "lost"):
                quote_send(by=seller, quote=quote)
            if stage in ("accepted", "converted"):
                quote_set_stage(by=seller, quote=quote, stage="accepted")
            if stage == "converted":
                quote_convert(by=seller, quote=quote, to="contract")
                quote_convert(by=seller, quote=quote, to="invoice")
            if stage == "lost":
                quote_set_stage(by=seller, quote=quote, stage="lost", reason="Chose a competitor")
        seller = sellers[0]
        client = Client.objects.filter(owner=seller).order_by("id").first()
        if client is not None:
            today = clock.today()
            _first, last = month_bounds(today)
            contract = contract_create(
                by=seller,
                client=client,
                title="Annual maintenance",
                starts_on=last - dt.timedelta(days=364),
                ends_on=last,
                value=Money(360000, client.currency),
            )
            contract_activate(by=seller, contract=contract)
            made += 1
    return made
