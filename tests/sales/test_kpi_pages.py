"""The KPI pages: the report, its export and the targets' list and form."""

import datetime as dt
import io
from decimal import Decimal

import openpyxl
import pytest
import time_machine
from django.urls import reverse

from clientbase.core.models import AuditEntry
from clientbase.sales.kpi_services import kpi_target_save
from clientbase.sales.models import KpiTarget
from tests.sales.test_kpi_report import IN_MARCH, MARCH, customer_of, log, pay

TODAY = dt.datetime(2025, 3, 20, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def in_march_2025():
    with time_machine.travel(TODAY, tick=False):
        yield


@pytest.fixture
def marie_targets(seller, admin_user):
    """Marie's March targets: 4 calls and 1,000.00 EUR at 5 %."""
    dates = {"period_start": MARCH.start, "period_end": MARCH.end}
    calls = kpi_target_save(by=admin_user, user=seller, metric="calls", value=4, **dates)
    revenue = kpi_target_save(
        by=admin_user,
        user=seller,
        metric="revenue",
        value="1000",
        currency="EUR",
        commission_percent=Decimal(5),
        **dates,
    )
    return calls, revenue


def test_seller_reads_her_own_report_of_this_month(seller, signed_in, marie_targets, admin_user):
    # Given Marie made two calls and was paid 500.00 EUR in March
    log(seller, "call", IN_MARCH)
    log(seller, "call", IN_MARCH)
    pay(customer_of(seller, "Newco"), "500.00", dt.date(2025, 3, 3), admin_user)
    # When she opens the KPI report without parameters
    page = signed_in(seller).get(reverse("sales:kpi"))
    # Then it shows her March figures, targets, percent and commission
    assert page.status_code == 200
    html = page.content.decode()
    assert page.context["report"].subject.user == seller
    assert page.context["report"].period == MARCH
    assert 'data-metric="calls"' in html
    assert "50.0 %" in html  # 2 of 4 calls, and 500 of 1,000 EUR
    assert "€25.00" in html  # 5 % commission of €500.00
    assert 'id="kpi-chart-data"' in html
    assert "<script>" not in html.replace('<script src="', "")


def test_seller_cannot_read_someone_else(seller, other_seller, signed_in):
    client = signed_in(seller)
    # When Marie asks for Minh or for her team, then nothing is found
    assert client.get(reverse("sales:kpi"), {"who": f"u{other_seller.pk}"}).status_code == 404
    assert client.get(reverse("sales:kpi"), {"who": f"t{seller.org_unit_id}"}).status_code == 404
    export = reverse("sales:kpi_export", args=["csv"])
    assert client.get(export, {"who": f"u{other_seller.pk}"}).status_code == 302


def test_manager_reads_a_team_in_sight_but_not_above(
    sales_manager, seller, other_seller, signed_in, org
):
    client = signed_in(sales_manager)
    page = client.get(reverse("sales:kpi"), {"who": f"t{org['branch'].pk}"})
    assert page.status_code == 200
    members = [m.user.username for m in page.context["report"].members]
    assert members == ["marie", "minh", "olga"]
    assert client.get(reverse("sales:kpi"), {"who": f"t{org['company'].pk}"}).status_code == 404


def test_bad_period_is_a_400_with_the_reason(seller, signed_in):
    page = signed_in(seller).get(reverse("sales:kpi"), {"start": "2025-03-10", "end": "2025-03-01"})
    assert page.status_code == 400
    assert "The period ends before it starts." in page.content.decode()


def test_report_page_costs_a_fixed_number_of_queries(
    sales_manager, seller, other_seller, signed_in, org, django_assert_max_num_queries
):
    client = signed_in(sales_manager)
    client.get(reverse("sales:kpi"))  # warm the session and the nav
    with django_assert_max_num_queries(20):
        page = client.get(reverse("sales:kpi"), {"who": f"t{org['branch'].pk}"})
    assert page.status_code == 200


def test_export_xlsx_and_csv_carry_the_table(seller, signed_in, marie_targets):
    # Given Marie's targets and one call
    log(seller, "call", IN_MARCH)
    client = signed_in(seller)
    # When she exports the report
    xlsx = client.get(reverse("sales:kpi_export", args=["xlsx"]))
    csv = client.get(reverse("sales:kpi_export", args=["csv"]))
    # Then both hold one line per measure with target, actual and percent
    assert xlsx.status_code == 200 and csv.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(b"".join(xlsx.streaming_content)))
    rows = list(book.active.iter_rows(values_only=True))
    assert rows[0][:5] == ("Person or team", "Measure", "Target", "Actual", "Achieved, %")
    calls = next(r for r in rows if r[1] == "Calls")
    assert calls == ("Marie Dupont", "Calls", 4, 1, "25.0", None)
    text = b"".join(csv.streaming_content).decode("utf-8-sig")
    assert "Marie Dupont,Revenue,1000.00 EUR,,0.0," in text
    assert len(rows) == 11


def test_targets_need_the_kpi_permission(seller, signed_in):
    client = signed_in(seller)
    assert client.get(reverse("sales:kpi_targets")).status_code == 403
    assert client.get(reverse("sales:kpi_target_add")).status_code == 403


def test_manager_sets_a_target_for_a_seller(sales_manager, seller, signed_in):
    client = signed_in(sales_manager)
    form = client.get(reverse("sales:kpi_target_add"))
    assert form.status_code == 200
    answer = client.post(
        reverse("sales:kpi_target_add"),
        {
            "who": f"u{seller.pk}",
            "metric": "revenue",
            "period_start": "2025-03-01",
            "period_end": "2025-03-31",
            "value": "15000.50",
            "currency": "EUR",
            "commission_percent": "2.5",
        },
    )
    assert answer.status_code == 302
    target = KpiTarget.objects.get()
    assert (target.user, target.target, target.currency) == (seller, 1500050, "EUR")
    assert target.commission_percent == Decimal("2.50")
    kpi_audit = AuditEntry.objects.filter(object_type__model="kpitarget", object_id=str(target.pk))
    assert list(kpi_audit.values_list("action", "actor")) == [("create", sales_manager.pk)]
    listing = client.get(reverse("sales:kpi_targets"))
    assert "€15,000.50" in listing.content.decode()
    # And the edit form shows the amount in major units
    edit = client.get(reverse("sales:kpi_target_edit", args=[target.pk]))
    assert edit.context["form"].initial["value"] == Decimal("15000.50")


def test_duplicate_target_is_refused_at_the_field(sales_manager, seller, signed_in, marie_targets):
    client = signed_in(sales_manager)
    answer = client.post(
        reverse("sales:kpi_target_add"),
        {
            "who": f"u{seller.pk}",
            "metric": "calls",
            "period_start": "2025-03-01",
            "period_end": "2025-03-31",
            "value": "9",
        },
    )
    assert answer.status_code == 400
    assert answer.context["form"].errors["metric"] == [
        "This person or team already has a target for this measure and period."
    ]
    assert KpiTarget.objects.get(metric="calls").target == 4


def test_target_out_of_sight_is_a_404(make_user, signed_in, marie_targets):
    # Given a manager of team B only
    manager_b = make_user("bob", role="manager", unit="team_b")
    calls, _revenue = marie_targets
    client = signed_in(manager_b)
    assert client.get(reverse("sales:kpi_target_edit", args=[calls.pk])).status_code == 404
    answer = client.post(reverse("sales:kpi_target_delete", args=[calls.pk]))
    assert answer.status_code == 404
    assert KpiTarget.objects.filter(pk=calls.pk).exists()
    # And assigning to Marie is refused
    answer = client.post(
        reverse("sales:kpi_target_add"),
        {
            "who": f"u{marie_targets[0].user_id}",
            "metric": "meetings",
            "period_start": "2025-03-01",
            "period_end": "2025-03-31",
            "value": "3",
        },
    )
    assert answer.status_code == 400
    assert KpiTarget.objects.count() == 2


def test_manager_removes_a_target(sales_manager, signed_in, marie_targets):
    calls, _revenue = marie_targets
    client = signed_in(sales_manager)
    answer = client.post(reverse("sales:kpi_target_delete", args=[calls.pk]))
    assert answer.status_code == 302
    assert not KpiTarget.objects.filter(pk=calls.pk).exists()


def test_targets_list_costs_a_fixed_number_of_queries(
    sales_manager, signed_in, marie_targets, django_assert_max_num_queries
):
    client = signed_in(sales_manager)
    client.get(reverse("sales:kpi_targets"))
    with django_assert_max_num_queries(12):
        page = client.get(reverse("sales:kpi_targets"))
    assert len(page.context["targets"]) == 2


def test_service_refusal_shows_at_the_form_field(sales_manager, seller, signed_in):
    answer = signed_in(sales_manager).post(
        reverse("sales:kpi_target_add"),
        {
            "who": f"u{seller.pk}",
            "metric": "calls",
            "period_start": "2025-03-01",
            "period_end": "2025-03-31",
            "value": "1.5",
        },
    )
    assert answer.status_code == 400
    assert answer.context["form"].errors["value"] == ["Enter a whole number."]
    assert not KpiTarget.objects.exists()
