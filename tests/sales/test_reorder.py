"""Reorder reminders (SAL-7): clients who stopped ordering, the daily to-dos, the rule pages."""

import datetime as dt

import pytest
import time_machine

from clientbase.billing.models import Order
from clientbase.clients.services import client_create
from clientbase.core.cron import run_jobs
from clientbase.sales.activity_services import lapsed_clients, reorder_reminders_create
from clientbase.sales.models import Activity, ReorderRule

NOW = dt.datetime(2025, 6, 30, 10, 0, tzinfo=dt.UTC)
TODAY = NOW.date()


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def _order(client, days_ago: int, status: str = "accepted", number: str = ""):
    return Order.objects.create(
        number=number or f"O-{client.pk}-{days_ago}-{status}",
        client=client,
        status=status,
        currency="EUR",
        payment_method="bank_transfer",
        created_at=NOW - dt.timedelta(days=days_ago),
    )


@pytest.fixture
def clients(seller, other_seller, buyer):
    """The buyer last ordered 100 days ago; a second client 10 days ago; a third never."""
    recent = client_create(by=seller, name="Boulangerie Petit", email="bp@example.fr")
    never = client_create(by=seller, name="Never ordered", email="never@example.fr")
    elsewhere = client_create(by=other_seller, name="Team B client", email="tb@example.fr")
    _order(buyer, 200)
    _order(buyer, 100)
    _order(buyer, 5, status="cancelled")
    _order(recent, 10)
    _order(elsewhere, 95)
    return {"buyer": buyer, "recent": recent, "never": never, "elsewhere": elsewhere}


def test_lapsed_clients_are_those_whose_last_accepted_order_is_too_old(clients):
    lapsed = lapsed_clients(90, today=TODAY).order_by("name")
    assert [c.name for c in lapsed] == ["Atelier Lumière", "Team B client"]
    assert lapsed[0].last_order == NOW - dt.timedelta(days=100)
    assert [c.name for c in lapsed_clients(99, today=TODAY)] == ["Atelier Lumière"]


def test_closed_clients_are_not_chased(clients):
    from clientbase.clients.models import Client

    Client.objects.filter(pk=clients["buyer"].pk).update(status="closed")
    assert [c.name for c in lapsed_clients(90, today=TODAY)] == ["Team B client"]


def test_daily_job_makes_one_to_do_per_client_rule_and_lapse(seller, clients, frozen):
    # given a 90-day rule and an inactive 30-day rule
    rule = ReorderRule.objects.create(name="Quarterly", days=90)
    ReorderRule.objects.create(name="Monthly", days=30, active=False)
    # when the job runs, then runs again
    first = reorder_reminders_create(today=TODAY)
    second = reorder_reminders_create(today=TODAY)
    # then each lapsed client's owner got one to-do, and the rerun added nothing
    assert (first, second) == (2, 0)
    todo = Activity.objects.get(client=clients["buyer"])
    assert todo.kind == "todo" and todo.owner == seller and todo.done_at is None
    assert todo.subject == "Atelier Lumière has not ordered since 2025-03-22"
    assert todo.origin_key == f"reorder:{rule.pk}:{clients['buyer'].pk}:2025-03-22"
    assert todo.due_at == dt.datetime(2025, 6, 30, 9, 0, tzinfo=dt.UTC)
    # and when the client orders again and lapses again, a new to-do comes
    _order(clients["buyer"], 0, number="O-again")
    frozen.shift(dt.timedelta(days=91))
    assert reorder_reminders_create(today=TODAY + dt.timedelta(days=91)) == 2
    assert Activity.objects.filter(client=clients["buyer"]).count() == 2


def test_the_cron_runs_the_reorder_job(clients):
    ReorderRule.objects.create(name="Quarterly", days=90)
    runs = run_jobs(day=TODAY, only=["sales_reorder_reminders"])
    assert [(r.status, r.result) for r in runs] == [("ok", "2 reorder to-dos made")]


def test_reorder_page_lists_only_clients_in_sight(seller, clients, signed_in):
    ReorderRule.objects.create(name="Quarterly", days=90)
    page = signed_in(seller).get("/sales/reorder/").content.decode()
    assert "Atelier Lumière" in page and "Team B client" not in page
    assert "Boulangerie Petit" not in page
    shorter = signed_in(seller).get("/sales/reorder/?days=7").content.decode()
    assert "Boulangerie Petit" in shorter and "Never ordered" not in shorter


def test_rule_pages_need_the_settings_permission(seller, admin_user, signed_in):
    assert signed_in(seller).get("/sales/reorder/rules/").status_code == 403
    browser = signed_in(admin_user)
    assert browser.get("/sales/reorder/rules/").status_code == 200
    created = browser.post(
        "/sales/reorder/rules/", {"name": "Half-year", "days": "180", "active": "on"}
    )
    assert created.status_code == 302
    rule = ReorderRule.objects.get()
    assert (rule.name, rule.days, rule.active) == ("Half-year", 180, True)
    changed = browser.post(f"/sales/reorder/rules/{rule.pk}/", {"name": "Half-year", "days": "150"})
    assert changed.status_code == 302
    rule.refresh_from_db()
    assert (rule.days, rule.active) == (150, False)


def test_rule_page_refuses_zero_days_and_a_duplicate_name(admin_user, signed_in):
    ReorderRule.objects.create(name="Quarterly", days=90)
    browser = signed_in(admin_user)
    zero = browser.post("/sales/reorder/rules/", {"name": "Never", "days": "0", "active": "on"})
    twin = browser.post("/sales/reorder/rules/", {"name": "quarterly", "days": "30"})
    assert zero.status_code == twin.status_code == 200
    assert "Count at least one day." in zero.content.decode()
    assert "Another rule has this name." in twin.content.decode()
    assert list(ReorderRule.objects.values_list("name", flat=True)) == ["Quarterly"]
