"""Scheduled service changes (CUS-13's executor): the cron takes them on their day and
marks them done, or error with the reason."""

import datetime as dt

import pytest
import time_machine

from clientbase.billing import services
from clientbase.billing.models import Service
from clientbase.catalog.models import Cycle
from clientbase.clients.models import DeferredAction
from clientbase.clients.services import deferred_action_update, deferred_actions_run_due
from clientbase.core.errors import ServiceError


@pytest.fixture
def disk(clerk, rub_client, catalog, seed_day):
    order = services.order_create(
        by=clerk, client=rub_client, items=[services.ItemSpec(catalog.disk, Cycle.MONTHLY)]
    )
    services.order_accept(by=clerk, order=order)
    return Service.objects.get(client=rub_client)


def test_a_scheduled_suspension_runs_on_its_day(clerk, disk):
    action = services.service_action_schedule(
        by=clerk, service=disk, action="suspend", reason="Client asked", due_on=dt.date(2019, 2, 10)
    )
    assert (action.kind, action.state, action.params) == (
        "service",
        "pending",
        {"service_id": disk.pk, "product": "Пакет дискового пространства 5ГБ",
         "action": "suspend", "status": "suspended", "reason": "Client asked"},
    )  # fmt: skip
    assert deferred_actions_run_due(dt.date(2019, 2, 9)) == (0, 0)
    with time_machine.travel(dt.datetime(2019, 2, 10, 3, tzinfo=dt.UTC), tick=False):
        assert deferred_actions_run_due(dt.date(2019, 2, 10)) == (1, 0)
    disk.refresh_from_db()
    action.refresh_from_db()
    assert (disk.status, disk.status_reason, action.state, action.result) == (
        "suspended", "Client asked", "done", ""
    )  # fmt: skip


def test_an_action_that_no_longer_applies_is_marked_error_with_why(clerk, disk):
    action = services.service_action_schedule(
        by=clerk, service=disk, action="suspend", reason="Asked", due_on=dt.date(2019, 2, 10)
    )
    services.service_action(by=clerk, service=disk, action="terminate", reason="Left")
    assert deferred_actions_run_due(dt.date(2019, 2, 10)) == (0, 1)
    action.refresh_from_db()
    assert (action.state, action.result) == (
        "error", "The service is Terminated: suspending is not possible."
    )  # fmt: skip


def test_a_pending_service_action_can_be_moved_and_refused_bad_input(clerk, disk):
    action = services.service_action_schedule(
        by=clerk, service=disk, action="cancel", reason="Moving", due_on=dt.date(2019, 3, 1)
    )
    moved = deferred_action_update(action=action, due_on=dt.date(2019, 3, 5), status="",
                                   reason="Moving away", note="", by=clerk)  # fmt: skip
    assert (moved.due_on, moved.params["action"], moved.params["reason"]) == (
        dt.date(2019, 3, 5), "cancel", "Moving away"
    )  # fmt: skip
    for fields, errors in [
        ({"action": "suspend", "reason": "x", "due_on": dt.date(2019, 2, 1)},
         {"due_on": ["Choose a day after today, or act now."]}),
        ({"action": "suspend", "reason": " ", "due_on": dt.date(2019, 3, 1)},
         {"reason": ["Give a reason."]}),
        ({"action": "unsuspend", "reason": "x", "due_on": dt.date(2019, 3, 1)},
         {"status": ["The service is Active: unsuspending is not possible."]}),
    ]:  # fmt: skip
        with pytest.raises(ServiceError) as refused:
            services.service_action_schedule(by=clerk, service=disk, **fields)
        assert refused.value.message_dict == errors
    assert DeferredAction.objects.count() == 1


def test_scheduling_from_the_service_page_and_the_api(signed_in, api_client, clerk, disk):
    http = signed_in(clerk)
    response = http.post(
        f"/billing/services/{disk.pk}/status/",
        {"action": "terminate", "reason": "End of contract", "on": "2019-06-30"},
    )
    assert response.status_code == 302
    assert DeferredAction.objects.get().params["action"] == "terminate"
    page = http.get(f"/clients/{disk.client_id}/").content.decode()
    assert "Service change: Пакет дискового пространства 5ГБ: terminate" in page
    response = api_client(clerk).post(
        f"/api/v1/services/{disk.pk}/scheduled-actions",
        {"action": "suspend", "reason": "Holiday", "due_on": "2019-03-01"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert {k: body[k] for k in ("kind", "due_on", "state", "status", "reason")} == {
        "kind": "service", "due_on": "2019-03-01", "state": "pending", "status": "suspended",
        "reason": "Holiday",
    }  # fmt: skip
    disk.refresh_from_db()
    assert disk.status == "active"
