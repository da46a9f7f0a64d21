"""A sales manager in a real browser sets a seller's monthly targets, then reads the team's KPI
report with its charts and exports it; the seller reads her own."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from clientbase.accounts.models import Role
from clientbase.accounts.services import org_unit_create, user_create
from clientbase.core import clock
from clientbase.sales.activity_services import activity_create
from clientbase.sales.kpi_queries import month_period
from tests.conftest import PASSWORD
from tests.e2e.test_billing_flow import _shot, _watch
from tests.sales.test_kpi_report import customer_of, pay

pytestmark = pytest.mark.e2e


def _team():
    company = org_unit_create(name="Acme", kind="company", parent=None, by=None)
    branch = org_unit_create(name="Paris", kind="branch", parent=company, by=None)
    team = org_unit_create(name="Team A", kind="team", parent=branch, by=None)

    def person(username, role, unit, first, last):
        return user_create(
            username=username,
            password=PASSWORD,
            by=None,
            email=f"{username}@example.com",
            role=Role.objects.get(slug=role),
            org_unit=unit,
            first_name=first,
            last_name=last,
        )

    manager = person("olga", "manager", branch, "Olga", "Petrova")
    marie = person("marie", "sales", team, "Marie", "Dupont")
    paul = person("paul", "sales", team, "Paul", "Martin")
    root = person("root", "administrator", company, "Root", "Admin")
    return manager, marie, paul, root, team


def test_manager_sets_targets_and_reads_the_team_report(live_server, page, new_page, sign_in):
    _manager, marie, paul, root, team = _team()
    for kind in ("call", "call", "call", "meeting", "email"):
        activity_create(by=marie, kind=kind, subject=f"{kind} with a prospect", done=True)
    activity_create(by=paul, kind="call", subject="Cold call", done=True)
    pay(customer_of(marie, "Newco"), "1200.00", clock.today(), root)
    month = month_period(clock.today())
    problems = _watch(page)

    # The manager sets Marie's revenue target for this month with the month shortcut
    sign_in(page, "olga", PASSWORD)
    page.goto("/sales/kpi/targets/")
    page.click("#kpi-target-add")
    page.select_option("#id_who", f"u{marie.pk}")
    page.select_option("#id_metric", "revenue")
    page.fill("#id_period_start", "")
    page.click("#kpi-period-shortcuts button:has-text('This month')")
    expect(page.locator("#id_period_start")).to_have_value(month.start.isoformat())
    expect(page.locator("#id_period_end")).to_have_value(month.end.isoformat())
    page.fill("#id_value", "2000")
    page.fill("#id_currency", "EUR")
    page.fill("#id_commission_percent", "5")
    _shot(page, "kpi-target-form")
    page.click("#kpi-target-save")
    expect(page.locator("#kpi-targets")).to_contain_text("Marie Dupont")
    expect(page.locator("#kpi-targets")).to_contain_text("€2,000.00")

    # A bad target is refused at its field, nothing saved
    page.click("#kpi-target-add")
    page.select_option("#id_who", f"u{marie.pk}")
    page.select_option("#id_metric", "calls")
    page.fill("#id_value", "1.5")
    page.click("#kpi-target-save")
    expect(page.locator(".field-value .invalid-feedback")).to_contain_text("Enter a whole number.")
    problems.clear()  # the refused form answered 400, as it should
    page.fill("#id_value", "4")
    page.click("#kpi-target-save")
    _shot(page, "kpi-targets")
    expect(page.locator(".kpi-target-row")).to_have_count(2)

    # The team's report sums both sellers and draws the charts
    page.goto("/sales/kpi/")
    page.select_option("#id_who", f"t{team.pk}")
    page.click("#kpi-show")
    expect(page.locator("#kpi-subject")).to_have_text("Team A")
    expect(page.locator('.kpi-row[data-metric="calls"] .kpi-actual')).to_have_text("4")
    expect(page.locator(".kpi-member")).to_have_count(2)
    expect(page.locator("#kpi-members-chart")).to_be_visible()
    _shot(page, "kpi-team-report")

    # Marie's own report: 3 of 4 calls, 60 % of revenue, 5 % commission of €1,200.00
    page.click(f'.kpi-member[data-user="{marie.pk}"] a')
    expect(page.locator("#kpi-subject")).to_have_text("Marie Dupont")
    expect(page.locator('.kpi-row[data-metric="calls"] .kpi-percent')).to_have_text("75.0 %")
    expect(page.locator('.kpi-row[data-metric="revenue"] .kpi-percent')).to_have_text("60.0 %")
    expect(page.locator("#kpi-commission")).to_contain_text("€60.00")
    canvas = page.locator("#kpi-chart")
    expect(canvas).to_be_visible()
    assert canvas.evaluate("c => c.width > 0 && c.height > 0")
    _shot(page, "kpi-person-report")

    # The export downloads the same table
    with page.expect_download() as download:
        page.click('[data-export="csv"]')
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert "Marie Dupont,Calls,4,3,75.0," in text
    assert problems == []

    # Marie reads her own report, and nobody else's
    seller_page = new_page()
    sign_in(seller_page, "marie", PASSWORD)
    seller_page.goto("/sales/kpi/")
    expect(seller_page.locator("#kpi-subject")).to_have_text("Marie Dupont")
    expect(seller_page.locator("#id_who option")).to_have_count(1)
    seller_page.set_viewport_size({"width": 390, "height": 844})
    _shot(seller_page, "kpi-seller-phone")
    answer = seller_page.goto(f"/sales/kpi/?who=u{paul.pk}")
    assert answer.status == 404
