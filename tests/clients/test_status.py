"""Account status (CUS-12) now, backdated or deferred, and deferred actions (CUS-13)."""

import datetime as dt

import pytest
from django.core.management import call_command

from clientbase.clients import services
from clientbase.clients.models import Client, DeferredAction, Note
from clientbase.clients.services import client_create, client_set_status
from clientbase.core.errors import ServiceError
from clientbase.core.models import AuditEntry, CronRun, Event

TODAY = "2026-06-10 09:00:00+00:00"


@pytest.fixture
def alpha(make_user, time_machine):
    """A client on 10 June 2026, and a billing clerk who may change statuses."""
    time_machine.move_to(TODAY, tick=False)
    ann = make_user("ann", role="sales", unit="team_a")
    return client_create(by=ann, name="Alpha SARL", email="alpha@example.com")


@pytest.fixture
def clerk(make_user):
    return make_user("bill", role="billing", unit="company")


@pytest.fixture
def hook_calls(monkeypatch):
    """Record what the status hooks are told (billing will suspend services there)."""
    calls = []
    monkeypatch.setattr(
        services,
        "STATUS_HOOKS",
        [lambda client, old, new, by: calls.append((client.number, old, new, by.username))],
    )
    return calls


def test_inactivate_now_runs_hooks_and_records_history(alpha, clerk, hook_calls):
    client = client_set_status(
        client=alpha, status="inactive", reason="Asked for a pause", by=clerk, note="Until autumn"
    )
    assert (client.status, client.status_since) == ("inactive", dt.date(2026, 6, 10))
    assert hook_calls == [(alpha.number, "active", "inactive", "bill")]
    event = Event.objects.get(type="client.status_changed")
    assert event.message == "Status changed from Active to Inactive: Asked for a pause"
    audit = AuditEntry.objects.filter(object_id=str(alpha.pk), action="update").get()
    assert audit.changes["status"] == {"before": "active", "after": "inactive"}
    assert Note.objects.get().body == "Until autumn"


def test_backdated_change_counts_from_the_past_day(alpha, clerk):
    client_set_status(
        client=alpha,
        status="inactive",
        reason="Paper letter",
        by=clerk,
        effective=dt.date(2026, 6, 1),
    )
    alpha.refresh_from_db()
    assert (alpha.status, alpha.status_since) == ("inactive", dt.date(2026, 6, 1))
    assert Event.objects.get(type="client.status_changed").details["effective"] == "2026-06-01"


def test_a_later_day_schedules_a_deferred_action(alpha, clerk, hook_calls):
    action = client_set_status(
        client=alpha,
        status="closed",
        reason="Contract ends",
        by=clerk,
        effective=dt.date(2026, 7, 1),
    )
    assert isinstance(action, DeferredAction)
    assert (action.state, action.due_on, action.params) == (
        "pending",
        dt.date(2026, 7, 1),
        {"status": "closed", "reason": "Contract ends", "note": ""},
    )
    assert Client.objects.get(pk=alpha.pk).status == "active"
    assert hook_calls == []
    assert Event.objects.get(type="client.status_scheduled").message == (
        "Status change to Closed scheduled for 2026-07-01: Contract ends"
    )


@pytest.mark.parametrize(
    "status,reason,expected",
    [
        ("active", "x", {"status": ["The account is already Active."]}),
        ("inactive", "  ", {"reason": ["Give a reason for the change."]}),
        ("frozen", "x", {"status": ["Choose active, inactive or closed."]}),
    ],
)
def test_refused_changes_change_nothing(alpha, clerk, status, reason, expected):
    events = Event.objects.count()
    with pytest.raises(ServiceError) as refused:
        client_set_status(client=alpha, status=status, reason=reason, by=clerk)
    assert refused.value.message_dict == expected
    assert Client.objects.get(pk=alpha.pk).status == "active"
    assert Event.objects.count() == events


def test_a_closed_account_cannot_be_reopened(alpha, clerk):
    client_set_status(client=alpha, status="closed", reason="Left", by=clerk)
    with pytest.raises(ServiceError) as refused:
        client_set_status(client=alpha, status="active", reason="Back", by=clerk)
    assert refused.value.message_dict == {"status": ["A closed account cannot be reopened."]}


def test_cron_runs_due_actions_once(alpha, clerk, time_machine):
    client_set_status(
        client=alpha, status="inactive", reason="Pause", by=clerk, effective=dt.date(2026, 6, 12)
    )
    time_machine.move_to("2026-06-11 09:00:00+00:00", tick=False)
    call_command("cron", "--only", "deferred_actions")
    assert Client.objects.get(pk=alpha.pk).status == "active"
    time_machine.move_to("2026-06-12 06:00:00+00:00", tick=False)
    call_command("cron", "--only", "deferred_actions")
    call_command("cron", "--only", "deferred_actions")
    action = DeferredAction.objects.get()
    assert (action.state, action.result) == ("done", "")
    alpha.refresh_from_db()
    assert (alpha.status, alpha.status_since) == ("inactive", dt.date(2026, 6, 12))
    assert Event.objects.filter(type="client.status_changed").count() == 1
    assert Event.objects.get(type="client.status_changed").actor is None
    results = list(
        CronRun.objects.filter(job="deferred_actions")
        .order_by("id")
        .values_list("result", flat=True)
    )
    assert results == [
        "0 deferred actions done, 0 failed",
        "1 deferred action done, 0 failed",
        "0 deferred actions done, 0 failed",
    ]


def test_an_action_that_no_longer_applies_is_an_error(alpha, clerk):
    action = client_set_status(
        client=alpha, status="inactive", reason="Pause", by=clerk, effective=dt.date(2026, 7, 1)
    )
    client_set_status(client=alpha, status="closed", reason="Left", by=clerk)
    action = services.deferred_action_execute(action=action, by=clerk)
    assert (action.state, action.result) == ("error", "A closed account cannot be reopened.")
    assert Client.objects.get(pk=alpha.pk).status == "closed"


def test_pending_actions_can_be_edited_and_deleted_done_ones_not(alpha, clerk):
    action = client_set_status(
        client=alpha, status="inactive", reason="Pause", by=clerk, effective=dt.date(2026, 7, 1)
    )
    action = services.deferred_action_update(
        action=action,
        due_on=dt.date(2026, 8, 1),
        status="closed",
        reason="Moving",
        note="",
        by=clerk,
    )
    assert (action.due_on, action.params["status"]) == (dt.date(2026, 8, 1), "closed")
    with pytest.raises(ServiceError) as refused:
        services.deferred_action_update(
            action=action,
            due_on=dt.date(2026, 6, 1),
            status="closed",
            reason="x",
            note="",
            by=clerk,
        )
    assert refused.value.message_dict == {
        "due_on": ["Choose a day after today, or execute the action now."]
    }
    done = services.deferred_action_execute(action=action, by=clerk)
    assert done.state == "done"
    with pytest.raises(ServiceError):
        services.deferred_action_update(
            action=done, due_on=dt.date(2026, 9, 1), status="closed", reason="x", note="", by=clerk
        )
    with pytest.raises(ServiceError) as refused:
        services.deferred_action_delete(action=done, by=clerk)
    assert refused.value.messages == ["A done action stays in the history."]
    assert DeferredAction.objects.filter(pk=done.pk).exists()


def test_status_from_the_profile(signed_in, alpha, clerk):
    client = signed_in(clerk)
    response = client.post(
        f"/clients/{alpha.pk}/status/",
        {"status": "inactive", "reason": "Pause", "effective": "2026-07-01", "note": ""},
    )
    assert response.status_code == 302
    action = DeferredAction.objects.get()
    page = client.get(f"/clients/{alpha.pk}/").content.decode()
    assert "Status change scheduled for 2026-07-01." in page
    assert 'id="deferred-actions"' in page and "Pause" in page
    assert client.post(f"/clients/{alpha.pk}/deferred/{action.pk}/execute/").status_code == 302
    assert Client.objects.get(pk=alpha.pk).status == "inactive"


def test_status_needs_permission_and_sight(signed_in, make_user, alpha):
    seller = signed_in(alpha.owner)
    response = seller.post(f"/clients/{alpha.pk}/status/", {"status": "closed", "reason": "x"})
    assert response.status_code == 403
    bob_clerk = make_user("mgr", role="manager", unit="team_b")
    from django.test import Client as HttpClient

    other = HttpClient()
    other.force_login(bob_clerk)
    response = other.post(f"/clients/{alpha.pk}/status/", {"status": "closed", "reason": "x"})
    assert response.status_code == 404
    assert Client.objects.get(pk=alpha.pk).status == "active"


def test_status_and_deferred_actions_over_the_api(api_client, alpha, clerk):
    http = api_client(clerk)
    response = http.post(
        f"/api/v1/clients/{alpha.pk}/status",
        {"status": "inactive", "reason": "Pause", "effective_date": "2026-07-01"},
        content_type="application/json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["client"]["status"] == "active"
    action_id = body["deferred_action"]["id"]
    assert body["deferred_action"]["state"] == "pending"
    assert body["deferred_action"]["status"] == "inactive"
    listing = http.get(f"/api/v1/clients/{alpha.pk}/deferred-actions").json()
    assert [(a["id"], a["due_on"], a["reason"]) for a in listing] == [
        (action_id, "2026-07-01", "Pause")
    ]
    patched = http.patch(
        f"/api/v1/clients/{alpha.pk}/deferred-actions/{action_id}",
        {"due_on": "2026-07-15", "status": "closed", "reason": "Leaving"},
        content_type="application/json",
    )
    assert patched.status_code == 200
    assert (patched.json()["due_on"], patched.json()["status"]) == ("2026-07-15", "closed")
    executed = http.post(f"/api/v1/clients/{alpha.pk}/deferred-actions/{action_id}/execute")
    assert executed.json()["state"] == "done"
    assert Client.objects.get(pk=alpha.pk).status == "closed"
    refused = http.post(
        f"/api/v1/clients/{alpha.pk}/status",
        {"status": "active", "reason": "Back"},
        content_type="application/json",
    )
    assert refused.status_code == 422
    assert refused.json()["errors"] == [
        {"field": "status", "message": "A closed account cannot be reopened."}
    ]
    second = client_set_status(
        client=Client.objects.create(
            number="X1",
            name="Beta",
            email="beta@example.com",
            currency="EUR",
            owner=alpha.owner,
            org_unit=alpha.org_unit,
        ),
        status="inactive",
        reason="x",
        by=clerk,
        effective=dt.date(2026, 8, 1),
    )
    deleted = http.delete(f"/api/v1/clients/{second.client_id}/deferred-actions/{second.pk}")
    assert deleted.status_code == 204
    assert not DeferredAction.objects.filter(pk=second.pk).exists()


def test_an_edit_on_an_outdated_copy_is_refused(signed_in, alpha, clerk):
    from clientbase.clients.services import client_update

    # given two clerks who opened the same client (version 1)
    assert alpha.version == 1
    client_update(client=alpha, by=clerk, expected_version=1, phone="+33199001188")
    # when the second one saves the copy they opened
    http = signed_in(clerk)
    form = {
        "kind": "company",
        "company_name": "Alpha renamed",
        "email": "alpha@example.com",
        "phone": "",
        "tax_id": "",
        "street": "",
        "postcode": "",
        "city": "",
        "country": "",
        "currency": "EUR",
        "language": "en",
        "owner": alpha.owner_id,
        "org_unit": alpha.org_unit_id,
        "version": 1,
    }
    response = http.post(f"/clients/{alpha.pk}/edit/", form)
    # then it is refused with a message and nothing of it is saved
    assert response.status_code == 200
    assert "Someone else changed this client while you were editing." in response.content.decode()
    alpha.refresh_from_db()
    assert (alpha.name, alpha.phone, alpha.version) == ("Alpha SARL", "+33199001188", 2)
    # a save from the fresh copy goes through
    response = http.post(f"/clients/{alpha.pk}/edit/", {**form, "phone": alpha.phone, "version": 2})
    assert response.status_code == 302
    alpha.refresh_from_db()
    assert (alpha.name, alpha.version) == ("Alpha renamed", 3)


def test_api_patch_with_an_old_version_is_a_409(api_client, alpha, clerk):
    http = api_client(clerk)
    ok = http.patch(
        f"/api/v1/clients/{alpha.pk}",
        {"city": "Lyon", "version": 1},
        content_type="application/json",
    )
    assert (ok.status_code, ok.json()["version"]) == (200, 2)
    stale = http.patch(
        f"/api/v1/clients/{alpha.pk}",
        {"city": "Paris", "version": 1},
        content_type="application/json",
    )
    assert stale.status_code == 409
    assert stale.json()["title"] == "Conflict"
    assert Client.objects.get(pk=alpha.pk).city == "Lyon"
