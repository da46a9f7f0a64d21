"""Calendar, to-do list, activity list and edit pages; dashboard counters."""

import datetime as dt

import pytest
import time_machine

from clientbase.sales.activity_queries import (
    calendar_for,
    calls_and_meetings_this_week,
    overdue,
    todo_for,
)
from clientbase.sales.activity_services import activity_create
from clientbase.sales.models import Activity

# A Wednesday.
NOW = dt.datetime(2025, 3, 12, 10, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def _plan(by, subject, when, kind="call", done=False, **extra):
    return activity_create(by=by, kind=kind, subject=subject, due_at=when, done=done, **extra)


def _week(seller, buyer):
    return [
        _plan(seller, "Monday call", dt.datetime(2025, 3, 10, 9, 0, tzinfo=dt.UTC), client=buyer),
        _plan(seller, "Late to-do", dt.datetime(2025, 3, 11, 16, 0, tzinfo=dt.UTC), kind="todo"),
        _plan(seller, "Lunch meeting", dt.datetime(2025, 3, 12, 12, 0, tzinfo=dt.UTC), "meeting"),
        _plan(seller, "Friday call", dt.datetime(2025, 3, 14, 9, 0, tzinfo=dt.UTC)),
        _plan(seller, "Next week", dt.datetime(2025, 3, 17, 9, 0, tzinfo=dt.UTC)),
        _plan(seller, "Early call", dt.datetime(2025, 3, 12, 8, 0, tzinfo=dt.UTC), done=True),
    ]


def test_week_calendar_puts_each_activity_on_its_day(seller, buyer):
    _week(seller, buyer)
    shown = calendar_for(seller, seller, "week", dt.date(2025, 3, 12))
    assert (shown.start, shown.end) == (dt.date(2025, 3, 10), dt.date(2025, 3, 17))
    assert [[a.subject for a in d.activities] for d in shown.days] == [
        ["Monday call"],
        ["Late to-do"],
        ["Early call", "Lunch meeting"],
        [],
        ["Friday call"],
        [],
        [],
    ]
    assert [d.is_today for d in shown.days].index(True) == 2
    assert (shown.previous, shown.following) == (dt.date(2025, 3, 5), dt.date(2025, 3, 19))


def test_month_calendar_covers_whole_weeks(seller, buyer):
    _week(seller, buyer)
    shown = calendar_for(seller, seller, "month", dt.date(2025, 3, 12))
    # March 2025 starts on a Saturday and ends on a Monday.
    assert (shown.start, shown.end) == (dt.date(2025, 2, 24), dt.date(2025, 4, 7))
    assert len(shown.weeks) == 6 and all(len(w) == 7 for w in shown.weeks)
    assert sum(len(d.activities) for d in shown.days) == 6
    assert not shown.days[0].in_month and shown.days[5].in_month
    assert (shown.previous, shown.following) == (dt.date(2025, 2, 1), dt.date(2025, 4, 1))


def test_calendar_of_someone_out_of_sight_shows_nothing(seller, other_seller, buyer):
    _week(seller, buyer)
    shown = calendar_for(other_seller, seller, "month", dt.date(2025, 3, 12))
    assert sum(len(d.activities) for d in shown.days) == 0


def test_calendar_pages_render_each_view(seller, buyer, signed_in, django_assert_num_queries):
    _week(seller, buyer)
    browser = signed_in(seller)
    for view, expected in [
        ("day", "Lunch meeting"),
        ("week", "Friday call"),
        ("month", "Next week"),
    ]:
        response = browser.get(f"/sales/calendar/?view={view}&date=2025-03-12")
        assert response.status_code == 200
        assert expected in response.content.decode()
    bad = browser.get("/sales/calendar/?view=year&date=nonsense")
    assert bad.status_code == 200 and "Friday call" in bad.content.decode()


def test_calendar_of_a_person_out_of_sight_is_404(seller, other_seller, signed_in):
    response = signed_in(seller).get(f"/sales/calendar/?user={other_seller.pk}")
    assert response.status_code == 404


def test_manager_opens_a_seller_s_calendar(seller, buyer, sales_manager, signed_in):
    _week(seller, buyer)
    response = signed_in(sales_manager).get(
        f"/sales/calendar/?view=week&date=2025-03-12&user={seller.pk}"
    )
    assert response.status_code == 200
    assert "Friday call" in response.content.decode()


def test_todo_list_splits_by_when(seller, buyer):
    _week(seller, buyer)
    todo = todo_for(seller)
    assert [a.subject for a in todo.overdue] == ["Monday call", "Late to-do"]
    assert [a.subject for a in todo.today] == ["Lunch meeting"]
    assert [a.subject for a in todo.upcoming] == ["Friday call", "Next week"]
    assert [a.subject for a in todo.done_today] == ["Early call"]


def test_ticking_a_to_do_completes_it_and_returns_the_row(seller, buyer, signed_in):
    late = _week(seller, buyer)[1]
    browser = signed_in(seller)
    assert browser.get("/sales/todo/").status_code == 200
    response = browser.post(
        f"/sales/activities/{late.pk}/complete/", {"view": "todo"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert f'id="todo-{late.pk}"' in response.content.decode()
    assert "todo-done" in response.content.decode()
    late.refresh_from_db()
    assert late.done_at == NOW


def test_dashboard_counters(seller, other_seller, buyer):
    _week(seller, buyer)
    _plan(other_seller, "Not mine", dt.datetime(2025, 3, 11, 9, 0, tzinfo=dt.UTC))
    assert overdue(seller).count() == 2
    # Calls and meetings due this week, done or not: Monday, lunch, Friday, early call.
    assert calls_and_meetings_this_week(seller).count() == 4
    assert overdue(other_seller).count() == 1


def test_activity_list_filters(seller, buyer, signed_in, django_assert_num_queries):
    _week(seller, buyer)
    browser = signed_in(seller)
    browser.get("/sales/activities/")  # warm the session and permission caches
    with django_assert_num_queries(7):
        response = browser.get("/sales/activities/?kind=call&done=0&from=2025-03-10&to=2025-03-14")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Monday call" in page and "Friday call" in page
    assert "Early call" not in page and "Lunch meeting" not in page and "Next week" not in page


def test_activity_list_hides_what_is_out_of_sight(seller, other_seller, buyer, signed_in):
    _week(seller, buyer)
    page = signed_in(other_seller).get("/sales/activities/").content.decode()
    assert "Monday call" not in page and "No activities match." in page


def test_edit_page_reschedules_and_delete_removes(seller, buyer, signed_in):
    friday = _week(seller, buyer)[3]
    browser = signed_in(seller)
    assert browser.get(f"/sales/activities/{friday.pk}/").status_code == 200
    response = browser.post(
        f"/sales/activities/{friday.pk}/",
        {"kind": "meeting", "subject": "Friday visit", "due_at": "2025-03-14T15:00", "body": ""},
    )
    assert response.status_code == 302
    friday.refresh_from_db()
    assert (friday.kind, friday.subject) == ("meeting", "Friday visit")
    assert friday.due_at == dt.datetime(2025, 3, 14, 15, 0, tzinfo=dt.UTC)
    assert browser.post(f"/sales/activities/{friday.pk}/delete/").status_code == 302
    assert not Activity.objects.filter(pk=friday.pk).exists()


def test_edit_page_refuses_a_bad_reminder_and_keeps_the_activity(seller, buyer, signed_in):
    friday = _week(seller, buyer)[3]
    response = signed_in(seller).post(
        f"/sales/activities/{friday.pk}/",
        {
            "kind": "call",
            "subject": "Friday call",
            "due_at": "2025-03-14T09:00",
            "remind_at": "2025-03-14T10:00",
        },
    )
    assert response.status_code == 200
    assert "The reminder must come before the activity." in response.content.decode()
    friday.refresh_from_db()
    assert friday.remind_at is None


def test_edit_page_out_of_sight_is_404(seller, other_seller, buyer, signed_in):
    friday = _week(seller, buyer)[3]
    assert signed_in(other_seller).get(f"/sales/activities/{friday.pk}/").status_code == 404


def test_done_activity_cannot_be_deleted_from_the_page(seller, buyer, signed_in):
    early = _week(seller, buyer)[5]
    response = signed_in(seller).post(f"/sales/activities/{early.pk}/delete/")
    assert response.status_code == 302
    assert Activity.objects.filter(pk=early.pk).exists()


def test_dashboard_shows_the_activity_counters(seller, buyer, signed_in):
    _week(seller, buyer)
    page = signed_in(seller).get("/").content.decode()
    assert "Overdue reminders" in page and "Calls and meetings this week" in page
