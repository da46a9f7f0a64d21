"""Activity services: update, complete, delete, reminders, all through the user's sight."""

import datetime as dt

import pytest
import time_machine
from django.core import mail
from django.http import Http404

from clientbase.core.audit import AuditEntry
from clientbase.core.errors import ServiceError
from clientbase.sales.activity_services import (
    activity_complete,
    activity_create,
    activity_delete,
    activity_update,
    reminders_send,
)
from clientbase.sales.models import Activity

NOW = dt.datetime(2025, 3, 12, 10, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def planned(seller, buyer):
    return activity_create(
        by=seller,
        kind="call",
        subject="Call back",
        due_at=NOW + dt.timedelta(hours=3),
        remind_at=NOW + dt.timedelta(hours=2),
        client=buyer,
    )


def test_update_reschedules_and_rearms_a_moved_reminder(seller, planned):
    # given a reminder already sent
    Activity.objects.filter(pk=planned.pk).update(reminded_at=NOW)
    # when the call and its reminder move to tomorrow
    updated = activity_update(
        by=seller,
        activity=planned,
        due_at=NOW + dt.timedelta(days=1),
        remind_at=NOW + dt.timedelta(days=1, hours=-1),
        subject="  Call   back  later ",
    )
    # then the new time is kept, the reminder armed again, and the change audited
    planned.refresh_from_db()
    assert updated.due_at == planned.due_at == NOW + dt.timedelta(days=1)
    assert planned.remind_at == NOW + dt.timedelta(hours=23)
    assert planned.reminded_at is None
    assert planned.subject == "Call back later"
    assert AuditEntry.objects.filter(action="update").count() == 1


def test_update_keeps_a_sent_reminder_when_the_reminder_does_not_move(seller, planned):
    Activity.objects.filter(pk=planned.pk).update(reminded_at=NOW)
    activity_update(by=seller, activity=planned, outcome="call_back")
    planned.refresh_from_db()
    assert planned.reminded_at == NOW and planned.outcome == "call_back"


def test_update_refuses_a_reminder_after_the_activity_and_changes_nothing(seller, planned):
    with pytest.raises(ServiceError) as refused:
        activity_update(by=seller, activity=planned, due_at=NOW + dt.timedelta(hours=1))
    assert refused.value.message_dict == {
        "remind_at": ["The reminder must come before the activity."]
    }
    planned.refresh_from_db()
    assert planned.due_at == NOW + dt.timedelta(hours=3)


def test_update_refuses_an_unknown_kind(seller, planned):
    with pytest.raises(ServiceError):
        activity_update(by=seller, activity=planned, kind="party")
    planned.refresh_from_db()
    assert planned.kind == "call"


def test_complete_twice_keeps_the_first_time_and_outcome(seller, planned, frozen):
    # given a call completed with no answer
    first = activity_complete(by=seller, activity=planned, outcome="no_answer", body="Voicemail")
    # when it is completed again an hour later with another outcome
    frozen.shift(dt.timedelta(hours=1))
    second = activity_complete(by=seller, activity=planned, outcome="interested")
    # then the first completion stands
    planned.refresh_from_db()
    assert first.done_at == second.done_at == planned.done_at == NOW
    assert planned.outcome == "no_answer" and planned.body == "Voicemail"


def test_complete_without_an_outcome_says_done(seller, planned):
    activity_complete(by=seller, activity=planned)
    planned.refresh_from_db()
    assert planned.outcome == "done"


def test_acting_on_an_activity_out_of_sight_is_404(other_seller, planned):
    for act in (
        lambda: activity_complete(by=other_seller, activity=planned),
        lambda: activity_update(by=other_seller, activity=planned, subject="Mine now"),
        lambda: activity_delete(by=other_seller, activity=planned),
    ):
        with pytest.raises(Http404):
            act()
    planned.refresh_from_db()
    assert planned.done_at is None and planned.subject == "Call back"


def test_the_manager_sees_and_completes_the_team_s_activity(sales_manager, planned):
    activity_complete(by=sales_manager, activity=planned, outcome="done")
    planned.refresh_from_db()
    assert planned.done_at == NOW


def test_delete_removes_an_undone_activity_and_refuses_a_done_one(seller, buyer, planned):
    done = activity_create(by=seller, kind="call", subject="Talked", done=True, client=buyer)
    activity_delete(by=seller, activity=planned)
    with pytest.raises(ServiceError):
        activity_delete(by=seller, activity=done)
    assert list(Activity.objects.values_list("subject", flat=True)) == ["Talked"]
    assert AuditEntry.objects.filter(action="delete").count() == 1


def test_reminders_go_once_to_each_owner_when_due(
    seller, other_seller, buyer, planned, frozen, django_capture_on_commit_callbacks
):
    # given a second reminder of the seller's and one of another seller, all due at noon
    activity_create(
        by=seller,
        kind="meeting",
        subject="Demo",
        due_at=NOW + dt.timedelta(hours=4),
        remind_at=NOW + dt.timedelta(hours=2),
        client=buyer,
    )
    activity_create(
        by=other_seller,
        kind="todo",
        subject="Send brochure",
        due_at=NOW + dt.timedelta(hours=5),
        remind_at=NOW + dt.timedelta(hours=1),
    )
    # and a done activity whose reminder should never go
    done = activity_create(
        by=seller,
        kind="call",
        subject="Already done",
        due_at=NOW + dt.timedelta(hours=5),
        remind_at=NOW + dt.timedelta(hours=1),
        done=True,
    )
    # when the job runs before time, then at noon, then again
    assert reminders_send() == 0
    frozen.shift(dt.timedelta(hours=2))
    with django_capture_on_commit_callbacks(execute=True):
        first = reminders_send()
    second = reminders_send()
    # then three reminders went, in one mail per owner, and the rerun sent nothing
    assert (first, second) == (3, 0)
    assert sorted(m.to[0] for m in mail.outbox) == ["marie@example.com", "minh@example.com"]
    to_marie = next(m for m in mail.outbox if m.to == ["marie@example.com"])
    assert to_marie.subject == "Reminder: 2 activities coming up"
    assert "Call back" in to_marie.body and "Demo" in to_marie.body
    done.refresh_from_db()
    assert done.reminded_at is None
    assert Activity.objects.filter(reminded_at=NOW + dt.timedelta(hours=2)).count() == 3


def test_demo_makes_activities_once(db, default_roles):
    from clientbase.core.demo import ensure_demo_org
    from clientbase.sales.activity_demo import demo_activity_create

    org = ensure_demo_org()
    made = demo_activity_create(org=org)
    assert made == 42
    assert demo_activity_create(org=org) == 0
    assert Activity.objects.count() == 42
    assert Activity.objects.filter(done_at__isnull=True, due_at__lt=NOW).exists()
    assert Activity.objects.filter(done_at__isnull=True, due_at__gt=NOW).exists()


def test_the_cron_runs_the_reminder_job_as_often_as_asked(planned, frozen):
    from clientbase.core.cron import run_jobs

    frozen.shift(dt.timedelta(hours=2))
    first = run_jobs(only=["sales_reminders"])
    again = run_jobs(only=["sales_reminders"])
    assert [(r.status, r.result) for r in first + again] == [
        ("ok", "1 reminder sent"),
        ("ok", "0 reminders sent"),
    ]
