"""Message templates and sending over the API: CRUD, render, send, problems, scope (MKT-1)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core import mail

from clientbase.marketing import services, sms
from clientbase.marketing.models import MessageTemplate
from clientbase.sales.models import Activity

pytestmark = pytest.mark.django_db

API = "/api/v1"
NOT_FOUND = {
    "type": "about:blank",
    "title": "Not found",
    "status": 404,
    "detail": "No such record, or not one you may see.",
    "errors": [],
}


@pytest.fixture(autouse=True)
def june(time_machine):
    """Today is 2 June 2025."""
    time_machine.move_to(dt.datetime(2025, 6, 2, 9, 0, tzinfo=dt.UTC), tick=False)
    sms.outbox.clear()


@pytest.fixture
def welcome(admin_user):
    """An email template with client tags."""
    return services.template_save(
        by=admin_user,
        name="Welcome",
        channel="email",
        language="fr",
        subject="Bienvenue {{ client.name }}",
        body="Bonjour {{ client.name }}, {{ user.first_name }}",
    )


def post(http, path: str, data: dict, **headers):
    return http.post(API + path, json.dumps(data), content_type="application/json", headers=headers)


def ok(response, status: int = 200):
    assert response.status_code == status, response.content
    return response.json() if response.content else None


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    return response.json()


def field_errors(response) -> list[tuple[str, str]]:
    return [(e["field"], e["message"]) for e in problem(response, 422)["errors"]]


def test_an_administrator_creates_changes_and_deletes_a_template(api_client, admin_user):
    http = api_client(admin_user)
    created = ok(
        post(
            http,
            "/templates",
            {"name": "Reminder", "channel": "sms", "body": "Hi {{ client.name }}"},
        ),
        201,
    )
    assert created == {
        "id": created["id"],
        "name": "Reminder",
        "channel": "sms",
        "language": "",
        "subject": "",
        "body": "Hi {{ client.name }}",
        "active": True,
        "updated_at": "2025-06-02T09:00:00+00:00",
    }
    path = f"{API}/templates/{created['id']}"
    changed = ok(http.patch(path, json.dumps({"active": False}), content_type="application/json"))
    assert (changed["active"], changed["body"], changed["name"]) == (
        False,
        "Hi {{ client.name }}",
        "Reminder",
    )
    assert ok(http.delete(path), 204) is None
    assert MessageTemplate.objects.count() == 0


def test_an_unknown_tag_is_a_problem_at_the_body_and_nothing_is_saved(
    api_client, admin_user, welcome
):
    http = api_client(admin_user)
    response = post(
        http,
        "/templates",
        {"name": "X", "channel": "email", "subject": "S", "body": "{{ client.fist_name }}"},
    )
    assert field_errors(response) == [("body", "Unknown tag: client.fist_name")]
    response = http.patch(
        f"{API}/templates/{welcome.pk}",
        json.dumps({"subject": "{{ settings }}"}),
        content_type="application/json",
    )
    assert field_errors(response) == [("subject", "Unknown tag: settings")]
    welcome.refresh_from_db()
    assert welcome.subject == "Bienvenue {{ client.name }}"
    assert MessageTemplate.objects.count() == 1


def test_a_seller_lists_templates_but_cannot_write_them(
    api_client, seller, welcome, django_assert_num_queries
):
    http = api_client(seller)
    with django_assert_num_queries(4):
        listed = ok(http.get(f"{API}/templates?channel=email"))
    assert listed["count"] == 1 and listed["items"][0]["name"] == "Welcome"
    assert ok(http.get(f"{API}/templates?channel=sms"))["count"] == 0
    assert (
        problem(post(http, "/templates", {"name": "X", "channel": "sms", "body": "x"}), 403)[
            "status"
        ]
        == 403
    )
    assert problem(http.delete(f"{API}/templates/{welcome.pk}"), 403)["status"] == 403
    assert MessageTemplate.objects.count() == 1


def test_render_fills_the_template_for_a_client_in_sight(api_client, seller, buyer, welcome):
    http = api_client(seller)
    rendered = ok(post(http, f"/templates/{welcome.pk}/render", {"client_id": buyer.pk}))
    assert rendered == {
        "subject": "Bienvenue Atelier Lumière",
        "body": "Bonjour Atelier Lumière, Marie",
        "to": "contact@atelier-lumiere.fr",
    }


def test_render_for_a_client_out_of_sight_or_an_unknown_template_is_a_404(
    api_client, other_seller, buyer, welcome
):
    http = api_client(other_seller)
    assert (
        problem(post(http, f"/templates/{welcome.pk}/render", {"client_id": buyer.pk}), 404)
        == NOT_FOUND
    )
    assert problem(post(http, "/templates/999999/render", {}), 404) == NOT_FOUND


def test_a_message_is_sent_once_with_an_idempotency_key_and_logged(
    api_client, seller, buyer, welcome, django_capture_on_commit_callbacks
):
    http = api_client(seller)
    payload = {
        "channel": "email",
        "to": "contact@atelier-lumiere.fr",
        "subject": "{{ client.name }}: devis",
        "body": "Voici le devis.",
        "client_id": buyer.pk,
        "template_id": welcome.pk,
    }
    with django_capture_on_commit_callbacks(execute=True):
        first = ok(post(http, "/messages", payload, **{"Idempotency-Key": "k1"}), 201)
        again = ok(post(http, "/messages", payload, **{"Idempotency-Key": "k1"}), 201)
    assert first == again
    activity = Activity.objects.get()
    assert first == {
        "channel": "email",
        "to": "contact@atelier-lumiere.fr",
        "subject": "Atelier Lumière: devis",
        "body": "Voici le devis.",
        "activity_id": activity.pk,
        "sms_id": None,
    }
    assert len(mail.outbox) == 1


def test_a_bad_address_is_a_problem_at_to_and_nothing_is_sent(
    api_client, seller, buyer, django_capture_on_commit_callbacks
):
    http = api_client(seller)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(
            http, "/messages", {"channel": "sms", "to": "12", "body": "Hi", "client_id": buyer.pk}
        )
    assert field_errors(response) == [
        ("to", "This phone number is too short: check for a missing digit.")
    ]
    assert sms.outbox == [] and Activity.objects.count() == 0


def test_a_template_of_the_other_channel_is_refused_at_template_id(
    api_client, seller, buyer, welcome
):
    http = api_client(seller)
    response = post(
        http,
        "/messages",
        {
            "channel": "sms",
            "to": "+33612345678",
            "body": "Hi",
            "client_id": buyer.pk,
            "template_id": welcome.pk,
        },
    )
    assert field_errors(response) == [("template_id", "This template is for another channel.")]


def test_sending_about_a_client_out_of_sight_is_a_404(api_client, other_seller, buyer):
    http = api_client(other_seller)
    response = post(
        http,
        "/messages",
        {"channel": "email", "to": "a@b.fr", "subject": "S", "body": "B", "client_id": buyer.pk},
    )
    assert problem(response, 404) == NOT_FOUND
    assert Activity.objects.count() == 0 and mail.outbox == []
