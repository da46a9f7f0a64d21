"""The clock: now in UTC, today and the start of a day in the company time zone."""

import datetime as dt
import zoneinfo

import pytest
import time_machine

from clientbase.core import clock

INSTANT = dt.datetime(2026, 3, 31, 20, 0, tzinfo=dt.UTC)


def test_now_is_the_current_instant_aware_in_utc():
    """now() is the travelled-to instant, with the UTC zone attached."""
    with time_machine.travel(INSTANT, tick=False):
        now = clock.now()

    assert now == INSTANT
    assert now.tzinfo is dt.UTC
    assert now.utcoffset() == dt.timedelta(0)


def test_now_is_utc_whatever_the_company_time_zone(settings):
    """The company zone changes dates, never the zone of an instant."""
    settings.TIME_ZONE = "Asia/Ho_Chi_Minh"

    with time_machine.travel(INSTANT, tick=False):
        now = clock.now()

    assert (now, now.tzinfo) == (INSTANT, dt.UTC)


def test_now_moves_with_time():
    """Successive calls follow the clock."""
    with time_machine.travel(INSTANT, tick=False) as traveller:
        before = clock.now()
        traveller.shift(dt.timedelta(hours=5, seconds=1))
        after = clock.now()

    assert after - before == dt.timedelta(hours=5, seconds=1)


@pytest.mark.parametrize(
    ("zone", "instant", "day"),
    [
        ("UTC", INSTANT, dt.date(2026, 3, 31)),
        ("Asia/Ho_Chi_Minh", INSTANT, dt.date(2026, 4, 1)),  # 03:00 on 1 April at +07
        (
            "Asia/Ho_Chi_Minh",
            dt.datetime(2026, 3, 31, 16, 59, 59, tzinfo=dt.UTC),
            dt.date(2026, 3, 31),
        ),
        ("Asia/Ho_Chi_Minh", dt.datetime(2026, 3, 31, 17, 0, tzinfo=dt.UTC), dt.date(2026, 4, 1)),
        ("Europe/Paris", dt.datetime(2026, 3, 31, 21, 59, tzinfo=dt.UTC), dt.date(2026, 3, 31)),
        ("Europe/Paris", dt.datetime(2026, 3, 31, 22, 0, tzinfo=dt.UTC), dt.date(2026, 4, 1)),
        (
            "America/Los_Angeles",
            dt.datetime(2026, 4, 1, 6, 59, tzinfo=dt.UTC),
            dt.date(2026, 3, 31),
        ),
        ("America/Los_Angeles", dt.datetime(2026, 4, 1, 7, 0, tzinfo=dt.UTC), dt.date(2026, 4, 1)),
    ],
)
def test_today_is_the_date_in_the_company_time_zone(settings, zone, instant, day):
    """today() is the calendar date the company sees at that instant."""
    settings.TIME_ZONE = zone

    with time_machine.travel(instant, tick=False):
        today = clock.today()

    assert today == day
    assert clock.company_timezone() == zoneinfo.ZoneInfo(zone)


def test_today_follows_a_change_of_company_time_zone(settings):
    """The zone is read from settings each time, not cached from start-up."""
    with time_machine.travel(INSTANT, tick=False):
        settings.TIME_ZONE = "UTC"
        in_utc = clock.today()
        settings.TIME_ZONE = "Asia/Ho_Chi_Minh"
        in_saigon = clock.today()

    assert (in_utc, in_saigon) == (dt.date(2026, 3, 31), dt.date(2026, 4, 1))


@pytest.mark.parametrize(
    ("zone", "day", "instant"),
    [
        ("UTC", dt.date(2026, 4, 1), dt.datetime(2026, 4, 1, 0, 0, tzinfo=dt.UTC)),
        ("Asia/Ho_Chi_Minh", dt.date(2026, 4, 1), dt.datetime(2026, 3, 31, 17, 0, tzinfo=dt.UTC)),
        # Paris moves to summer time at 02:00 on 29 March 2026: midnight is still +01.
        ("Europe/Paris", dt.date(2026, 3, 29), dt.datetime(2026, 3, 28, 23, 0, tzinfo=dt.UTC)),
        ("Europe/Paris", dt.date(2026, 3, 30), dt.datetime(2026, 3, 29, 22, 0, tzinfo=dt.UTC)),
        # Havana skips from 00:00 to 01:00 on 10 March 2024: the day starts at 01:00 (-04).
        ("America/Havana", dt.date(2024, 3, 10), dt.datetime(2024, 3, 10, 5, 0, tzinfo=dt.UTC)),
        # Havana repeats 00:00-01:00 on 3 November 2024: the day starts at the first one.
        ("America/Havana", dt.date(2024, 11, 3), dt.datetime(2024, 11, 3, 4, 0, tzinfo=dt.UTC)),
    ],
)
def test_start_of_day_is_the_first_instant_of_the_company_day(settings, zone, day, instant):
    """start_of_day() is a UTC instant, and today() turns from the day before to that day there."""
    settings.TIME_ZONE = zone

    start = clock.start_of_day(day)

    assert start == instant
    assert start.tzinfo is dt.UTC
    with time_machine.travel(instant - dt.timedelta(microseconds=1), tick=False):
        assert clock.today() == day - dt.timedelta(days=1)
    with time_machine.travel(instant, tick=False):
        assert clock.today() == day


def test_a_company_day_lasts_as_long_as_the_clocks_say(settings):
    """Days that lose or gain an hour to summer time are 23 and 25 hours long."""
    settings.TIME_ZONE = "Europe/Paris"

    spring = clock.start_of_day(dt.date(2026, 3, 30)) - clock.start_of_day(dt.date(2026, 3, 29))
    autumn = clock.start_of_day(dt.date(2026, 10, 26)) - clock.start_of_day(dt.date(2026, 10, 25))
    plain = clock.start_of_day(dt.date(2026, 4, 2)) - clock.start_of_day(dt.date(2026, 4, 1))

    assert (spring, autumn, plain) == (
        dt.timedelta(hours=23),
        dt.timedelta(hours=25),
        dt.timedelta(hours=24),
    )
