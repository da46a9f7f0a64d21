"""The activities API: list with filters, create, get, patch, complete, delete; 404 out of sight."""

import datetime as dt

import pytest
import time_machine

from clientbase.sales.activity_services import activity_create
from clientbase.sales.models import Activity

NOW = dt.datetime(2025, 3, 12, 10, 0, tzinfo=dt.UTC)
URL = "/api/v1/activities"


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def planned(seller, buyer):
    return activity_create(
        by=seller,
        kind="call",
        subject="Call back",
        due_at=NOW + dt.timedelta(hours=3),
        client=buyer,
    )


def test_create_logs_a_done_call_on_a_client(seller, buyer, api_client):
    response = api_client(seller).post(
        URL,
        {
            "kind": "call",
            "subject": "Intro",
            "done": True,
            "outcome": "interested",
            "client_id": buyer.pk,
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "call" and body["done"] is True and body["outcome"] == "interested"
    assert body["client_id"] == buyer.pk and body["owner_id"] == seller.pk
    assert body["due_at"] == body["done_at"] == "2025-03-12T10:00:00Z"
    assert Activity.objects.count() == 1


def test_create_with_an_idempotency_key_runs_once(seller, buyer, api_client):
    api = api_client(seller)
    payload = {"kind": "todo", "subject": "Send prices", "client_id": buyer.pk}
    first = api.post(URL, payload, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = api.post(URL, payload, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert Activity.objects.count() == 1


def test_create_refuses_a_client_out_of_sight_at_the_field(other_seller, buyer, api_client):
    response = api_client(other_seller).post(
        URL,
        {"kind": "call", "subject": "Intro", "client_id": buyer.pk},
        content_type="application/json",
    )
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == ["client_id"]
    assert Activity.objects.count() == 0


def test_create_refuses_a_reminder_after_the_activity(seller, api_client):
    response = api_client(seller).post(
        URL,
        {
            "kind": "meeting",
            "subject": "Demo",
            "due_at": "2025-03-13T10:00:00Z",
            "remind_at": "2025-03-13T11:00:00Z",
        },
        content_type="application/json",
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["remind_at"]
    assert Activity.objects.count() == 0


def test_create_refuses_an_unknown_kind(seller, api_client):
    response = api_client(seller).post(
        URL, {"kind": "party", "subject": "Fun"}, content_type="application/json"
    )
    assert response.status_code == 422
    assert Activity.objects.count() == 0


def test_list_filters_and_hides_what_is_out_of_sight(
    seller, other_seller, buyer, planned, api_client, django_assert_num_queries
):
    activity_create(by=seller, kind="email", subject="Brochure", done=True, client=buyer)
    activity_create(by=other_seller, kind="call", subject="Not yours")
    api = api_client(seller)
    api.get(URL)  # warm the token
    with django_assert_num_queries(3):
        everything = api.get(URL)
    assert everything.json()["count"] == 2
    calls = api.get(URL, {"kind": "call", "done": "false", "client": buyer.pk})
    assert [a["subject"] for a in calls.json()["items"]] == ["Call back"]
    window = api.get(URL, {"from": "2025-03-12T12:00:00Z", "to": "2025-03-12T14:00:00Z"})
    assert [a["subject"] for a in window.json()["items"]] == ["Call back"]
    assert api_client(other_seller).get(URL).json()["count"] == 1


def test_get_patch_complete_and_delete(seller, buyer, planned, api_client):
    api = api_client(seller)
    url = f"{URL}/{planned.pk}"
    assert api.get(url).json()["subject"] == "Call back"
    patched = api.patch(
        url,
        {"due_at": "2025-03-13T09:00:00Z", "remind_at": "2025-03-13T08:30:00Z"},
        content_type="application/json",
    )
    assert patched.status_code == 200
    assert patched.json()["due_at"] == "2025-03-13T09:00:00Z"
    assert patched.json()["remind_at"] == "2025-03-13T08:30:00Z"
    cleared = api.patch(url, {"remind_at": None}, content_type="application/json")
    assert cleared.json()["remind_at"] is None and cleared.json()["subject"] == "Call back"
    done = api.post(f"{url}/complete", {"outcome": "no_answer"}, content_type="application/json")
    assert done.status_code == 200 and done.json()["done"] is True
    assert done.json()["outcome"] == "no_answer"
    refused = api.delete(url)
    assert refused.status_code == 422
    assert Activity.objects.filter(pk=planned.pk).exists()


def test_delete_an_undone_activity(seller, planned, api_client):
    response = api_client(seller).delete(f"{URL}/{planned.pk}")
    assert response.status_code == 204
    assert not Activity.objects.exists()


def test_everything_on_an_activity_out_of_sight_is_404(other_seller, planned, api_client):
    api = api_client(other_seller)
    url = f"{URL}/{planned.pk}"
    assert api.get(url).status_code == 404
    assert api.patch(url, {"subject": "x"}, content_type="application/json").status_code == 404
    assert api.post(f"{url}/complete", {}, content_type="application/json").status_code == 404
    assert api.delete(url).status_code == 404
    planned.refresh_from_db()
    assert planned.subject == "Call back" and planned.done_at is None


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("2025-03-13T10:00:00+14:30", dt.datetime(2025, 3, 12, 19, 30, tzinfo=dt.UTC)),
        ("2025-03-13T10:00:00-23:24", dt.datetime(2025, 3, 14, 9, 24, tzinfo=dt.UTC)),
        ("2025-03-13T10:00:00", dt.datetime(2025, 3, 13, 10, 0, tzinfo=dt.UTC)),
    ],
)
def test_create_keeps_any_offset_as_the_same_moment_in_utc(seller, api_client, sent, stored):
    # given a time with an offset PostgreSQL cannot hold (-23:24), or none (the company's zone)
    response = api_client(seller).post(
        URL, {"kind": "call", "subject": "Call", "due_at": sent}, content_type="application/json"
    )
    # then the activity is due at the same moment, kept in UTC
    assert response.status_code == 201
    assert Activity.objects.get().due_at == stored


def test_create_refuses_a_time_out_of_range(seller, api_client):
    response = api_client(seller).post(
        URL,
        {"kind": "call", "subject": "Call", "due_at": "0001-01-01T00:30:00+01:00"},
        content_type="application/json",
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "due_at", "message": "The time is out of range"}]
    assert Activity.objects.count() == 0
