"""Idempotency-Key on API writes: replay, conflicts, failures, callers and concurrency."""

import datetime as dt
import json
import threading
import time

import pytest
from django.db import connections
from django.test import Client as HttpClient
from django.test import RequestFactory

from clientbase.accounts.models import Role
from clientbase.accounts.roles import ensure_default_roles
from clientbase.accounts.services import token_create
from clientbase.clients import services
from clientbase.clients.models import Client
from clientbase.core import clock, idempotency
from clientbase.core.models import Event, IdempotencyKey

URL = "/api/v1/clients"
ACME = {"name": "Acme", "email": "acme@example.com"}


def _post(http: HttpClient, data, key: str | None = "key-1", path: str = URL):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return http.post(path, json.dumps(data), content_type="application/json", headers=headers)


def _counts() -> tuple[int, int, int]:
    """Clients, client events and remembered keys."""
    return (
        Client.objects.count(),
        Event.objects.filter(type="client.created").count(),
        IdempotencyKey.objects.count(),
    )


def _key_problem(status: int, title: str, detail: str) -> dict:
    return {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "errors": [{"field": "Idempotency-Key", "message": detail}],
    }


REUSED = _key_problem(
    422,
    "Idempotency-Key reused",
    "This key was already used for a different request; use a new key.",
)
IN_PROGRESS = _key_problem(
    409,
    "Request in progress",
    "The first request with this key is still running; retry in a moment.",
)


@pytest.fixture
def seller(make_user):
    return make_user("ann")


@pytest.fixture
def http(api_client, seller):
    return api_client(seller)


def _running(http: HttpClient, data, key: str, started: dt.datetime | None = None):
    """Remember a key as taken by a request like this one that has not finished."""
    request = RequestFactory().post(
        URL,
        json.dumps(data),
        content_type="application/json",
        headers={"Authorization": http.defaults["HTTP_AUTHORIZATION"]},
    )
    return IdempotencyKey.objects.create(
        principal=idempotency._principal(request),
        key=key,
        method="POST",
        path=URL,
        request_hash=idempotency._request_hash(request),
        state=IdempotencyKey.State.RUNNING,
        created_at=started or clock.now(),
    )


def test_a_retry_with_the_same_key_and_body_gets_the_stored_response(http):
    # given a client created with a key
    first = _post(http, ACME)
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first
    # when the same request is sent again with the same key
    again = _post(http, ACME)
    # then the first response comes back, marked as a replay
    assert again.status_code == 201
    assert again.content == first.content
    assert again["Content-Type"] == first["Content-Type"]
    assert again["Idempotent-Replayed"] == "true"
    # and nothing new was created
    assert _counts() == (1, 1, 1)
    stored = IdempotencyKey.objects.get()
    assert (stored.state, stored.response_status, stored.key) == ("done", 201, "key-1")


def test_the_same_key_with_another_body_is_422_and_creates_nothing(http):
    # given a key used for one client
    _post(http, ACME)
    # when it is sent with another body
    response = _post(http, {"name": "Other", "email": "other@example.com"})
    # then it is refused at the header, and nothing was created
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert response.json() == REUSED
    assert _counts() == (1, 1, 1)
    assert list(Client.objects.values_list("name", flat=True)) == ["Acme"]


def test_the_same_key_on_another_address_is_422(http):
    _post(http, ACME)
    response = _post(http, ACME, path=f"{URL}?source=import")
    assert (response.status_code, response.json()) == (422, REUSED)
    assert _counts() == (1, 1, 1)


def test_a_key_still_running_is_409_and_creates_nothing(http):
    # given the same request under way with this key
    _running(http, ACME, "key-1")
    # when it is sent again
    response = _post(http, ACME)
    # then the caller is told to retry later, and nothing is created
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    assert response.json() == IN_PROGRESS
    assert _counts() == (0, 0, 1)
    assert IdempotencyKey.objects.get().state == "running"


def test_a_running_key_with_another_body_is_422_not_409(http):
    _running(http, ACME, "key-1")
    response = _post(http, {"name": "Other", "email": "other@example.com"})
    assert (response.status_code, response.json()) == (422, REUSED)
    assert _counts() == (0, 0, 1)


def test_a_key_whose_request_died_long_ago_is_taken_over(http):
    # given a request that took the key six minutes ago and never finished
    _running(http, ACME, "key-1", started=clock.now() - dt.timedelta(minutes=6))
    # when the client retries
    response = _post(http, ACME)
    # then the request runs
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert _counts() == (1, 1, 1)
    assert IdempotencyKey.objects.get().state == "done"


def test_a_server_error_forgets_the_key_so_a_retry_runs(http, monkeypatch):
    # given the service fails once
    real = services.client_create

    def failing(**fields):
        raise RuntimeError("disk full")

    monkeypatch.setattr(services, "client_create", failing)
    failed = _post(http, ACME)
    # then the failure is a 500 and the key is let go
    assert failed.status_code == 500
    assert failed["Content-Type"] == "application/problem+json"
    assert _counts() == (0, 0, 0)
    # when the client retries with the same key once the service is back
    monkeypatch.setattr(services, "client_create", real)
    retried = _post(http, ACME)
    # then the request really runs
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried
    assert _counts() == (1, 1, 1)


def test_a_refusal_is_stored_and_replayed_too(http, seller):
    # given a request the service refuses (the email is taken)
    services.client_create(by=seller, name="Taken", email="acme@example.com")
    first = _post(http, ACME)
    assert first.status_code == 422
    # when it is retried with the same key
    again = _post(http, ACME)
    # then the same refusal comes back, as a replay
    assert (again.status_code, again.content) == (422, first.content)
    assert again["Idempotent-Replayed"] == "true"
    assert _counts() == (1, 1, 1)


def test_keys_belong_to_their_caller(api_client, make_user):
    # given two users who happen to pick the same key
    ann, bob = api_client(make_user("ann")), api_client(make_user("bob"))
    # when each creates a client with it
    first = _post(ann, ACME, key="same")
    second = _post(bob, {"name": "Bolt", "email": "bolt@example.com"}, key="same")
    # then both run: neither is a replay or a conflict
    assert (first.status_code, second.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in second
    assert sorted(Client.objects.values_list("name", flat=True)) == ["Acme", "Bolt"]
    assert _counts() == (2, 2, 2)


@pytest.mark.parametrize("key", ["", "k" * 256], ids=["empty", "too-long"])
def test_a_bad_key_is_a_400_problem_and_nothing_runs(http, key):
    response = _post(http, ACME, key=key)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json() == _key_problem(
        400, "Bad Idempotency-Key", "Use a key of 1 to 255 characters."
    )
    assert _counts() == (0, 0, 0)


def test_a_key_of_255_characters_is_fine(http):
    assert _post(http, ACME, key="k" * 255).status_code == 201
    assert IdempotencyKey.objects.get().key == "k" * 255


@pytest.mark.parametrize("who", ["nobody", "revoked-ish"])
def test_a_request_turned_away_at_the_door_keeps_no_key(db, who):
    # given a caller with no valid token
    headers = {} if who == "nobody" else {"Authorization": "Bearer cb_unknown"}
    response = _post(HttpClient(headers=headers, enforce_csrf_checks=True), ACME)
    # then it is a 401 and the key stays free
    assert response.status_code == 401
    assert _counts() == (0, 0, 0)


def test_a_forbidden_request_keeps_no_key_so_it_can_run_once_allowed(api_client, make_user):
    http = api_client(make_user("sid", role="support", unit="company"))
    assert _post(http, ACME).status_code == 403
    assert _counts() == (0, 0, 0)


def test_without_a_key_every_post_runs(http):
    assert _post(http, ACME, key=None).status_code == 201
    assert _post(http, ACME, key=None).status_code == 422  # the email is taken now
    assert _counts() == (1, 1, 0)


def test_other_methods_ignore_the_key(http, seller):
    target = services.client_create(by=seller, name="Acme", email="acme@example.com")
    response = http.patch(
        f"{URL}/{target.pk}",
        json.dumps({"name": "Acme SA"}),
        content_type="application/json",
        headers={"Idempotency-Key": "key-1"},
    )
    assert response.status_code == 200
    assert IdempotencyKey.objects.count() == 0


# --- concurrency, on PostgreSQL where requests truly run side by side ----------------------


@pytest.fixture
def roles_again(transactional_db):
    """The default roles, which an earlier transactional test's flush may have emptied."""
    ensure_default_roles(Role)


def _in_thread(target, results: list, *args):
    def run():
        try:
            results.append(target(*args))
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_posts_with_one_key_create_one_client(roles_again, make_user, monkeypatch):
    # given one caller whose two requests with the same key arrive at once
    ann = make_user("ann")
    secret = token_create(user=ann, name="tests", by=None).secret
    real = services.client_create
    both_in = threading.Barrier(2, timeout=10)

    # the service is slow, so the second request arrives while the first runs
    def slow(**fields):
        time.sleep(0.3)
        return real(**fields)

    monkeypatch.setattr(services, "client_create", slow)

    def send():
        http = HttpClient(headers={"Authorization": f"Bearer {secret}"})
        both_in.wait()
        response = _post(http, ACME)
        return response.status_code

    results: list[int] = []
    threads = [_in_thread(send, results) for _ in range(2)]
    for thread in threads:
        thread.join(timeout=20)
    # then exactly one client was created, and the other request was told to wait
    assert sorted(results) == [201, 409]
    assert _counts() == (1, 1, 1)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_request_sent_while_the_first_runs_is_409_then_replays(
    roles_again, make_user, monkeypatch
):
    # given a first request held inside the service
    ann = make_user("ann")
    secret = token_create(user=ann, name="tests", by=None).secret
    real = services.client_create
    entered, release = threading.Event(), threading.Event()

    def held(**fields):
        entered.set()
        release.wait(10)
        return real(**fields)

    monkeypatch.setattr(services, "client_create", held)
    http = HttpClient(headers={"Authorization": f"Bearer {secret}"})
    results: list = []
    first = _in_thread(lambda: _post(http, ACME), results)
    assert entered.wait(10)
    # when the same request comes again meanwhile
    second = _post(HttpClient(headers={"Authorization": f"Bearer {secret}"}), ACME)
    # then it is a 409 and nothing more is created
    assert (second.status_code, second.json()) == (409, IN_PROGRESS)
    release.set()
    first.join(timeout=20)
    assert results[0].status_code == 201
    # and once the first is done, a retry gets its response
    third = _post(HttpClient(headers={"Authorization": f"Bearer {secret}"}), ACME)
    assert (third.status_code, third.content) == (201, results[0].content)
    assert third["Idempotent-Replayed"] == "true"
    assert _counts() == (1, 1, 1)
