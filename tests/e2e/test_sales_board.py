"""A seller's deals in a real browser: drag a card across the board (saved at once), a
refused drop comes back with the reason, a lost drop asks why, the forecast draws its chart."""

import datetime as dt

import pytest
from playwright.sync_api import expect

from clientbase.accounts.models import Role
from clientbase.accounts.services import org_unit_create, user_create
from clientbase.clients.services import client_create
from clientbase.core.money import Money
from clientbase.sales.deal_services import deal_create
from clientbase.sales.models import Deal, Pipeline
from clientbase.sales.pipelines import default_pipeline
from tests.conftest import PASSWORD
from tests.e2e.test_billing_flow import _shot, _watch

pytestmark = pytest.mark.e2e


def _drag(page, card: str, column_id: int) -> None:
    """Drag with real mouse moves, as SortableJS listens to pointer events."""
    page.locator(f"#column-{column_id}").scroll_into_view_if_needed()
    source = page.locator(card).bounding_box()
    target = page.locator(f"#column-{column_id} .board-cards").bounding_box()
    page.mouse.move(source["x"] + source["width"] / 2, source["y"] + 10)
    page.mouse.down()
    for step in range(1, 16):
        x = source["x"] + (target["x"] + target["width"] / 2 - source["x"]) * step / 15
        y = source["y"] + 10 + (target["y"] + 40 - source["y"] - 10) * step / 15
        page.mouse.move(x, y)
        page.wait_for_timeout(30)
    page.mouse.up()
    page.wait_for_timeout(100)


def test_drag_a_deal_across_the_board_to_won(live_server, page, sign_in):
    company = org_unit_create(name="Acme", kind="company", parent=None, by=None)
    seller = user_create(
        username="marie", password=PASSWORD, by=None, email="marie@example.com",
        first_name="Marie", last_name="Dupont", role=Role.objects.get(slug="sales"), org_unit=company,
    )  # fmt: skip
    buyer = client_create(by=seller, name="Atelier Lumière", email="a@lumiere.fr", currency="EUR")
    pipeline = default_pipeline(Pipeline.Kind.DEAL)
    stages = {s.name: s for s in pipeline.stages.all()}
    deal = deal_create(
        by=seller, name="Website redesign", value=Money(1250000, "EUR"), client=buyer,
        expected_close=dt.date.today() + dt.timedelta(days=20),
    )  # fmt: skip
    bare = deal_create(by=seller, name="No value yet")
    for n in range(3):
        deal_create(by=seller, name=f"Hosting {n}", value=Money(90000, "EUR"))
    problems = _watch(page)

    sign_in(page, "marie", PASSWORD)
    page.goto("/sales/deals/board/")
    expect(page.locator(f"#card-deal-{deal.pk}")).to_be_visible()
    _shot(page, "sales_board_01")

    # A drop is saved at once and the totals follow
    _drag(page, f"#card-deal-{deal.pk}", stages["Proposal"].pk)
    expect(page.locator(f"#column-{stages['Proposal'].pk} #card-deal-{deal.pk}")).to_be_visible()
    expect(page.locator(f"#totals-{stages['Proposal'].pk}")).to_contain_text("1 card")
    expect(page.locator(f"#card-deal-{deal.pk}")).to_have_attribute("data-version", "2")
    assert Deal.objects.get(pk=deal.pk).stage == stages["Proposal"]

    # A refused drop puts the card back and says what is missing
    _drag(page, f"#card-deal-{bare.pk}", stages["Negotiation"].pk)
    expect(page.locator("#board-message")).to_contain_text(
        "Negotiation needs a value and an expected close date."
    )
    expect(
        page.locator(f"#column-{stages['Needs analysis'].pk} #card-deal-{bare.pk}")
    ).to_be_visible()
    _shot(page, "sales_board_02_refused")
    assert Deal.objects.get(pk=bare.pk).version == 1

    # A drop on Lost asks why first
    _drag(page, f"#card-deal-{bare.pk}", stages["Lost"].pk)
    expect(page.locator("#reason-modal")).to_be_visible()
    page.fill("#reason-input", "Went with a competitor")
    _shot(page, "sales_board_03_reason")
    page.click("#reason-submit")
    expect(page.locator(f"#column-{stages['Lost'].pk} #card-deal-{bare.pk}")).to_contain_text(
        "Went with a competitor"
    )

    # and on to won
    expect(page.locator("#reason-modal")).to_be_hidden()
    page.wait_for_timeout(400)  # the modal's fade-out and backdrop
    _drag(page, f"#card-deal-{deal.pk}", stages["Won"].pk)
    expect(page.locator(f"#column-{stages['Won'].pk} #card-deal-{deal.pk}")).to_be_visible()
    expect(page.locator(f"#card-deal-{deal.pk}")).to_have_attribute("data-version", "3")
    _shot(page, "sales_board_04_won")
    won = Deal.objects.get(pk=deal.pk)
    assert (won.status, won.probability) == ("won", 100)

    # The deal's card tells its story; the forecast draws
    page.goto(f"/sales/deals/{deal.pk}/")
    expect(page.locator("#stage-history")).to_contain_text("Won")
    _shot(page, "sales_deal_card")
    page.goto("/sales/forecast/")
    expect(page.locator("#forecast-table")).to_contain_text("Marie Dupont")
    _shot(page, "sales_forecast")
    # The refused drop's 422 is the browser logging an expected answer, not a fault.
    assert [p for p in problems if "status of 422" not in p] == []


def test_administrator_adds_a_stage_with_a_next_step(live_server, page, sign_in):
    company = org_unit_create(name="Acme", kind="company", parent=None, by=None)
    user_create(
        username="boss", password=PASSWORD, by=None, email="boss@example.com",
        role=Role.objects.get(slug="administrator"), org_unit=company,
    )  # fmt: skip
    pipeline = default_pipeline(Pipeline.Kind.DEAL)
    problems = _watch(page)

    sign_in(page, "boss", PASSWORD)
    page.goto(f"/sales/pipelines/{pipeline.pk}/")
    page.fill("#id_stage-name", "Contract review")
    page.select_option("#id_stage-state", "open")
    page.fill("#id_stage-probability", "85")
    page.check("input[name='stage-requires'][value='quote']")
    page.click("#stage-add")
    expect(page.locator("#stage-table")).to_contain_text("Contract review")
    expect(page.locator("#stage-table")).to_contain_text("a quote")
    row = page.locator("#stage-table tr", has_text="Contract review")
    row.locator("input[name='task-subject']").fill("Send the contract draft")
    row.locator("form:has(input[name='task-subject']) button").click()
    expect(page.locator("#stage-table")).to_contain_text("Send the contract draft")
    _shot(page, "sales_pipeline_settings")
    page.goto("/sales/deals/")
    _shot(page, "sales_deal_list")
    assert problems == []
