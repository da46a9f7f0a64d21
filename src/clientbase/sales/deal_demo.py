"""Demo deals: the default pipeline with next steps, and deals in every stage for the sellers."""

import datetime as dt
import random

from django.db import transaction

from clientbase.clients.models import Client
from clientbase.core import clock
from clientbase.core.demo import DemoOrg
from clientbase.core.money import Money
from clientbase.sales.deal_services import deal_create, deal_move, stage_task_save
from clientbase.sales.models import Deal, Pipeline
from clientbase.sales.pipelines import default_pipeline

SELLERS = ["sales.paris", "sales.paris.b", "sales.lyon"]
NAMES = [
    "Website redesign", "Managed hosting", "Support plan 2025", "Mail migration",
    "Office 365 licences", "Security audit", "Staff training", "Backup service",
    "VPS cluster", "Domain portfolio", "E-shop launch", "SEO package",
]  # fmt: skip
# (stage name, how many per seller)
SPREAD = [("Needs analysis", 2), ("Proposal", 2), ("Negotiation", 1), ("Won", 1), ("Lost", 1)]
TASKS = {
    "Proposal": [("Send the proposal", "email", 1), ("Call to walk through it", "call", 3)],
    "Negotiation": [("Agree on the terms", "meeting", 2)],
    "Won": [("Hand over to delivery", "task", 1)],
}


def demo_deal_create(*, org: DemoOrg, seed: int = 7) -> int:
    """Make the pipeline's next steps and deals in each stage (once); returns how many deals."""
    if Deal.objects.exists():
        return 0
    rng = random.Random(seed)
    pipeline = default_pipeline(Pipeline.Kind.DEAL)
    stages = {stage.name: stage for stage in pipeline.stages.all()}
    today = clock.today()
    made = 0
    with transaction.atomic():
        for stage_name, tasks in TASKS.items():
            stage = stages.get(stage_name)
            if stage is None or stage.tasks.exists():
                continue
            for subject, kind, days in tasks:
                stage_task_save(by=None, stage=stage, subject=subject, kind=kind, due_in_days=days)
        for username in SELLERS:
            seller = org.users.get(username)
            if seller is None:
                continue
            clients = list(
                Client.objects.filter(owner=seller).order_by("id")[:6]
                or Client.objects.filter(org_unit=seller.org_unit).order_by("id")[:6]
            )
            for stage_name, count in SPREAD:
                for _n in range(count):
                    client = rng.choice(clients) if clients else None
                    if stage_name == "Won" and client is None:
                        continue
                    currency = client.currency if client else "EUR"
                    deal = deal_create(
                        by=seller,
                        name=rng.choice(NAMES),
                        value=Money(rng.randint(10, 400) * 10000, currency),
                        client=client,
                        expected_close=today + dt.timedelta(days=rng.randint(5, 150)),
                        campaign=rng.choice(["", "Spring offer", "Partner referral"]),
                    )
                    for name, _count in SPREAD:
                        target = stages.get(name)
                        if target is None:
                            break
                        if name == stage_name:
                            reason = "Chose a cheaper offer" if target.state == "lost" else ""
                            deal_move(by=seller, deal=deal, stage=target, reason=reason)
                            break
                        if target.state == "open":
                            deal_move(by=seller, deal=deal, stage=target)
                    made += 1
    return made
