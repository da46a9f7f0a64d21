"""Demo activities: calls, meetings, emails and to-dos around today for the demo sellers, some
of them overdue, and a reorder rule, made through the same services the pages use."""

import datetime as dt
import random

from django.db import transaction

from clientbase.clients.models import Client
from clientbase.core import clock
from clientbase.sales.activity_services import activity_create, reorder_rule_save
from clientbase.sales.models import Activity, ReorderRule

DEMO_SELLERS = ("sales.paris", "sales.paris.b", "sales.lyon")
PER_SELLER = 14

# (kind, subject, outcome when done)
_DONE = [
    ("call", "Introduction call", "interested"),
    ("call", "Asked about prices", "call_back"),
    ("call", "No one picked up", "no_answer"),
    ("email", "Sent the brochure", "done"),
    ("quote_email", "Sent the quote", "done"),
    ("meeting", "Demo of the service", "interested"),
]
_PLANNED = [
    ("call", "Call back about the offer"),
    ("meeting", "Visit at their office"),
    ("todo", "Prepare the renewal proposal"),
    ("task", "Check the contract terms"),
    ("email", "Send the follow-up"),
    ("meeting", "Review the first month"),
]


def demo_activity_create(*, org, seed: int = 7) -> int:
    """Make the demo activities once (a rerun adds nothing); returns how many were made."""
    if Activity.objects.filter(origin_key__startswith="demo:").exists():
        return 0
    rng = random.Random(seed)
    now = clock.now().replace(minute=0, second=0, microsecond=0)
    made = 0
    with transaction.atomic():
        if not ReorderRule.objects.exists():
            reorder_rule_save(by=None, rule=None, name="Quarterly check-in", days=90, active=True)
        for username in DEMO_SELLERS:
            seller = org.users.get(username)
            if seller is None:
                continue
            clients = list(Client.objects.filter(owner=seller).order_by("id")[:8])
            for n in range(PER_SELLER):
                client = rng.choice(clients) if clients else None
                past = n % 2 == 0
                hours = rng.randint(1, 24 * 6)
                if past:
                    kind, subject, outcome = rng.choice(_DONE)
                    # A third of the past ones were never done: overdue in the to-do list.
                    done = rng.random() > 0.33
                    due_at = now - dt.timedelta(hours=hours)
                else:
                    (kind, subject), outcome, done = rng.choice(_PLANNED), "", False
                    due_at = now + dt.timedelta(hours=hours)
                remind_at = due_at - dt.timedelta(minutes=30) if not done and not past else None
                activity_create(
                    by=seller,
                    kind=kind,
                    subject=subject,
                    due_at=due_at,
                    duration_minutes=60 if kind == "meeting" else 15 if kind == "call" else 0,
                    done=done,
                    outcome=outcome if done else "",
                    remind_at=remind_at,
                    client=client,
                    owner=seller,
                    origin_key=f"demo:{username}:{n}",
                )
                made += 1
    return made
