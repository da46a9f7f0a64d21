"""KPI over the API: the report and targets, with problems at the fields and 404 out of sight."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from clientbase.sales.kpi_services import kpi_target_save
from clientbase.sales.models import KpiTarget
from tests.sales.test_kpi_report import IN_MARCH, MARCH, customer_of, log, pay

TODAY = dt.datetime(2025, 3, 20, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def in_march_2025():
    with time_machine.travel(TODAY, tick=False):
        yield


def fields(answer) -> dict[str, str]:
    return {e["field"]: e["message"] for e in answer.json()["errors"]}


def metric(body, code):
    return next(m for m in body["metrics"] if m["metric"] == code)


def test_report_of_your_own_month(seller, admin_user, api_client):
    # Given Marie's revenue target at 4 % and 800.00 EUR received in March, and one call
    kpi_target_save(
        by=admin_user,
        user=seller,
        metric="revenue",
        period_start=MARCH.start,
        period_end=MARCH.end,
        value="1000",
        currency="EUR",
        commission_percent=Decimal(4),
    )
    pay(customer_of(seller, "Newco"), "800.00", dt.date(2025, 3, 2), admin_user)
    log(seller, "call", IN_MARCH)
    # When she asks for her KPI
    answer = api_client(seller).get("/api/v1/kpi")
    # Then she gets March with target, actual, percent and commission
    assert answer.status_code == 200
    body = answer.json()
    assert (body["subject"], body["subject_id"], body["name"]) == (
        "user",
        seller.pk,
        "Marie Dupont",
    )
    assert (body["period_start"], body["period_end"]) == ("2025-03-01", "2025-03-31")
    assert metric(body, "revenue") == {
        "metric": "revenue",
        "label": "Revenue",
        "definition": metric(body, "revenue")["definition"],
        "target": "1000.00",
        "target_currency": "EUR",
        "actual": None,
        "revenue": [{"amount": "800.00", "currency": "EUR"}],
        "percent": "80.0",
        "commission": [{"amount": "32.00", "currency": "EUR"}],
    }
    assert metric(body, "calls")["actual"] == 1
    assert metric(body, "calls")["percent"] is None
    assert metric(body, "new_buyers")["actual"] == 1
    assert body["commission"] == [{"amount": "32.00", "currency": "EUR"}]
    assert body["members"] == []


def test_report_of_a_team_lists_members(
    sales_manager, seller, other_seller, api_client, org, django_assert_max_num_queries
):
    log(other_seller, "meeting", IN_MARCH)
    client = api_client(sales_manager)
    # Token, team lookup, members, six actuals, targets: a fixed count whatever the team's size
    with django_assert_max_num_queries(14):
        answer = client.get(
            "/api/v1/kpi", {"team": org["team_b"].pk, "start": "2025-03-01", "end": "2025-03-31"}
        )
    assert answer.status_code == 200
    body = answer.json()
    assert body["subject"] == "team" and body["name"] == "Team B"
    assert metric(body, "meetings")["actual"] == 1
    assert [m["name"] for m in body["members"]] == ["Minh Tran"]


def test_report_out_of_sight_is_a_404(seller, other_seller, api_client, org):
    client = api_client(seller)
    assert client.get("/api/v1/kpi", {"user": other_seller.pk}).status_code == 404
    assert client.get("/api/v1/kpi", {"team": org["team_a"].pk}).status_code == 404
    assert client.get("/api/v1/kpi", {"user": 999999}).status_code == 404


def test_report_refuses_bad_periods(seller, api_client):
    client = api_client(seller)
    answer = client.get("/api/v1/kpi", {"start": "2025-03-10", "end": "2025-03-01"})
    assert answer.status_code == 422
    assert fields(answer) == {"end": "The period ends before it starts."}
    answer = client.get("/api/v1/kpi", {"start": "2025-02-30"})
    assert answer.status_code == 422
    assert "start" in fields(answer)
    answer = client.get("/api/v1/kpi", {"user": seller.pk, "team": seller.org_unit_id})
    assert answer.status_code == 422
    assert fields(answer) == {"team": "Ask for a person or a team, not both."}


def test_targets_crud(sales_manager, seller, api_client, django_assert_max_num_queries):
    client = api_client(sales_manager)
    # When the manager sets a revenue target for Marie
    answer = client.post(
        "/api/v1/kpi/targets",
        {
            "user_id": seller.pk,
            "metric": "revenue",
            "period_start": "2025-04-01",
            "period_end": "2025-06-30",
            "target": "45000.5",
            "currency": "eur",
            "commission_percent": "2.5",
        },
        content_type="application/json",
    )
    # Then it is stored in cents and answered in major units
    assert answer.status_code == 201, answer.content
    created = answer.json()
    assert created == {
        "id": created["id"],
        "user_id": seller.pk,
        "team_id": None,
        "metric": "revenue",
        "period_start": "2025-04-01",
        "period_end": "2025-06-30",
        "target": "45000.50",
        "currency": "EUR",
        "commission_percent": "2.50",
    }
    assert KpiTarget.objects.get().target == 4500050
    # And it can be read, listed, changed and removed
    url = f"/api/v1/kpi/targets/{created['id']}"
    assert client.get(url).json() == created
    with django_assert_max_num_queries(6):
        listing = client.get("/api/v1/kpi/targets", {"on": "2025-05-15"})
    assert listing.json()["count"] == 1
    assert client.get("/api/v1/kpi/targets", {"on": "2025-03-15"}).json()["count"] == 0
    changed = client.patch(url, {"target": "50000"}, content_type="application/json")
    assert changed.status_code == 200
    assert changed.json()["target"] == "50000.00"
    assert client.delete(url).status_code == 204
    assert not KpiTarget.objects.exists()
    assert client.get(url).status_code == 404


def test_target_refusals_name_the_field(sales_manager, seller, other_seller, api_client):
    client = api_client(sales_manager)
    base = {
        "user_id": seller.pk,
        "metric": "calls",
        "period_start": "2025-04-01",
        "period_end": "2025-04-30",
        "target": "10",
    }
    post = lambda body: client.post("/api/v1/kpi/targets", body, content_type="application/json")  # noqa: E731
    assert post(base).status_code == 201
    duplicate = post(base)
    assert duplicate.status_code == 422
    assert fields(duplicate) == {
        "metric": "This person or team already has a target for this measure and period."
    }
    backwards = post(base | {"metric": "meetings", "period_end": "2025-03-01"})
    assert fields(backwards) == {"period_end": "The period ends before it starts."}
    fraction = post(base | {"metric": "meetings", "target": "2.5"})
    assert fields(fraction) == {"target": "Enter a whole number."}
    no_currency = post(base | {"metric": "revenue"})
    assert fields(no_currency) == {"currency": "Choose a known currency."}
    both = post(base | {"metric": "emails", "team_id": seller.org_unit_id})
    assert fields(both) == {"user_id": "Give a person (user_id) or a team (team_id)."}
    unknown = post(base | {"metric": "emails", "user_id": 999999})
    assert fields(unknown) == {"user_id": "No person you may see has this id."}
    too_much = post(base | {"metric": "emails", "commission_percent": "101"})
    assert too_much.status_code == 422 and "commission_percent" in fields(too_much)
    assert KpiTarget.objects.count() == 1


def test_targets_need_the_permission(seller, api_client):
    client = api_client(seller)
    assert client.get("/api/v1/kpi/targets").status_code == 403
    answer = client.post(
        "/api/v1/kpi/targets",
        {
            "user_id": seller.pk,
            "metric": "calls",
            "period_start": "2025-04-01",
            "period_end": "2025-04-30",
            "target": "10",
        },
        content_type="application/json",
    )
    assert answer.status_code == 403
    assert not KpiTarget.objects.exists()


def test_target_out_of_sight_is_a_404(make_user, seller, admin_user, api_client):
    target = kpi_target_save(
        by=admin_user,
        user=seller,
        metric="calls",
        period_start=MARCH.start,
        period_end=MARCH.end,
        value=5,
    )
    manager_b = make_user("bob", role="manager", unit="team_b")
    client = api_client(manager_b)
    url = f"/api/v1/kpi/targets/{target.pk}"
    assert client.get(url).status_code == 404
    assert client.patch(url, {"target": "1"}, content_type="application/json").status_code == 404
    assert client.delete(url).status_code == 404
    target.refresh_from_db()
    assert target.target == 5


def test_a_retried_create_with_the_same_key_sets_one_target(sales_manager, seller, api_client):
    client = api_client(sales_manager)
    body = {
        "user_id": seller.pk,
        "metric": "calls",
        "period_start": "2025-04-01",
        "period_end": "2025-04-30",
        "target": "10",
    }
    first, again = (
        client.post(
            "/api/v1/kpi/targets",
            body,
            content_type="application/json",
            headers={"Idempotency-Key": "kpi-april-calls"},
        )
        for _ in range(2)
    )
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json() == again.json()
    assert KpiTarget.objects.count() == 1
