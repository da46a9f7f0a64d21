"""Billing arithmetic: line amounts, periods and day-based proration, exact in Decimal."""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from clientbase.catalog.models import CYCLE_MONTHS
from clientbase.core.money import Money, currency_exponent, round_half_up

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class LineAmounts:
    """A line's net amount and tax in minor units."""

    net_minor: int
    tax_minor: int


def line_amounts(
    *,
    quantity: Decimal,
    unit_price: Decimal,
    discount_percent: Decimal,
    tax_rate: Decimal,
    taxable: bool,
    tax_inclusive: bool,
    currency: str,
) -> LineAmounts:
    """Quantity × unit price less the discount, rounded half-up once; tax rounded per line."""
    scale = Decimal(10) ** currency_exponent(currency)
    gross = round_half_up(quantity * unit_price * scale * (HUNDRED - discount_percent) / HUNDRED)
    if not taxable or not tax_rate:
        return LineAmounts(gross, 0)
    if tax_inclusive:
        tax = round_half_up(Decimal(gross) * tax_rate / (HUNDRED + tax_rate))
        return LineAmounts(gross - tax, tax)
    return LineAmounts(gross, round_half_up(Decimal(gross) * tax_rate / HUNDRED))


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` later, or the month's last day when it is shorter."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def next_due(start: dt.date, cycle: str) -> dt.date | None:
    """When a period that starts on `start` ends (exclusive); None for cycles that never renew."""
    months = CYCLE_MONTHS.get(cycle)
    return add_months(start, months) if months else None


def aligned_due(start: dt.date, cycle: str, billing_day: int) -> dt.date | None:
    """Where the first period of a co-termed service ends (exclusive): the next billing day.

    A service starting on the billing day itself runs a whole cycle; any other starts a
    short first period, so that from then on its periods share the client's dates.
    """
    if cycle not in CYCLE_MONTHS:
        return None
    if start.day == billing_day:
        return next_due(start, cycle)
    candidate = start.replace(day=billing_day)
    return candidate if candidate > start else add_months(candidate, 1)


def prorate(amount: Money, days: int, cycle_days: int) -> Money:
    """The share of `amount` for `days` of a `cycle_days` cycle, rounded half-up once."""
    if cycle_days <= 0:
        raise ValueError("A cycle lasts at least one day")
    if not 0 <= days <= cycle_days:
        raise ValueError(f"{days} days do not fit in a cycle of {cycle_days}")
    return Money(round_half_up(Decimal(amount.minor) * days / cycle_days), amount.currency)
