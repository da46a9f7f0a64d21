"""Setting and removing KPI targets: validation, sight and one target per measure and period."""

import datetime as dt
from decimal import Decimal

import pytest

from clientbase.core.errors import ServiceError
from clientbase.core.models import AuditEntry
from clientbase.sales.kpi_services import kpi_target_delete, kpi_target_save
from clientbase.sales.models import KpiTarget

APRIL = {"period_start": dt.date(2025, 4, 1), "period_end": dt.date(2025, 4, 30)}


def refused(call, **kwargs) -> dict:
    with pytest.raises(ServiceError) as error:
        call(**kwargs)
    return error.value.message_dict


def test_team_target_is_one_per_measure_and_period(sales_manager, org):
    # Given a team target for April calls
    kpi_target_save(by=sales_manager, org_unit=org["team_a"], metric="calls", value=30, **APRIL)
    # When a second one is set for the same team, measure and period
    errors = refused(
        kpi_target_save,
        by=sales_manager,
        org_unit=org["team_a"],
        metric="calls",
        value=40,
        **APRIL,
    )
    # Then it is refused at the measure and the first stays
    assert errors == {
        "metric": ["This person or team already has a target for this measure and period."]
    }
    assert list(KpiTarget.objects.values_list("target", flat=True)) == [30]
    # And another team or another period is fine
    kpi_target_save(by=sales_manager, org_unit=org["team_b"], metric="calls", value=20, **APRIL)
    kpi_target_save(
        by=sales_manager,
        org_unit=org["team_a"],
        metric="calls",
        value=90,
        period_start=dt.date(2025, 4, 1),
        period_end=dt.date(2025, 6, 30),
    )
    assert KpiTarget.objects.count() == 3


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"period_end": dt.date(2025, 3, 31)}, "period_end", "The period ends before it starts."),
        ({"period_start": None}, "period_start", "Enter the first day of the period."),
        ({"value": -1}, "target", "Enter a number from 0 to 1,000,000,000."),
        ({"value": "1.5"}, "target", "Enter a whole number."),
        ({"value": "many"}, "target", "Enter a whole number."),
        ({"metric": "smiles"}, "metric", "Choose what to measure."),
        ({"commission_percent": "100.01"}, "commission_percent", "Enter a percent from 0 to 100."),
        ({"commission_percent": "1.234"}, "commission_percent", "Use at most two decimal places."),
        ({"commission_percent": "x"}, "commission_percent", "Enter a percent such as 2.5."),
        ({"metric": "revenue", "currency": "XXQ"}, "currency", "Choose a known currency."),
        (
            {"metric": "revenue", "currency": "EUR", "value": "-5"},
            "target",
            "Enter an amount of zero or more.",
        ),
        (
            {"metric": "revenue", "currency": "EUR", "value": "NaN"},
            "target",
            "Enter an amount such as 15000.00.",
        ),
    ],
)
def test_bad_input_is_refused_at_its_field(sales_manager, seller, changes, field, message):
    kwargs = {"by": sales_manager, "user": seller, "metric": "calls", "value": 10} | APRIL
    assert refused(kpi_target_save, **(kwargs | changes)) == {field: [message]}
    assert not KpiTarget.objects.exists()


def test_person_and_team_at_once_is_refused(sales_manager, seller, org):
    errors = refused(
        kpi_target_save,
        by=sales_manager,
        user=seller,
        org_unit=org["team_a"],
        metric="calls",
        value=1,
        **APRIL,
    )
    assert errors == {"user": ["Choose a person or a team, not both."]}


def test_nobody_sets_targets_outside_their_sight(seller, other_seller, sales_manager, org):
    # A seller may not set Minh's target nor a team's, a manager not the company's
    errors = refused(
        kpi_target_save, by=seller, user=other_seller, metric="calls", value=1, **APRIL
    )
    assert errors == {"user": ["You may not set targets for this person or team."]}
    errors = refused(
        kpi_target_save, by=seller, org_unit=org["team_a"], metric="calls", value=1, **APRIL
    )
    assert errors == {"org_unit": ["You may not set targets for this person or team."]}
    errors = refused(
        kpi_target_save,
        by=sales_manager,
        org_unit=org["company"],
        metric="calls",
        value=1,
        **APRIL,
    )
    assert errors == {"org_unit": ["You may not set targets for this person or team."]}
    assert not KpiTarget.objects.exists()


def test_change_and_delete_are_audited(sales_manager, seller):
    target = kpi_target_save(by=sales_manager, user=seller, metric="calls", value=10, **APRIL)
    kpi_target_save(
        by=sales_manager,
        target=target,
        user=seller,
        metric="calls",
        value=12,
        commission_percent=Decimal("1.5"),
        **APRIL,
    )
    target.refresh_from_db()
    assert (target.target, target.commission_percent) == (12, Decimal("1.50"))
    pk = target.pk
    kpi_target_delete(by=sales_manager, target=target)
    assert not KpiTarget.objects.exists()
    actions = AuditEntry.objects.filter(object_type__model="kpitarget", object_id=str(pk))
    assert sorted(actions.values_list("action", flat=True)) == ["create", "delete", "update"]


def test_delete_out_of_sight_is_refused(make_user, sales_manager, seller):
    target = kpi_target_save(by=sales_manager, user=seller, metric="calls", value=10, **APRIL)
    manager_b = make_user("bob", role="manager", unit="team_b")
    assert refused(kpi_target_delete, by=manager_b, target=target) == {
        "__all__": ["You may not remove this target."]
    }
    assert KpiTarget.objects.filter(pk=target.pk).exists()
