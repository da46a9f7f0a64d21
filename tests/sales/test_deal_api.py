"""Deals over the API: list, create, change, move with problem documents; pipelines; forecast."""

import datetime as dt
import json

import pytest
import time_machine

from clientbase.sales import deal_services as services
from clientbase.sales.models import Deal, Pipeline, Stage
from clientbase.sales.pipelines import default_pipeline

pytestmark = pytest.mark.django_db

API = "/api/v1"
NOW = dt.datetime(2025, 3, 10, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def _post(http, path, data, headers=None):
    return http.post(API + path, json.dumps(data), content_type="application/json", headers=headers)


def _stage(name: str) -> Stage:
    return default_pipeline(Pipeline.Kind.DEAL).stages.get(name=name)


def test_create_get_and_list_deals(
    seller, buyer, other_seller, api_client, django_assert_num_queries
):
    http = api_client(seller)
    created = _post(
        http, "/deals",
        {"name": "Website", "value": "1200.50", "client_id": buyer.pk, "expected_close": "2025-04-30"},
        headers={"Idempotency-Key": "deal-1"},
    )  # fmt: skip
    again = _post(
        http, "/deals",
        {"name": "Website", "value": "1200.50", "client_id": buyer.pk, "expected_close": "2025-04-30"},
        headers={"Idempotency-Key": "deal-1"},
    )  # fmt: skip
    assert created.status_code == 201, created.content
    body = created.json()
    assert again.json()["id"] == body["id"]
    assert Deal.objects.count() == 1
    assert {k: body[k] for k in ("number", "value", "value_minor", "currency", "stage", "probability")} == {
        "number": "D-00001", "value": "1200.50", "value_minor": 120050, "currency": "EUR",
        "stage": "Needs analysis", "probability": 10,
    }  # fmt: skip
    services.deal_create(by=other_seller, name="Theirs")

    # token, count, page
    with django_assert_num_queries(3):
        listed = http.get(API + "/deals")
    assert listed.status_code == 200
    assert [d["name"] for d in listed.json()["items"]] == ["Website"]
    assert http.get(API + f"/deals/{body['id']}").json()["client_id"] == buyer.pk


def test_create_refuses_bad_input_with_problems(seller, other_seller, api_client):
    theirs = services.deal_create(by=other_seller, name="Theirs")
    http = api_client(seller)
    bad_stage = _post(http, "/deals", {"name": "X", "stage_id": _stage("Negotiation").pk})
    bad_client = _post(http, "/deals", {"name": "X", "client_id": 999})
    bad_value = _post(http, "/deals", {"name": "X", "value": "-5"})
    assert bad_stage.status_code == 422
    assert bad_stage.json()["errors"] == [
        {"field": "stage_id", "message": "Negotiation needs a value and an expected close date."}
    ]
    assert bad_client.json()["errors"][0]["field"] == "client_id"
    assert bad_value.status_code == 422
    assert Deal.objects.exclude(pk=theirs.pk).count() == 0


def test_move_refused_conflict_and_out_of_sight(seller, other_seller, api_client):
    deal = services.deal_create(by=seller, name="X")
    http = api_client(seller)

    missing = _post(http, f"/deals/{deal.pk}/move", {"stage_id": _stage("Proposal").pk})
    no_reason = _post(http, f"/deals/{deal.pk}/move", {"stage_id": _stage("Lost").pk})
    unseen = _post(
        api_client(other_seller),
        f"/deals/{deal.pk}/move",
        {"stage_id": _stage("Lost").pk, "reason": "x"},
    )
    lost = _post(
        http,
        f"/deals/{deal.pk}/move",
        {"stage_id": _stage("Lost").pk, "reason": "Price", "version": 1},
    )
    stale = _post(
        http, f"/deals/{deal.pk}/move", {"stage_id": _stage("Needs analysis").pk, "version": 1}
    )

    assert missing.status_code == 422
    assert missing.json()["errors"] == [{"field": "stage_id", "message": "Proposal needs a value."}]
    assert no_reason.json()["errors"] == [
        {"field": "reason", "message": "Say why before moving to Lost."}
    ]
    assert unseen.status_code == 404
    assert lost.status_code == 200
    assert (lost.json()["status"], lost.json()["lost_reason"], lost.json()["version"]) == (
        "lost",
        "Price",
        2,
    )
    assert stale.status_code == 409
    deal.refresh_from_db()
    assert (deal.status, deal.version) == ("lost", 2)


def test_patch_with_version(seller, api_client):
    deal = services.deal_create(by=seller, name="X")
    http = api_client(seller)
    ok = http.patch(
        API + f"/deals/{deal.pk}",
        json.dumps({"value": "99.99", "version": 1}),
        content_type="application/json",
    )
    stale = http.patch(
        API + f"/deals/{deal.pk}",
        json.dumps({"name": "Y", "version": 1}),
        content_type="application/json",
    )
    assert ok.status_code == 200
    assert (ok.json()["value_minor"], ok.json()["version"]) == (9999, 2)
    assert stale.status_code == 409
    deal.refresh_from_db()
    assert deal.name == "X"


def test_pipelines_list_and_create_need_settings(seller, admin_user, api_client):
    listed = api_client(seller).get(API + "/pipelines?kind=deal")
    assert [s["name"] for s in listed.json()[0]["stages"]] == [
        "Needs analysis", "Proposal", "Negotiation", "Won", "Lost",
    ]  # fmt: skip
    payload = {"name": "Partners", "stages": [
        {"name": "Talk", "state": "open", "probability": 20},
        {"name": "Signed", "state": "won", "probability": 100, "requires": ["client"]},
    ]}  # fmt: skip
    refused = _post(api_client(seller), "/pipelines", payload)
    created = _post(api_client(admin_user), "/pipelines", payload)
    assert refused.status_code == 403
    assert created.status_code == 201, created.content
    assert [(s["name"], s["position"]) for s in created.json()["stages"]] == [
        ("Talk", 1),
        ("Signed", 2),
    ]
    bad = _post(
        api_client(admin_user),
        "/pipelines",
        {"name": "Bad", "stages": [{"name": "A", "state": "dead"}]},
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "stages.0.state"
    assert not Pipeline.objects.filter(name="Bad").exists()


def test_forecast_weighs_open_deals_and_shows_won(seller, buyer, other_seller, api_client):
    from clientbase.core.money import Money

    services.deal_create(
        by=seller, name="A", value=Money(10000, "EUR"), expected_close=dt.date(2025, 3, 20)
    )
    b = services.deal_create(
        by=seller, name="B", value=Money(333, "EUR"), expected_close=dt.date(2025, 3, 25)
    )
    services.deal_move(by=seller, deal=b, stage=_stage("Proposal"))
    won = services.deal_create(by=seller, name="W", value=Money(5000, "EUR"), client=buyer)
    services.deal_move(by=seller, deal=won, stage=_stage("Won"))
    services.deal_create(
        by=other_seller,
        name="Hidden",
        value=Money(99999, "EUR"),
        expected_close=dt.date(2025, 3, 1),
    )

    rows = api_client(seller).get(API + "/forecast").json()

    # 10000 × 10 % + 333 × 40 % = 1000 + 133.2 → 1133
    assert rows == [{
        "month": "2025-03-01", "owner_id": seller.pk, "owner_name": "Marie Dupont", "currency": "EUR",
        "weighted_minor": 1133, "pipeline_value_minor": 10333, "won_minor": 5000,
        "open_count": 2, "won_count": 1,
    }]  # fmt: skip
