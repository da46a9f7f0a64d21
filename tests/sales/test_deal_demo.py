"""The demo deals: every stage filled for the demo sellers, once."""

import pytest

from clientbase.core.demo import ensure_demo_org
from clientbase.sales.deal_demo import demo_deal_create
from clientbase.sales.models import Activity, Deal, StageTask

pytestmark = pytest.mark.django_db


def test_demo_deals_fill_every_stage_once(default_roles):
    org = ensure_demo_org()
    from clientbase.clients.services import client_create

    for username in ("sales.paris", "sales.paris.b", "sales.lyon"):
        seller = org.users[username]
        client_create(
            by=seller,
            name=f"Client of {username}",
            email=f"{username}@demo.example",
            currency="EUR",
        )

    made = demo_deal_create(org=org)

    assert made == 21
    assert demo_deal_create(org=org) == 0
    by_status = {s: Deal.objects.filter(status=s).count() for s in ("open", "won", "lost")}
    assert by_status == {"open": 15, "won": 3, "lost": 3}
    assert StageTask.objects.count() == 4
    assert Activity.objects.filter(origin_key__startswith="stage-task:").count() > 0
