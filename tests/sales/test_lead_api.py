"""The lead API: list, create, get, patch, contacts, convert; problems and idempotency."""

from clientbase.clients.models import Client
from clientbase.sales.lead_services import lead_create
from clientbase.sales.models import Lead

NEW = {
    "name": "Jeanne Martin",
    "company": "Boulangerie Martin",
    "email": "jeanne@boulangerie-martin.fr",
    "phone": "+33199001188",
    "country": "FR",
    "currency": "eur",
    "potential_minor": 50000,
    "source": "api",
}


def test_create_get_and_list(api_client, seller, other_seller, django_assert_num_queries):
    api = api_client(seller)
    created = api.post("/api/v1/leads", NEW, content_type="application/json")
    assert created.status_code == 201
    body = created.json()
    assert (body["number"], body["status"], body["owner_id"], body["currency"]) == (
        "L000001",
        "new",
        seller.pk,
        "EUR",
    )
    assert api.get(f"/api/v1/leads/{body['id']}").json()["contacts"] == []
    for i in range(5):
        lead_create(by=seller, name=f"More {i}", currency="EUR")
    lead_create(by=other_seller, name="Theirs", currency="EUR")
    with django_assert_num_queries(3):
        listed = api.get("/api/v1/leads", {"limit": 3})
    assert listed.json()["count"] == 6
    assert [item["name"] for item in listed.json()["items"]] == ["More 4", "More 3", "More 2"]
    assert api.get("/api/v1/leads", {"source": "api"}).json()["count"] == 1


def test_create_refuses_bad_input_at_the_field(api_client, seller):
    api = api_client(seller)
    response = api.post(
        "/api/v1/leads", {**NEW, "phone": "abc", "email": "x"}, content_type="application/json"
    )
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert sorted(e["field"] for e in response.json()["errors"]) == ["email", "phone"]
    assert Lead.objects.count() == 0


def test_idempotency_key_creates_once(api_client, seller):
    api = api_client(seller)
    first = api.post(
        "/api/v1/leads", NEW, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    again = api.post(
        "/api/v1/leads", NEW, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true"
    assert Lead.objects.count() == 1


def test_patch_with_version_and_conflict(api_client, seller):
    lead = lead_create(by=seller, name="Jeanne", currency="EUR")
    api = api_client(seller)
    ok = api.patch(
        f"/api/v1/leads/{lead.pk}", {"city": "Lyon", "version": 1}, content_type="application/json"
    )
    assert ok.status_code == 200 and ok.json()["city"] == "Lyon" and ok.json()["version"] == 2
    stale = api.patch(
        f"/api/v1/leads/{lead.pk}", {"city": "Nice", "version": 1}, content_type="application/json"
    )
    assert stale.status_code == 409
    lead.refresh_from_db()
    assert lead.city == "Lyon"


def test_out_of_sight_is_a_404(api_client, seller, other_seller):
    lead = lead_create(by=other_seller, name="Theirs", currency="EUR", email="t@example.org")
    api = api_client(seller)
    assert api.get(f"/api/v1/leads/{lead.pk}").status_code == 404
    assert (
        api.patch(
            f"/api/v1/leads/{lead.pk}", {"city": "X"}, content_type="application/json"
        ).status_code
        == 404
    )
    assert (
        api.post(
            f"/api/v1/leads/{lead.pk}/convert", {}, content_type="application/json"
        ).status_code
        == 404
    )
    assert Client.objects.count() == 0


def test_contacts_and_convert_twice(api_client, seller):
    lead = lead_create(by=seller, name="Jeanne", email="j@example.org", currency="EUR")
    api = api_client(seller)
    added = api.post(
        f"/api/v1/leads/{lead.pk}/contacts",
        {"name": "Paul", "email": "paul@example.org"},
        content_type="application/json",
    )
    assert added.status_code == 201
    assert [c["name"] for c in api.get(f"/api/v1/leads/{lead.pk}/contacts").json()] == ["Paul"]
    first = api.post(
        f"/api/v1/leads/{lead.pk}/convert",
        {"deal_name": "Books", "deal_value_minor": 9900},
        content_type="application/json",
    )
    again = api.post(f"/api/v1/leads/{lead.pk}/convert", {}, content_type="application/json")
    assert first.status_code == 200 and first.json()["created"] is True
    assert again.json() == {**first.json(), "created": False}
    assert Client.objects.count() == 1
    removed = api.delete(f"/api/v1/leads/{lead.pk}/contacts/{added.json()['id']}")
    assert removed.status_code == 204


def test_convert_clash_is_a_409_naming_the_client(api_client, seller, buyer):
    lead = lead_create(by=seller, name="Atelier", currency="EUR")
    Lead.objects.filter(pk=lead.pk).update(email="contact@atelier-lumiere.fr")
    api = api_client(seller)
    clash = api.post(f"/api/v1/leads/{lead.pk}/convert", {}, content_type="application/json")
    assert clash.status_code == 409
    assert f"id {buyer.pk}" in clash.json()["detail"]
    attached = api.post(
        f"/api/v1/leads/{lead.pk}/convert",
        {"existing_client_id": buyer.pk, "create_deal": False},
        content_type="application/json",
    )
    assert attached.json()["client_id"] == buyer.pk and attached.json()["deal_id"] is None
