"""Kanban boards in the browser's terms: columns, more cards on scroll, moves by drop."""

import datetime as dt
import json

import pytest
import time_machine
from django.urls import reverse

from clientbase.core.money import Money
from clientbase.sales import deal_services as services
from clientbase.sales.models import Deal, Lead, Pipeline, Stage
from clientbase.sales.pipelines import default_pipeline, first_stage

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2025, 3, 10, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def _stage(name: str) -> Stage:
    return default_pipeline(Pipeline.Kind.DEAL).stages.get(name=name)


def _deals(owner, count: int, **fields) -> list[Deal]:
    return [
        services.deal_create(
            by=owner, name=f"Deal {i}", value=Money(1000 * (i + 1), "EUR"), **fields
        )
        for i in range(count)
    ]


def test_board_paints_every_column_with_totals_in_few_queries(
    seller, other_seller, signed_in, django_assert_max_num_queries
):
    # given 25 deals of the seller's and one of another team's
    _deals(seller, 25)
    _deals(other_seller, 1)
    browser = signed_in(seller)

    # when the seller opens the board
    with django_assert_max_num_queries(16):
        page = browser.get(reverse("sales:board"))

    # then the first column shows 20 of their 25 cards, loads more on scroll, totals them
    assert page.status_code == 200
    columns = page.context["columns"]
    assert [c.stage.name for c in columns] == [
        "Needs analysis",
        "Proposal",
        "Negotiation",
        "Won",
        "Lost",
    ]
    first = columns[0]
    assert (len(first.cards), first.more, first.totals.count) == (20, True, 25)
    assert first.totals.values == [Money(325000, "EUR")]
    assert first.totals.weighted == [Money(32500, "EUR")]
    assert [c.name for c in first.cards[:2]] == ["Deal 24", "Deal 23"]
    html = page.content.decode()
    assert 'hx-trigger="revealed"' in html
    assert "Deal 0" not in html


def test_column_loads_the_next_page_sorted_by_value(seller, signed_in):
    _deals(seller, 25)
    stage = _stage("Needs analysis")
    page = signed_in(seller).get(
        reverse("sales:board_column", args=[stage.pk]), {"offset": 20, "sort": "value"}
    )
    assert page.status_code == 200
    assert [c.name for c in page.context["cards"]] == [
        "Deal 4",
        "Deal 3",
        "Deal 2",
        "Deal 1",
        "Deal 0",
    ]
    assert page.context["more"] is False


def test_drop_on_a_column_moves_the_deal_and_returns_the_card(seller, signed_in):
    (deal,) = _deals(seller, 1)
    proposal = _stage("Proposal")

    answer = signed_in(seller).post(
        reverse("sales:deal_move", args=[deal.pk]), {"stage": proposal.pk, "version": 1}
    )

    assert answer.status_code == 200
    data = json.loads(answer.content)
    assert 'data-version="2"' in data["card"]
    assert set(data["columns"]) == {str(_stage("Needs analysis").pk), str(proposal.pk)}
    assert "1 card" in data["columns"][str(proposal.pk)]
    deal.refresh_from_db()
    assert (deal.stage, deal.probability) == (proposal, 40)


def test_refused_drop_answers_the_message_and_changes_nothing(seller, signed_in):
    deal = services.deal_create(by=seller, name="No value")
    browser = signed_in(seller)

    missing = browser.post(
        reverse("sales:deal_move", args=[deal.pk]), {"stage": _stage("Negotiation").pk}
    )
    no_reason = browser.post(
        reverse("sales:deal_move", args=[deal.pk]), {"stage": _stage("Lost").pk}
    )
    stale = browser.post(
        reverse("sales:deal_move", args=[deal.pk]),
        {"stage": _stage("Lost").pk, "reason": "x", "version": 7},
    )

    assert missing.status_code == 422
    assert (
        json.loads(missing.content)["message"]
        == "Negotiation needs a value and an expected close date."
    )
    assert no_reason.status_code == 422
    assert json.loads(no_reason.content)["needs_reason"] is True
    assert stale.status_code == 409
    deal.refresh_from_db()
    assert (deal.stage.name, deal.version) == ("Needs analysis", 1)


def test_move_of_a_deal_out_of_sight_is_404(seller, other_seller, signed_in):
    (deal,) = _deals(seller, 1)
    answer = signed_in(other_seller).post(
        reverse("sales:deal_move", args=[deal.pk]), {"stage": _stage("Proposal").pk}
    )
    assert answer.status_code == 404
    assert signed_in(other_seller).get(reverse("sales:deal", args=[deal.pk])).status_code == 404
    deal.refresh_from_db()
    assert deal.version == 1


def test_lead_board_and_lead_drop(seller, signed_in):
    pipeline = default_pipeline(Pipeline.Kind.LEAD)
    lead = Lead.objects.create(
        number="L-1", name="Jean Petit", company="Petit SARL", currency="EUR",
        stage=first_stage(pipeline), owner=seller, org_unit=seller.org_unit,
    )  # fmt: skip
    browser = signed_in(seller)
    page = browser.get(reverse("sales:lead_board"))
    assert page.status_code == 200
    assert "Petit SARL" in page.content.decode()

    dead = pipeline.stages.get(state="dead")
    refused = browser.post(reverse("sales:lead_move", args=[lead.pk]), {"stage": dead.pk})
    moved = browser.post(
        reverse("sales:lead_move", args=[lead.pk]), {"stage": dead.pk, "reason": "Gone"}
    )
    assert refused.status_code == 422
    assert moved.status_code == 200
    lead.refresh_from_db()
    assert (lead.status, lead.dead_reason) == ("dead", "Gone")


def test_deal_card_shows_stage_history_and_actions(seller, buyer, signed_in):
    deal = services.deal_create(by=seller, name="Website", value=Money(5000, "EUR"), client=buyer)
    services.deal_move(by=seller, deal=deal, stage=_stage("Proposal"))
    browser = signed_in(seller)

    page = browser.get(reverse("sales:deal", args=[deal.pk]))

    assert page.status_code == 200
    assert [s["stage"] for s in page.context["steps"]] == ["Needs analysis", "Proposal"]
    html = page.content.decode()
    assert 'id="mark-won"' in html and 'id="mark-lost"' in html

    refused = browser.post(
        reverse("sales:deal_stage", args=[deal.pk]), {"stage": _stage("Lost").pk}, follow=True
    )
    assert "Say why before moving to Lost." in refused.content.decode()
    won = browser.post(
        reverse("sales:deal_stage", args=[deal.pk]), {"stage": _stage("Won").pk, "version": 2}
    )
    assert won.status_code == 302
    deal.refresh_from_db()
    assert (deal.status, deal.version) == ("won", 3)


def test_deal_new_for_a_client_and_edit(seller, buyer, signed_in):
    browser = signed_in(seller)
    form = browser.get(reverse("sales:deal_new"), {"client": buyer.pk})
    assert form.status_code == 200
    assert form.context["form"].initial["currency"] == "EUR"

    created = browser.post(
        reverse("sales:deal_new") + f"?client={buyer.pk}",
        {"name": "Hosting", "value": "1200.50", "currency": "EUR", "owner": seller.pk},
    )
    deal = Deal.objects.get()
    assert created.url == reverse("sales:deal", args=[deal.pk])
    assert (deal.client, deal.value_minor, deal.number) == (buyer, 120050, "D-00001")

    bad = browser.post(reverse("sales:deal_new"), {"name": "", "value": "-1"})
    assert bad.status_code == 200
    assert Deal.objects.count() == 1

    edited = browser.post(
        reverse("sales:deal_edit", args=[deal.pk]),
        {"name": "Hosting 2", "value": "10", "currency": "EUR", "version": 1, "owner": seller.pk},
    )
    assert edited.status_code == 302
    deal.refresh_from_db()
    assert (deal.name, deal.value_minor, deal.client) == ("Hosting 2", 1000, None)


def test_deal_list_queries_do_not_grow_with_rows(seller, signed_in, django_assert_num_queries):
    _deals(seller, 3)
    browser = signed_in(seller)
    browser.get(reverse("sales:deals"))
    with django_assert_num_queries(5):
        small = browser.get(reverse("sales:deals"))
    _deals(seller, 10)
    with django_assert_num_queries(5):
        big = browser.get(reverse("sales:deals"))
    assert len(small.context["deals"]) == 3 and len(big.context["deals"]) == 13


def test_pipeline_settings_need_the_permission(seller, admin_user, signed_in):
    assert signed_in(seller).get(reverse("sales:pipelines")).status_code == 403
    browser = signed_in(admin_user)
    assert browser.get(reverse("sales:pipelines")).status_code == 200
    added = browser.post(
        reverse("sales:pipelines"), {"name": "Partners", "kind": "deal", "active": "on"}
    )
    pipeline = Pipeline.objects.get(name="Partners")
    assert added.url == reverse("sales:pipeline", args=[pipeline.pk])
    browser.post(
        reverse("sales:pipeline", args=[pipeline.pk]),
        {
            "action": "stage",
            "stage-name": "Signed",
            "stage-state": "won",
            "stage-probability": 100,
            "stage-colour": "#198754",
        },
    )
    assert list(pipeline.stages.values_list("name", "position")) == [("New", 0), ("Signed", 1)]
    page = browser.get(reverse("sales:pipeline", args=[pipeline.pk]))
    assert page.status_code == 200
