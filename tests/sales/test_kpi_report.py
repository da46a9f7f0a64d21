"""The KPI report: actuals per measure, team sums, targets, percent and commission."""

import datetime as dt
from decimal import Decimal
from fractions import Fraction

import pytest
import time_machine
from hypothesis import given
from hypothesis import strategies as st

from clientbase.billing.models import PaymentMethod
from clientbase.billing.services import LineSpec, invoice_create, invoice_issue, payment_record
from clientbase.clients.services import client_create
from clientbase.core.money import Money
from clientbase.sales.activity_services import activity_create
from clientbase.sales.kpi_queries import (
    Period,
    Subject,
    commission,
    kpi_report,
    month_period,
    quarter_period,
    subject_for,
)
from clientbase.sales.kpi_services import kpi_target_save
from clientbase.sales.models import Activity, KpiTarget, Lead
from clientbase.sales.pipelines import default_pipeline, first_stage

MARCH = Period(dt.date(2025, 3, 1), dt.date(2025, 3, 31))
IN_MARCH = dt.datetime(2025, 3, 12, 10, 0, tzinfo=dt.UTC)
IN_FEBRUARY = dt.datetime(2025, 2, 20, 10, 0, tzinfo=dt.UTC)
IN_APRIL = dt.datetime(2025, 4, 1, 0, 30, tzinfo=dt.UTC)


def log(user, kind: str, at: dt.datetime, *, lead=None, done: bool = True) -> Activity:
    """A done (or scheduled) activity of the user at a moment."""
    with time_machine.travel(at, tick=False):
        return activity_create(by=user, kind=kind, subject=f"{kind} at {at}", done=done, lead=lead)


_numbers = iter(range(1, 10**6))


def lead_of(user, *, created: dt.datetime, converted: dt.datetime | None = None) -> Lead:
    """A lead owned by the user, created (and maybe converted) at given moments."""
    return Lead.objects.create(
        number=f"KPI-{next(_numbers)}",
        name="Prospect",
        currency="EUR",
        owner=user,
        org_unit=user.org_unit,
        stage=first_stage(default_pipeline("lead")),
        created_at=created,
        converted_at=converted,
    )


def customer_of(user, name: str):
    """A euro client owned by the user."""
    return client_create(by=user, name=name, email=f"{name.lower()}@example.com", currency="EUR")


def pay(client, amount: str, on: dt.date, by):
    """Invoice an untaxed amount and have it paid in full on a day."""
    draft = invoice_create(
        by=by,
        client=client,
        lines=[LineSpec("Work", Decimal(amount), taxable=False)],
        issued_on=on,
        due_on=on,
    )
    invoice = invoice_issue(by=by, invoice=draft)
    return payment_record(
        by=by,
        client=client,
        amount=Money.from_decimal(amount, "EUR"),
        method=PaymentMethod.BANK_TRANSFER,
        invoices=[(invoice, None)],
        received_on=on,
    )


def row(report, metric):
    return next(r for r in report.rows if r.metric == metric)


@pytest.fixture
def march_work(seller, other_seller, admin_user):
    """Marie's and Minh's work around March 2025."""
    for kind in ("call", "call", "meeting", "email", "quote_email"):
        log(seller, kind, IN_MARCH)
    log(seller, "call", IN_FEBRUARY)  # before the period
    log(seller, "call", IN_APRIL)  # after it
    log(seller, "call", IN_MARCH, done=False)  # only scheduled
    log(seller, "task", IN_MARCH)  # not a measured kind
    log(other_seller, "call", IN_MARCH)
    contacted = lead_of(seller, created=IN_MARCH, converted=IN_MARCH + dt.timedelta(days=3))
    log(seller, "call", IN_MARCH, lead=contacted)
    earlier = lead_of(seller, created=IN_FEBRUARY)
    log(seller, "email", IN_FEBRUARY, lead=earlier)  # first contact before March
    log(seller, "call", IN_MARCH, lead=earlier)
    lead_of(seller, created=IN_APRIL)
    lead_of(other_seller, created=IN_MARCH, converted=IN_MARCH)
    newcomer = customer_of(seller, "Newco")
    regular = customer_of(seller, "Regular")
    pay(regular, "100.00", dt.date(2025, 2, 10), admin_user)
    pay(regular, "250.50", dt.date(2025, 3, 31), admin_user)
    pay(newcomer, "1000.00", dt.date(2025, 3, 1), admin_user)
    pay(newcomer, "9.99", dt.date(2025, 4, 1), admin_user)
    pay(customer_of(other_seller, "Other"), "70.00", dt.date(2025, 3, 5), admin_user)


def test_person_report_counts_each_measure_by_its_definition(seller, march_work, admin_user):
    # Given Marie's work around March
    # When her March report is read by the administrator
    report = kpi_report(admin_user, Subject(user=seller), MARCH)
    # Then each measure counts only her done work of March
    counts = {r.metric: r.count for r in report.rows if r.count is not None}
    assert counts == {
        "calls": 4,
        "meetings": 1,
        "emails": 1,
        "quote_emails": 1,
        "new_leads": 1,
        "contacted": 1,
        "converted": 1,
        "new_buyers": 1,
        "returning_buyers": 1,
    }
    assert row(report, "revenue").revenue == (Money(125050, "EUR"),)
    assert report.members == []


def test_team_report_sums_the_people_below_the_unit(
    seller, other_seller, march_work, admin_user, org
):
    # Given work by Marie (team A) and Minh (team B) in March
    # When the branch's report is read
    report = kpi_report(admin_user, Subject(team=org["branch"]), MARCH)
    # Then the branch sums both, and each member has a row
    assert row(report, "calls").count == 5
    assert row(report, "new_leads").count == 2
    assert row(report, "converted").count == 2
    assert row(report, "new_buyers").count == 2
    assert row(report, "revenue").revenue == (Money(132050, "EUR"),)
    names = [member.user.username for member in report.members]
    assert names == ["marie", "minh"]
    assert row(report.members[1], "calls").count == 1
    # And team A counts Marie only
    team_a = kpi_report(admin_user, Subject(team=org["team_a"]), MARCH)
    assert row(team_a, "calls").count == 4


def test_report_reads_only_what_the_viewer_sees(seller, other_seller, march_work):
    # Given Minh's work is out of Marie's sight
    # When Marie asks for a subject by key
    # Then Minh and the teams are not found, herself is
    assert subject_for(seller, f"u{other_seller.pk}") is None
    assert subject_for(seller, f"t{seller.org_unit_id}") is None
    assert subject_for(seller, f"u{seller.pk}") == Subject(user=seller)
    assert subject_for(seller, "x1") is None
    assert subject_for(seller, "u") is None


def test_targets_give_percent_and_commission(seller, march_work, admin_user):
    # Given March targets for Marie: 5 calls, 2,000.00 EUR at 3.5 % commission
    common = {"by": admin_user, "user": seller, "period_start": MARCH.start}
    kpi_target_save(**common, period_end=MARCH.end, metric="calls", value=5)
    kpi_target_save(
        **common,
        period_end=MARCH.end,
        metric="revenue",
        value="2000.00",
        currency="EUR",
        commission_percent=Decimal("3.5"),
    )
    # And a target for another period, which the report leaves out
    kpi_target_save(**common, period_end=dt.date(2025, 3, 30), metric="meetings", value=9)
    # When her March report is read
    report = kpi_report(admin_user, Subject(user=seller), MARCH)
    # Then calls are at 80 %, revenue at 62.5 % and she earned 3.5 % of 1,250.50 EUR
    assert row(report, "calls").percent == Decimal("80.0")
    revenue = row(report, "revenue")
    assert revenue.percent == Decimal("62.5")
    assert revenue.target_money == Money(200000, "EUR")
    assert report.commission == (Money(4377, "EUR"),)  # 43.7675 → 43.77
    assert row(report, "meetings").target is None
    assert row(report, "meetings").percent is None


def test_team_report_uses_the_team_target_and_members_their_own(
    seller, other_seller, march_work, admin_user, org
):
    # Given a branch target of 10 calls and Minh's own of 2
    kpi_target_save(
        by=admin_user,
        org_unit=org["branch"],
        metric="calls",
        period_start=MARCH.start,
        period_end=MARCH.end,
        value=10,
    )
    kpi_target_save(
        by=admin_user,
        user=other_seller,
        metric="calls",
        period_start=MARCH.start,
        period_end=MARCH.end,
        value=2,
    )
    # When the branch report is read
    report = kpi_report(admin_user, Subject(team=org["branch"]), MARCH)
    # Then the branch is at 50 % and Minh at 50 %, Marie has no target
    assert row(report, "calls").percent == Decimal("50.0")
    marie, minh = report.members
    assert row(minh, "calls").percent == Decimal("50.0")
    assert row(marie, "calls").target is None


def test_report_costs_a_fixed_number_of_queries(
    seller, other_seller, march_work, admin_user, org, django_assert_num_queries
):
    # Given a team of two with work; when its report is read, then nine queries answer it
    with django_assert_num_queries(9):
        kpi_report(admin_user, Subject(team=org["branch"]), MARCH)
    with django_assert_num_queries(8):
        kpi_report(admin_user, Subject(user=seller), MARCH)


def test_empty_period_reports_zero(seller, admin_user):
    report = kpi_report(admin_user, Subject(user=seller), MARCH)
    assert all(r.count in (0, None) for r in report.rows)
    assert row(report, "revenue").revenue == ()
    assert report.commission == ()


def test_month_and_quarter_periods():
    assert month_period(dt.date(2024, 2, 14)) == Period(dt.date(2024, 2, 1), dt.date(2024, 2, 29))
    assert month_period(dt.date(2025, 12, 31)) == Period(
        dt.date(2025, 12, 1), dt.date(2025, 12, 31)
    )
    assert quarter_period(dt.date(2025, 5, 2)) == Period(dt.date(2025, 4, 1), dt.date(2025, 6, 30))
    assert quarter_period(dt.date(2025, 11, 30)) == Period(
        dt.date(2025, 10, 1), dt.date(2025, 12, 31)
    )


@given(
    minor=st.integers(min_value=0, max_value=10**13),
    percent=st.decimals(min_value=0, max_value=100, places=2),
)
def test_commission_rounds_half_up_once(minor, percent):
    # Given any revenue and percent, the commission is the exact product rounded half up
    exact = Fraction(minor) * Fraction(percent) / 100
    whole, rest = divmod(exact, 1)
    expected = int(whole) + (1 if rest >= Fraction(1, 2) else 0)
    assert commission(Money(minor, "EUR"), percent) == Money(expected, "EUR")


def test_commission_of_yen_rounds_to_whole_yen():
    assert commission(Money(1005, "JPY"), Decimal("10.00")) == Money(101, "JPY")


def test_target_keeps_revenue_in_minor_units(seller, admin_user):
    target = kpi_target_save(
        by=admin_user,
        user=seller,
        metric="revenue",
        period_start=MARCH.start,
        period_end=MARCH.end,
        value="1234.565",
        currency="eur",
    )
    target.refresh_from_db()
    assert (target.target, target.currency) == (123457, "EUR")
    assert KpiTarget.objects.count() == 1


def test_refunds_come_off_revenue_and_other_currencies_stay_apart(seller, admin_user):
    # Given Marie's euro client paid 300.00 in March and got 50.00 back out
    from clientbase.billing.services import refund_record

    payment = pay(customer_of(seller, "Newco"), "300.00", dt.date(2025, 3, 2), admin_user)
    invoice = payment.allocations.get().invoice
    with time_machine.travel(IN_MARCH, tick=False):
        refund_record(
            by=admin_user,
            amount=Money(5000, "EUR"),
            destination="out",
            reason="Goodwill",
            invoice=invoice,
            method=PaymentMethod.BANK_TRANSFER,
        )
    # And 10.00 more in April, which March does not see
    with time_machine.travel(IN_APRIL, tick=False):
        refund_record(
            by=admin_user,
            amount=Money(1000, "EUR"),
            destination="credit",
            reason="Late delivery",
            invoice=invoice,
        )
    # And her dollar client paid 20.00 USD
    dollars = client_create(by=seller, name="Yankee", email="y@example.com", currency="USD")
    draft = invoice_create(
        by=admin_user,
        client=dollars,
        lines=[LineSpec("Work", Decimal("20.00"), taxable=False)],
        issued_on=dt.date(2025, 3, 3),
        due_on=dt.date(2025, 3, 3),
    )
    payment_record(
        by=admin_user,
        client=dollars,
        amount=Money(2000, "USD"),
        method=PaymentMethod.BANK_TRANSFER,
        invoices=[(invoice_issue(by=admin_user, invoice=draft), None)],
        received_on=dt.date(2025, 3, 3),
    )
    kpi_target_save(
        by=admin_user,
        user=seller,
        metric="revenue",
        period_start=MARCH.start,
        period_end=MARCH.end,
        value="500",
        currency="EUR",
        commission_percent=Decimal("10"),
    )
    # When her March report is read
    report = kpi_report(admin_user, Subject(user=seller), MARCH)
    # Then revenue is 250.00 EUR and 20.00 USD, percent counts the euros only
    revenue = row(report, "revenue")
    assert revenue.revenue == (Money(25000, "EUR"), Money(2000, "USD"))
    assert revenue.percent == Decimal("50.0")
    assert report.commission == (Money(2500, "EUR"), Money(200, "USD"))
