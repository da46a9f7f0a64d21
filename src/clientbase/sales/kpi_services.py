"""Every change to a KPI target goes through here (SAL-8)."""

import datetime as dt
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from clientbase.accounts.models import OrgUnit, User
from clientbase.core.audit import audit_create, audit_delete, audit_update, snapshot
from clientbase.core.errors import ServiceError
from clientbase.core.money import Money, currency_exponent
from clientbase.core.visibility import may_assign
from clientbase.sales.models import KpiTarget

MAX_COMMISSION = Decimal(100)
# A count no team reaches in a period, and far inside a 64-bit column.
MAX_COUNT = 10**9
MAX_AMOUNT_MINOR = 10**15


def subject_in_sight(viewer, *, user: User | None = None, org_unit: OrgUnit | None = None) -> bool:
    """Whether a person or a team is within the viewer's sight (as assigning a record is)."""
    if user is not None:
        return user.is_active and may_assign(viewer, owner=user, org_unit=user.org_unit)
    if org_unit is not None:
        return may_assign(viewer, owner=None, org_unit=org_unit)
    return False


def _clean_subject(by, user: User | None, org_unit: OrgUnit | None) -> None:
    if (user is None) == (org_unit is None):
        raise ServiceError(_("Choose a person or a team, not both."), field="user")
    if not subject_in_sight(by, user=user, org_unit=org_unit):
        field = "user" if user is not None else "org_unit"
        raise ServiceError(_("You may not set targets for this person or team."), field=field)


def _clean_period(start: dt.date | None, end: dt.date | None) -> None:
    if start is None:
        raise ServiceError(_("Enter the first day of the period."), field="period_start")
    if end is None:
        raise ServiceError(_("Enter the last day of the period."), field="period_end")
    if end < start:
        raise ServiceError(_("The period ends before it starts."), field="period_end")


def _clean_commission(value) -> Decimal:
    try:
        percent = Decimal(value if value not in (None, "") else 0)
    except (InvalidOperation, TypeError, ValueError):
        raise ServiceError(_("Enter a percent such as 2.5."), field="commission_percent") from None
    if not percent.is_finite() or not Decimal(0) <= percent <= MAX_COMMISSION:
        raise ServiceError(_("Enter a percent from 0 to 100."), field="commission_percent")
    if percent.as_tuple().exponent < -2:
        raise ServiceError(_("Use at most two decimal places."), field="commission_percent")
    return percent.quantize(Decimal("0.01"))


def _clean_target(metric: str, target, currency: str) -> tuple[int, str]:
    """The stored target: a count, or for revenue the amount in minor units of its currency."""
    if metric == KpiTarget.Metric.REVENUE:
        currency = (currency or "").strip().upper()
        try:
            currency_exponent(currency)
        except ValueError:
            raise ServiceError(_("Choose a known currency."), field="currency") from None
        try:
            amount = Money.from_decimal(
                target if isinstance(target, Decimal) else str(target), currency
            )
        except (ValueError, TypeError):
            raise ServiceError(_("Enter an amount such as 15000.00."), field="target") from None
        if not 0 <= amount.minor <= MAX_AMOUNT_MINOR:
            raise ServiceError(_("Enter an amount of zero or more."), field="target")
        return amount.minor, currency
    try:
        count = Decimal(str(target))
    except (InvalidOperation, TypeError, ValueError):
        raise ServiceError(_("Enter a whole number."), field="target") from None
    if not count.is_finite() or count != count.to_integral_value():
        raise ServiceError(_("Enter a whole number."), field="target")
    if not 0 <= count <= MAX_COUNT:
        raise ServiceError(_("Enter a number from 0 to 1,000,000,000."), field="target")
    return int(count), ""


def _duplicate(target: KpiTarget) -> bool:
    # The unique constraint treats the empty person or team (NULL) as all different.
    twins = KpiTarget.objects.filter(
        user=target.user,
        org_unit=target.org_unit,
        metric=target.metric,
        period_start=target.period_start,
        period_end=target.period_end,
    )
    if target.pk:
        twins = twins.exclude(pk=target.pk)
    return twins.exists()


def kpi_target_save(
    *,
    by: User,
    target: KpiTarget | None = None,
    user: User | None = None,
    org_unit: OrgUnit | None = None,
    metric: str,
    period_start: dt.date | None,
    period_end: dt.date | None,
    value,
    currency: str = "",
    commission_percent=Decimal(0),
) -> KpiTarget:
    """Create or change a target; `value` is a count, or for revenue an amount in major units."""
    if target is not None and not subject_in_sight(by, user=target.user, org_unit=target.org_unit):
        raise ServiceError(_("You may not change this target."))
    _clean_subject(by, user, org_unit)
    if metric not in KpiTarget.Metric.values:
        raise ServiceError(_("Choose what to measure."), field="metric")
    _clean_period(period_start, period_end)
    stored, currency = _clean_target(metric, value, currency)
    percent = _clean_commission(commission_percent)
    target = target or KpiTarget()
    before = snapshot(target) if target.pk else None
    target.user, target.org_unit, target.metric = user, org_unit, metric
    target.period_start, target.period_end = period_start, period_end
    target.target, target.currency, target.commission_percent = stored, currency, percent
    refused = ServiceError(
        _("This person or team already has a target for this measure and period."),
        field="metric",
    )
    try:
        with transaction.atomic():
            # The lock serialises two people saving the same target at once on PostgreSQL.
            if user is not None:
                User.objects.select_for_update().filter(pk=user.pk).first()
            else:
                OrgUnit.objects.select_for_update().filter(pk=org_unit.pk).first()
            if _duplicate(target):
                raise refused
            target.save()
            if before is None:
                audit_create(target, by=by)
            else:
                audit_update(target, before, by=by)
    except IntegrityError:
        raise refused from None
    return target


def kpi_target_delete(*, by: User, target: KpiTarget) -> None:
    """Remove a target."""
    if not subject_in_sight(by, user=target.user, org_unit=target.org_unit):
        raise ServiceError(_("You may not remove this target."))
    with transaction.atomic():
        audit_delete(target, by=by)
        target.delete()
