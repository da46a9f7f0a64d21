"""A seller's day with activities in a real browser: log a call and schedule a meeting from the
client's Sales tab, tick a to-do, read the calendar by week, month and day, and list clients
who have stopped ordering."""

import datetime as dt

import pytest
from playwright.sync_api import expect

from clientbase.accounts.models import Role
from clientbase.accounts.services import org_unit_create, user_create
from clientbase.billing.models import Order
from clientbase.clients.services import client_create
from clientbase.core import clock
from clientbase.sales.activity_services import activity_create
from clientbase.sales.models import Activity, ReorderRule
from tests.conftest import PASSWORD
from tests.e2e.test_billing_flow import _shot, _watch

pytestmark = pytest.mark.e2e


def test_log_schedule_tick_and_read_the_calendar(live_server, page, sign_in):
    company = org_unit_create(name="Acme", kind="company", parent=None, by=None)
    seller = user_create(
        username="marie",
        password=PASSWORD,
        by=None,
        email="marie@example.com",
        first_name="Marie",
        last_name="Dupont",
        role=Role.objects.get(slug="sales"),
        org_unit=company,
    )
    buyer = client_create(
        by=seller,
        name="Atelier Lumière",
        email="contact@atelier-lumiere.fr",
        country="FR",
        currency="EUR",
    )
    now = clock.now()
    late = activity_create(
        by=seller,
        kind="todo",
        subject="Send the price list",
        due_at=now - dt.timedelta(hours=3),
        client=buyer,
    )
    Order.objects.create(
        number="O-1",
        client=buyer,
        status="accepted",
        currency="EUR",
        payment_method="bank_transfer",
        created_at=now - dt.timedelta(days=120),
    )
    ReorderRule.objects.create(name="Quarterly", days=90)
    problems = _watch(page)
    sign_in(page, "marie", PASSWORD)

    # The client's Sales tab: log a call done now.
    page.goto(f"/clients/{buyer.pk}/?tab=sales")
    expect(page.locator("#activity-panel")).to_be_visible()
    page.select_option("#qa-kind", "call")
    page.fill("#qa-subject", "Asked about the spring offer")
    page.select_option("#qa-outcome", "interested")
    page.click("#qa-log")
    expect(page.locator("#activity-recent")).to_contain_text("Asked about the spring offer")
    expect(page.locator("#count-call")).to_contain_text("1")
    # Then schedule a meeting tomorrow with a reminder.
    tomorrow = (now + dt.timedelta(days=1)).strftime("%Y-%m-%d")
    page.select_option("#qa-kind", "meeting")
    page.fill("#qa-subject", "Visit the workshop")
    page.fill("#qa-due", f"{tomorrow}T10:00")
    page.fill("#qa-remind", f"{tomorrow}T09:00")
    page.click("#qa-schedule")
    expect(page.locator("#activity-upcoming")).to_contain_text("Visit the workshop")
    expect(page.locator("#activity-next")).to_contain_text("Send the price list")
    _shot(page, "activities_client_sales_tab")
    # A reminder after the meeting is refused in the panel, and nothing is saved.
    page.fill("#qa-subject", "Too late a reminder")
    page.fill("#qa-due", f"{tomorrow}T10:00")
    page.fill("#qa-remind", f"{tomorrow}T11:00")
    page.click("#qa-schedule")
    expect(page.locator("#activity-quick-form")).to_contain_text(
        "The reminder must come before the activity."
    )
    assert not Activity.objects.filter(subject="Too late a reminder").exists()
    _shot(page, "activities_panel_refused")
    # Reschedule the meeting from the panel.
    meeting = Activity.objects.get(subject="Visit the workshop")
    row = page.locator(f"#activity-{meeting.pk}")
    row.locator("summary").click()
    row.locator("input[name=due_at]").fill(f"{tomorrow}T15:30")
    row.locator("button:has-text('Move')").click()
    expect(page.locator(f"#activity-{meeting.pk}")).to_contain_text("3:30")
    meeting.refresh_from_db()
    assert meeting.done_at is None and meeting.due_at.hour == 15

    # The to-do list: tick the late to-do.
    page.goto("/sales/todo/")
    expect(page.locator("#todo-overdue")).to_contain_text("Send the price list")
    _shot(page, "activities_todo")
    page.click(f"#todo-{late.pk} .todo-tick")
    expect(page.locator(f"#todo-{late.pk}.todo-done")).to_be_visible()
    late.refresh_from_db()
    assert late.done_at is not None

    # The calendar: week, month and day.
    page.goto(f"/sales/calendar/?date={tomorrow}")
    expect(page.locator("#calendar-grid")).to_contain_text("Visit the workshop")
    _shot(page, "activities_calendar_week")
    page.click("#cal-view-month")
    expect(page.locator("#calendar-grid")).to_contain_text("Visit the workshop")
    _shot(page, "activities_calendar_month")
    page.goto(f"/sales/calendar/?view=day&date={tomorrow}")
    expect(page.locator("#calendar-grid")).to_contain_text("Visit the workshop")
    _shot(page, "activities_calendar_day")

    # The activity list and the clients who stopped ordering.
    page.goto("/sales/activities/")
    expect(page.locator("#activity-table")).to_contain_text("Asked about the spring offer")
    _shot(page, "activities_list")
    page.goto("/sales/reorder/")
    expect(page.locator("#reorder-table")).to_contain_text("Atelier Lumière")
    _shot(page, "activities_reorder")
    assert problems == []
