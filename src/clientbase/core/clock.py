"""The only source of "now" and "today", so that tests and reruns can travel in time."""

import calendar
import datetime as dt
import zoneinfo

from django.conf import settings
from django.utils import timezone


def now() -> dt.datetime:
    """The current instant, aware, in UTC."""
    return timezone.now()


def company_timezone() -> zoneinfo.ZoneInfo:
    """The company's time zone, in which billing dates are reckoned."""
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def today() -> dt.date:
    """Today's date in the company time zone."""
    return now().astimezone(company_timezone()).date()


def start_of_day(day: dt.date) -> dt.datetime:
    """The aware instant a company day begins, in UTC."""
    # In UTC, because a local midnight skipped or repeated by a clock change compares unequal
    # to every instant of another zone (PEP 495), and local datetimes subtract as wall time.
    # fold=0 picks the first midnight when it repeats, and the moment clocks jump when it is
    # skipped, which is when that day begins.
    local = dt.datetime.combine(day, dt.time.min, tzinfo=company_timezone())
    return local.astimezone(dt.UTC)


def months_before(instant: dt.datetime, months: int) -> dt.datetime:
    """The same moment `months` calendar months earlier (31 March - 1 month: 28/29 February)."""
    month_index = instant.year * 12 + instant.month - 1 - months
    year, month = divmod(month_index, 12)
    month += 1
    last_day = calendar.monthrange(year, month)[1]
    return instant.replace(year=year, month=month, day=min(instant.day, last_day))
