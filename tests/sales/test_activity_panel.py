"""The activity panel of a card, its quick form, and the client profile's Sales tab."""

import datetime as dt

import pytest
import time_machine

from clientbase.sales.activity_queries import panel_for
from clientbase.sales.activity_services import activity_create
from clientbase.sales.models import Activity

NOW = dt.datetime(2025, 3, 12, 10, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def _log(seller, buyer, kind, subject, *, hours=0, done=True, **extra):
    return activity_create(
        by=seller,
        kind=kind,
        subject=subject,
        due_at=NOW + dt.timedelta(hours=hours),
        done=done,
        client=buyer,
        **extra,
    )


def test_panel_counts_done_activities_by_kind_and_names_the_next_step(seller, buyer):
    # given two done calls, a done email, a planned meeting tomorrow and a to-do in an hour
    _log(seller, buyer, "call", "Intro call", hours=-5)
    _log(seller, buyer, "call", "Follow-up", hours=-2)
    _log(seller, buyer, "email", "Brochure", hours=-1)
    meeting = _log(seller, buyer, "meeting", "Demo", hours=24, done=False)
    todo = _log(seller, buyer, "todo", "Send prices", hours=1, done=False)
    # when the panel is read
    panel = panel_for(seller, client=buyer)
    # then counts are by kind of done activity, and the earliest undone is the next step
    assert panel.counts == {"call": 2, "meeting": 0, "email": 1, "quote_email": 0}
    assert panel.next_step == todo
    assert panel.upcoming == [todo, meeting]
    assert [a.subject for a in panel.recent] == ["Brochure", "Follow-up", "Intro call"]
    assert panel.client_id == buyer.pk and panel.lead_id is None
    assert panel.subject_query == f"client={buyer.pk}"


def test_panel_shows_nothing_out_of_sight(seller, other_seller, buyer):
    # given an activity of the seller on their client
    _log(seller, buyer, "call", "Intro call")
    # when the other team's seller reads the panel of that client
    panel = panel_for(other_seller, client=buyer)
    # then nothing is shown
    assert panel.recent == [] and panel.upcoming == [] and panel.next_step is None
    assert panel.counts["call"] == 0


def test_quick_form_logs_a_done_call_and_returns_the_panel(seller, buyer, signed_in):
    # given the seller on the client's Sales tab
    browser = signed_in(seller)
    # when they log a call through htmx
    response = browser.post(
        "/sales/activities/new/",
        {
            "client": buyer.pk,
            "kind": "call",
            "subject": "Asked about prices",
            "outcome": "interested",
            "body": "Wants a quote",
            "mode": "done",
        },
        HTTP_HX_REQUEST="true",
    )
    # then the call is saved as done now and the panel comes back with its counter
    assert response.status_code == 200
    activity = Activity.objects.get()
    assert (activity.kind, activity.subject, activity.outcome) == (
        "call",
        "Asked about prices",
        "interested",
    )
    assert activity.done_at == NOW and activity.due_at == NOW
    assert activity.client == buyer and activity.owner == seller
    assert 'id="activity-panel"' in response.content.decode()
    assert "Asked about prices" in response.content.decode()


def test_quick_form_schedules_with_a_reminder(seller, buyer, signed_in):
    browser = signed_in(seller)
    response = browser.post(
        "/sales/activities/new/",
        {
            "client": buyer.pk,
            "kind": "meeting",
            "subject": "On site",
            "due_at": "2025-03-14T09:30",
            "remind_at": "2025-03-14T08:30",
            "mode": "schedule",
        },
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    activity = Activity.objects.get()
    assert activity.done_at is None
    assert activity.due_at == dt.datetime(2025, 3, 14, 9, 30, tzinfo=dt.UTC)
    assert activity.remind_at == dt.datetime(2025, 3, 14, 8, 30, tzinfo=dt.UTC)


def test_quick_form_refuses_a_reminder_after_the_activity(seller, buyer, signed_in):
    browser = signed_in(seller)
    response = browser.post(
        "/sales/activities/new/",
        {
            "client": buyer.pk,
            "kind": "meeting",
            "subject": "On site",
            "due_at": "2025-03-14T09:30",
            "remind_at": "2025-03-14T10:30",
            "mode": "schedule",
        },
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert "The reminder must come before the activity." in response.content.decode()
    assert Activity.objects.count() == 0


def test_quick_form_refuses_an_empty_subject(seller, buyer, signed_in):
    response = signed_in(seller).post(
        "/sales/activities/new/",
        {"client": buyer.pk, "kind": "call", "subject": " ", "mode": "done"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert Activity.objects.count() == 0


def test_quick_form_on_a_client_out_of_sight_is_404(other_seller, buyer, signed_in):
    response = signed_in(other_seller).post(
        "/sales/activities/new/",
        {"client": buyer.pk, "kind": "call", "subject": "Hi", "mode": "done"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 404
    assert Activity.objects.count() == 0


def test_complete_and_reschedule_from_the_panel(seller, buyer, signed_in):
    # given a planned call
    call = _log(seller, buyer, "call", "Call back", hours=2, done=False)
    browser = signed_in(seller)
    # when it is moved, then completed
    moved = browser.post(
        f"/sales/activities/{call.pk}/reschedule/",
        {"client": buyer.pk, "due_at": "2025-03-13T15:00"},
        HTTP_HX_REQUEST="true",
    )
    done = browser.post(
        f"/sales/activities/{call.pk}/complete/",
        {"client": buyer.pk, "outcome": "no_answer"},
        HTTP_HX_REQUEST="true",
    )
    # then both worked and the panel came back
    assert moved.status_code == 200 and done.status_code == 200
    call.refresh_from_db()
    assert call.due_at == dt.datetime(2025, 3, 13, 15, 0, tzinfo=dt.UTC)
    assert call.done_at == NOW and call.outcome == "no_answer"
    assert "Call back" in done.content.decode()


def test_completing_someone_elses_activity_out_of_sight_is_404(
    seller, other_seller, buyer, signed_in
):
    call = _log(seller, buyer, "call", "Call back", hours=2, done=False)
    response = signed_in(other_seller).post(f"/sales/activities/{call.pk}/complete/", {})
    assert response.status_code == 404
    call.refresh_from_db()
    assert call.done_at is None


def test_client_profile_sales_tab_shows_the_panel(seller, buyer, signed_in):
    # given a logged call on the client
    _log(seller, buyer, "call", "Intro call", hours=-1)
    # when the seller opens the Sales tab
    response = signed_in(seller).get(f"/clients/{buyer.pk}/?tab=sales")
    # then the panel, the deals, quotes and contracts blocks and the quick actions are there
    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="activity-panel"' in page and "Intro call" in page
    assert 'id="client-deals"' in page and 'id="client-quotes"' in page
    assert 'id="client-contracts"' in page
    assert 'id="action-log-call"' in page


def test_quick_form_on_a_lead_card_returns_the_lead_panel(seller, other_seller, signed_in):
    from clientbase.sales.lead_services import lead_create

    lead = lead_create(by=seller, name="Jean Martin", company="Martin SARL", distribute=False)
    response = signed_in(seller).post(
        "/sales/activities/new/",
        {"lead": lead.pk, "kind": "email", "subject": "Sent the offer", "mode": "done"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert f'name="lead" value="{lead.pk}"' in response.content.decode()
    activity = Activity.objects.get()
    assert activity.lead == lead and activity.client is None
    assert panel_for(seller, lead=lead).counts["email"] == 1
    # and a seller of another team cannot post on that lead
    refused = signed_in(other_seller).post(
        "/sales/activities/new/",
        {"lead": lead.pk, "kind": "call", "subject": "Hi", "mode": "done"},
        HTTP_HX_REQUEST="true",
    )
    assert refused.status_code == 404
    assert Activity.objects.count() == 1
