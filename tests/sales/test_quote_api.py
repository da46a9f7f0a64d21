"""The quotes and contracts API: create, lines, stages, approval, convert, renew; 404 out of
sight, 409 for a refused move, 422 at the field, idempotent writes."""

import datetime as dt

import pytest

from clientbase.billing.models import Invoice
from clientbase.sales.models import Contract, Quote

pytestmark = pytest.mark.django_db

LINE = {"description": "Hosting", "quantity": "2", "unit_price": "60.00"}


def make(api, buyer, **extra):
    response = api.post(
        "/api/v1/quotes",
        {"client_id": buyer.pk, "title": "Hosting", "lines": [LINE], **extra},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def test_create_and_read_a_quote(seller, buyer, api_client):
    api = api_client(seller)
    quote = make(api, buyer)
    assert quote["number"] == "Q-00001"
    assert (quote["currency"], quote["stage"], quote["total_minor"]) == ("EUR", "draft", 12000)
    assert [line["net_minor"] for line in quote["lines"]] == [12000]
    got = api.get(f"/api/v1/quotes/{quote['id']}").json()
    assert got["lines"][0]["description"] == "Hosting"


def test_list_is_paginated_and_in_sight(
    seller, other_seller, buyer, api_client, django_assert_num_queries
):
    api = api_client(seller)
    for _n in range(3):
        make(api, buyer)
    api.get("/api/v1/quotes")
    with django_assert_num_queries(3):
        response = api.get("/api/v1/quotes?limit=2")
    body = response.json()
    assert body["count"] == 3 and [q["number"] for q in body["items"]] == ["Q-00003", "Q-00002"]
    assert api_client(other_seller).get("/api/v1/quotes").json()["count"] == 0


def test_out_of_sight_is_a_404_for_reads_and_actions(seller, other_seller, buyer, api_client):
    quote = make(api_client(seller), buyer)
    other = api_client(other_seller)
    assert other.get(f"/api/v1/quotes/{quote['id']}").status_code == 404
    response = other.post(
        f"/api/v1/quotes/{quote['id']}/convert", {"to": "invoice"}, content_type="application/json"
    )
    assert response.status_code == 404
    response = other.post(
        "/api/v1/quotes", {"client_id": buyer.pk}, content_type="application/json"
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "client_id"
    assert Quote.objects.count() == 1


def test_refused_move_is_a_409_and_changes_nothing(seller, buyer, api_client):
    api = api_client(seller)
    quote = make(api, buyer)
    response = api.post(
        f"/api/v1/quotes/{quote['id']}/stage",
        {"stage": "accepted"},
        content_type="application/json",
    )
    assert response.status_code == 409
    assert "cannot become accepted" in response.json()["detail"] + str(response.json()["errors"])
    assert Quote.objects.get().stage == "draft"


def test_lines_stage_approval_and_convert(seller, sales_manager, buyer, api_client):
    api = api_client(seller)
    quote = make(api, buyer)
    qid = quote["id"]
    response = api.post(
        f"/api/v1/quotes/{qid}/lines",
        {"description": "Setup", "unit_price": "100", "discount_percent": "50"},
        content_type="application/json",
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["total_minor"], body["needs_approval"]) == (17000, True)
    # Sending is refused until a manager approves
    sent = api.post(f"/api/v1/quotes/{qid}/send", {}, content_type="application/json")
    assert sent.status_code == 409
    api.post(f"/api/v1/quotes/{qid}/approval/request", {}, content_type="application/json")
    denied = api.post(f"/api/v1/quotes/{qid}/approval/approve", {}, content_type="application/json")
    assert denied.status_code == 403
    manager = api_client(sales_manager)
    approved = manager.post(
        f"/api/v1/quotes/{qid}/approval/approve", {"note": "ok"}, content_type="application/json"
    )
    assert approved.json()["approval"] == "approved"
    assert (
        api.post(f"/api/v1/quotes/{qid}/send", {}, content_type="application/json").json()["stage"]
        == "sent"
    )
    api.post(f"/api/v1/quotes/{qid}/stage", {"stage": "accepted"}, content_type="application/json")
    converted = manager.post(
        f"/api/v1/quotes/{qid}/convert", {"to": "invoice"}, content_type="application/json"
    ).json()
    assert converted["stage"] == "converted" and converted["invoice_id"]
    again = manager.post(
        f"/api/v1/quotes/{qid}/convert", {"to": "invoice"}, content_type="application/json"
    ).json()
    assert again["invoice_id"] == converted["invoice_id"] and Invoice.objects.count() == 1


def test_idempotency_key_makes_one_quote(seller, buyer, api_client):
    api = api_client(seller)
    for _n in range(2):
        response = api.post(
            "/api/v1/quotes",
            {"client_id": buyer.pk, "lines": [LINE]},
            content_type="application/json",
            headers={"Idempotency-Key": "quote-1"},
        )
        assert response.status_code == 201
    assert Quote.objects.count() == 1


def test_bad_line_is_a_422_at_the_field(seller, buyer, api_client):
    api = api_client(seller)
    response = api.post(
        "/api/v1/quotes",
        {"client_id": buyer.pk, "lines": [{"description": "X", "unit_price": "1",
                                            "discount_percent": "150"}]},
        content_type="application/json",
    )  # fmt: skip
    assert response.status_code == 422
    assert Quote.objects.count() == 0


def test_contract_create_patch_and_renew(seller, other_seller, buyer, api_client):
    api = api_client(seller)
    response = api.post(
        "/api/v1/contracts",
        {"client_id": buyer.pk, "title": "Support", "starts_on": "2025-01-01",
         "ends_on": "2025-12-31", "value": "1200.00"},
        content_type="application/json",
    )  # fmt: skip
    assert response.status_code == 201
    contract = response.json()
    assert (contract["value_minor"], contract["status"]) == (120000, "draft")
    cid = contract["id"]
    active = api.patch(
        f"/api/v1/contracts/{cid}", {"status": "active"}, content_type="application/json"
    ).json()
    assert active["status"] == "active"
    renewal = api.post(f"/api/v1/contracts/{cid}/renew", {}, content_type="application/json")
    assert renewal.status_code == 201
    body = renewal.json()
    assert (body["starts_on"], body["ends_on"], body["renewal_of_id"]) == (
        "2026-01-01",
        "2026-12-31",
        cid,
    )
    assert api.get(f"/api/v1/contracts/{cid}").json()["status"] == "renewed"
    assert api_client(other_seller).get(f"/api/v1/contracts/{cid}").status_code == 404
    bad = api.post(
        "/api/v1/contracts",
        {"client_id": buyer.pk, "title": "X", "starts_on": "2025-02-01", "ends_on": "2025-01-01"},
        content_type="application/json",
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "ends_on"
    assert Contract.objects.count() == 2
    assert dt.date(2025, 1, 1)


def test_rewrite_and_remove_lines_and_patch(seller, buyer, api_client):
    api = api_client(seller)
    quote = make(api, buyer)
    qid, lid = quote["id"], quote["lines"][0]["id"]
    rewritten = api.put(
        f"/api/v1/quotes/{qid}/lines/{lid}",
        {"description": "Hosting+", "quantity": "3", "unit_price": "10", "tax_rate": "5.5"},
        content_type="application/json",
    ).json()
    assert rewritten["total_minor"] == 3165 and rewritten["lines"][0]["tax_minor"] == 165
    patched = api.patch(
        f"/api/v1/quotes/{qid}",
        {"title": "Hosting 2026", "valid_until": "2099-01-31", "version": rewritten["version"]},
        content_type="application/json",
    ).json()
    assert (patched["title"], patched["valid_until"]) == ("Hosting 2026", "2099-01-31")
    stale = api.patch(
        f"/api/v1/quotes/{qid}", {"title": "Old", "version": 1}, content_type="application/json"
    )
    assert stale.status_code == 409
    emptied = api.delete(f"/api/v1/quotes/{qid}/lines/{lid}").json()
    assert (emptied["lines"], emptied["total_minor"]) == ([], 0)
    assert api.delete(f"/api/v1/quotes/{qid}/lines/{lid}").status_code == 404
    assert Quote.objects.get().title == "Hosting 2026"
