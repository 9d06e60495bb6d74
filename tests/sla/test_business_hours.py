"""Business-hours arithmetic: what a customer would see as an SLA deadline."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from sla import (
    BusinessCalendar,
    Weekday,
    WorkingHours,
    add_business_time,
    business_time_between,
    is_business_time,
    next_business_moment,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS = [Weekday.monday, Weekday.tuesday, Weekday.wednesday, Weekday.thursday, Weekday.friday]


def hours(*spans: tuple[str, str]) -> list[WorkingHours]:
    return [WorkingHours(start=start, end=end) for start, end in spans]


def office(zone: str, *, days=WEEKDAYS, spans=(("09:00", "17:00"),), holidays=()) -> BusinessCalendar:
    return BusinessCalendar(timezone=zone, weekly_hours={day: hours(*spans) for day in days}, holidays=list(holidays))


def at(zone: ZoneInfo, *parts: int, fold: int = 0) -> datetime:
    return datetime(*parts, tzinfo=zone, fold=fold)


BERLIN_OFFICE = office("Europe/Berlin")


# --- plain weekdays ------------------------------------------------------------------------


def test_within_one_day():
    assert add_business_time(BERLIN_OFFICE, at(BERLIN, 2024, 3, 4, 10), timedelta(hours=3)) == at(
        BERLIN, 2024, 3, 4, 13
    )


def test_result_is_utc_aware():
    result = add_business_time(BERLIN_OFFICE, at(BERLIN, 2024, 3, 4, 10), timedelta(hours=3))
    assert result.tzinfo is UTC
    assert result == datetime(2024, 3, 4, 12, tzinfo=UTC)


def test_friday_afternoon_rolls_over_the_weekend():
    friday_4pm = at(BERLIN, 2024, 3, 8, 16)
    assert add_business_time(BERLIN_OFFICE, friday_4pm, timedelta(hours=2)) == at(BERLIN, 2024, 3, 11, 10)
    assert business_time_between(BERLIN_OFFICE, friday_4pm, at(BERLIN, 2024, 3, 11, 10)) == timedelta(hours=2)


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (at(BERLIN, 2024, 3, 4, 7), at(BERLIN, 2024, 3, 4, 10)),  # before opening
        (at(BERLIN, 2024, 3, 4, 18), at(BERLIN, 2024, 3, 5, 10)),  # after closing
        (at(BERLIN, 2024, 3, 9, 12), at(BERLIN, 2024, 3, 11, 10)),  # Saturday
        (at(BERLIN, 2024, 3, 10, 23, 59), at(BERLIN, 2024, 3, 11, 10)),  # Sunday night
    ],
)
def test_start_outside_hours_counts_from_next_opening(start, expected):
    assert add_business_time(BERLIN_OFFICE, start, timedelta(hours=1)) == expected


def test_opening_instant_is_business_time_and_closing_instant_is_not():
    assert is_business_time(BERLIN_OFFICE, at(BERLIN, 2024, 3, 4, 9))
    assert is_business_time(BERLIN_OFFICE, at(BERLIN, 2024, 3, 4, 16, 59, 59))
    assert not is_business_time(BERLIN_OFFICE, at(BERLIN, 2024, 3, 4, 17))
    assert not is_business_time(BERLIN_OFFICE, at(BERLIN, 2024, 3, 4, 8, 59, 59))
    assert not is_business_time(BERLIN_OFFICE, at(BERLIN, 2024, 3, 9, 12))


def test_duration_ending_at_closing_time_lands_on_closing_time_not_next_morning():
    assert add_business_time(BERLIN_OFFICE, at(BERLIN, 2024, 3, 4, 9), timedelta(hours=8)) == at(BERLIN, 2024, 3, 4, 17)


def test_starting_at_closing_time_continues_next_morning():
    assert add_business_time(BERLIN_OFFICE, at(BERLIN, 2024, 3, 4, 17), timedelta(minutes=1)) == at(
        BERLIN, 2024, 3, 5, 9, 1
    )


def test_zero_duration_is_the_start_itself():
    saturday = at(BERLIN, 2024, 3, 9, 12)
    assert add_business_time(BERLIN_OFFICE, saturday, timedelta(0)) == saturday


def test_next_business_moment():
    assert next_business_moment(BERLIN_OFFICE, at(BERLIN, 2024, 3, 4, 11)) == at(BERLIN, 2024, 3, 4, 11)
    assert next_business_moment(BERLIN_OFFICE, at(BERLIN, 2024, 3, 8, 17)) == at(BERLIN, 2024, 3, 11, 9)
    assert next_business_moment(BERLIN_OFFICE, at(BERLIN, 2024, 3, 4, 8)) == at(BERLIN, 2024, 3, 4, 9)


def test_several_intervals_a_day_skip_the_lunch_break():
    calendar = office("Europe/Berlin", spans=(("09:00", "12:00"), ("13:00", "17:00")))
    assert add_business_time(calendar, at(BERLIN, 2024, 3, 4, 11), timedelta(hours=2)) == at(BERLIN, 2024, 3, 4, 14)
    assert not is_business_time(calendar, at(BERLIN, 2024, 3, 4, 12, 30))
    assert business_time_between(calendar, at(BERLIN, 2024, 3, 4, 0), at(BERLIN, 2024, 3, 5, 0)) == timedelta(hours=7)


def test_closed_days_differ_per_weekday():
    # Saturday morning only; Sunday closed.
    calendar = BusinessCalendar(
        timezone="Europe/Berlin",
        weekly_hours={
            **{day: hours(("09:00", "17:00")) for day in WEEKDAYS},
            Weekday.saturday: hours(("10:00", "14:00")),
        },
    )
    assert add_business_time(calendar, at(BERLIN, 2024, 3, 8, 16), timedelta(hours=3)) == at(BERLIN, 2024, 3, 9, 12)
    assert add_business_time(calendar, at(BERLIN, 2024, 3, 9, 13), timedelta(hours=2)) == at(BERLIN, 2024, 3, 11, 10)


# --- holidays ------------------------------------------------------------------------------


def test_holiday_is_skipped():
    calendar = office("Europe/Berlin", holidays=[date(2024, 5, 1)])
    # Tuesday 16:00 + 2h: one hour on Tuesday, Wednesday 1 May closed, one hour on Thursday.
    assert add_business_time(calendar, at(BERLIN, 2024, 4, 30, 16), timedelta(hours=2)) == at(BERLIN, 2024, 5, 2, 10)
    assert not is_business_time(calendar, at(BERLIN, 2024, 5, 1, 12))
    assert next_business_moment(calendar, at(BERLIN, 2024, 5, 1, 12)) == at(BERLIN, 2024, 5, 2, 9)


def test_holidays_next_to_a_weekend():
    calendar = office("Europe/Berlin", holidays=[date(2024, 12, 24), date(2024, 12, 25), date(2024, 12, 26)])
    # Friday 20 Dec 16:00 + 2h: 1h Friday, Monday 23rd 09:00-10:00.
    assert add_business_time(calendar, at(BERLIN, 2024, 12, 20, 16), timedelta(hours=2)) == at(BERLIN, 2024, 12, 23, 10)
    # Monday 23rd 16:00 + 2h: 1h Monday, then Tue-Thu closed, Friday 27th 10:00.
    assert add_business_time(calendar, at(BERLIN, 2024, 12, 23, 16), timedelta(hours=2)) == at(BERLIN, 2024, 12, 27, 10)


# --- long durations ------------------------------------------------------------------------


def test_two_weeks_of_business_time():
    start = at(BERLIN, 2024, 1, 8, 9)  # Monday
    assert add_business_time(BERLIN_OFFICE, start, timedelta(hours=80)) == at(BERLIN, 2024, 1, 19, 17)


def test_four_weeks_with_a_holiday_and_a_dst_change():
    calendar = office("Europe/Berlin", holidays=[date(2024, 4, 1)])  # Easter Monday
    start, end = at(BERLIN, 2024, 3, 18, 0), at(BERLIN, 2024, 4, 15, 0)  # DST began 31 March
    assert business_time_between(calendar, start, end) == timedelta(hours=8 * 19)


def test_add_and_between_agree_over_months():
    calendar = office("America/New_York", spans=(("08:30", "12:00"), ("12:45", "17:15")), holidays=[date(2024, 7, 4)])
    start = at(NEW_YORK, 2024, 2, 27, 15, 10)
    for duration in (timedelta(minutes=1), timedelta(hours=7, minutes=44), timedelta(hours=400), timedelta(hours=1000)):
        deadline = add_business_time(calendar, start, duration)
        assert business_time_between(calendar, start, deadline) == duration
        assert is_business_time(calendar, deadline - timedelta(seconds=1))


def test_between_is_negative_when_reversed():
    a, b = at(BERLIN, 2024, 3, 4, 10), at(BERLIN, 2024, 3, 5, 10)
    assert business_time_between(BERLIN_OFFICE, a, b) == timedelta(hours=8)
    assert business_time_between(BERLIN_OFFICE, b, a) == -timedelta(hours=8)
    assert business_time_between(BERLIN_OFFICE, a, a) == timedelta(0)


def test_between_outside_hours_is_zero():
    assert business_time_between(BERLIN_OFFICE, at(BERLIN, 2024, 3, 8, 17), at(BERLIN, 2024, 3, 11, 9)) == timedelta(0)


# --- time zones ----------------------------------------------------------------------------


def test_same_instant_on_calendars_in_different_zones():
    monday_13_utc = datetime(2024, 1, 8, 13, tzinfo=UTC)  # 08:00 in New York, 14:00 in Berlin
    new_york = office("America/New_York")
    assert not is_business_time(new_york, monday_13_utc)
    assert is_business_time(BERLIN_OFFICE, monday_13_utc)
    assert add_business_time(new_york, monday_13_utc, timedelta(hours=1)) == datetime(2024, 1, 8, 15, tzinfo=UTC)
    # Berlin: 14:00-17:00 is 3h, the fourth hour is Tuesday 09:00-10:00 CET.
    assert add_business_time(BERLIN_OFFICE, monday_13_utc, timedelta(hours=4)) == datetime(2024, 1, 9, 9, tzinfo=UTC)


def test_input_offset_does_not_matter():
    tokyo = ZoneInfo("Asia/Tokyo")
    same_instant = datetime(2024, 1, 8, 22, tzinfo=tokyo)  # 13:00 UTC
    assert add_business_time(BERLIN_OFFICE, same_instant, timedelta(hours=1)) == datetime(2024, 1, 8, 14, tzinfo=UTC)


# --- daylight saving time ------------------------------------------------------------------

EVERY_DAY = list(Weekday)


@pytest.mark.parametrize(
    ("zone", "spring", "autumn"),
    [
        ("Europe/Berlin", date(2024, 3, 31), date(2024, 10, 27)),
        ("America/New_York", date(2024, 3, 10), date(2024, 11, 3)),
    ],
)
def test_nine_to_five_is_eight_hours_on_dst_days(zone, spring, autumn):
    calendar = office(zone, days=EVERY_DAY)
    tz = ZoneInfo(zone)
    for day in (spring, autumn):
        start = datetime.combine(day, time(0), tz)
        assert business_time_between(calendar, start, start + timedelta(days=1)) == timedelta(hours=8)
        assert add_business_time(calendar, start, timedelta(hours=8)) == datetime(
            day.year, day.month, day.day, 17, tzinfo=tz
        )


@pytest.mark.parametrize(
    ("zone", "spring", "autumn"),
    [
        ("Europe/Berlin", date(2024, 3, 31), date(2024, 10, 27)),
        ("America/New_York", date(2024, 3, 10), date(2024, 11, 3)),
    ],
)
def test_night_shift_spanning_the_change_counts_real_time(zone, spring, autumn):
    # 00:00-04:00 loses the skipped hour in spring and gains the repeated one in autumn.
    calendar = office(zone, days=EVERY_DAY, spans=(("00:00", "04:00"),))
    tz = ZoneInfo(zone)

    def night(day: date) -> timedelta:
        return business_time_between(calendar, datetime.combine(day, time(0), tz), datetime.combine(day, time(12), tz))

    assert night(spring) == timedelta(hours=3)
    assert night(autumn) == timedelta(hours=5)
    assert night(spring - timedelta(days=1)) == timedelta(hours=4)


def test_berlin_spring_forward_deadline_lands_after_the_jump():
    calendar = office("Europe/Berlin", days=EVERY_DAY, spans=(("00:00", "04:00"),))
    midnight = at(BERLIN, 2024, 3, 31, 0)  # 23:00 UTC
    # Two real hours after midnight CET the wall clock already reads 03:00 CEST.
    assert add_business_time(calendar, midnight, timedelta(hours=2)) == at(BERLIN, 2024, 3, 31, 3)
    assert add_business_time(calendar, midnight, timedelta(hours=3)) == at(BERLIN, 2024, 3, 31, 4)
    assert add_business_time(calendar, midnight, timedelta(hours=3, minutes=1)) == at(BERLIN, 2024, 4, 1, 0, 1)


def test_new_york_fall_back_repeated_hour_is_business_time_both_times():
    calendar = office("America/New_York", days=EVERY_DAY, spans=(("01:00", "02:00"),))
    first_pass = at(NEW_YORK, 2024, 11, 3, 1, 30, fold=0)  # EDT, 05:30 UTC
    second_pass = at(NEW_YORK, 2024, 11, 3, 1, 30, fold=1)  # EST, 06:30 UTC
    assert is_business_time(calendar, first_pass)
    assert is_business_time(calendar, second_pass)
    assert add_business_time(calendar, at(NEW_YORK, 2024, 11, 3, 1), timedelta(hours=2)) == datetime(
        2024, 11, 3, 7, tzinfo=UTC
    )


def test_interval_opening_inside_the_skipped_hour_opens_at_the_jump():
    # 02:30 does not exist in Berlin on 31 March 2024; the clock jumps from 02:00 CET to 03:00 CEST.
    calendar = office("Europe/Berlin", days=EVERY_DAY, spans=(("02:30", "05:00"),))
    before = datetime(2024, 3, 31, 0, 30, tzinfo=UTC)  # 01:30 CET
    jump = datetime(2024, 3, 31, 1, tzinfo=UTC)
    assert not is_business_time(calendar, before)
    assert next_business_moment(calendar, before) == jump
    assert is_business_time(calendar, jump)
    assert business_time_between(calendar, before, at(BERLIN, 2024, 3, 31, 12)) == timedelta(hours=2)
    # In autumn it opens at the first 02:30 (CEST) and closes at 05:00 CET.
    assert business_time_between(calendar, at(BERLIN, 2024, 10, 27, 0), at(BERLIN, 2024, 10, 27, 12)) == timedelta(
        hours=3, minutes=30
    )


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York"])
@pytest.mark.parametrize(
    "start_utc",
    [
        datetime(2024, 3, 9, 12, tzinfo=UTC),
        datetime(2024, 10, 26, 12, tzinfo=UTC),
        datetime(2024, 11, 2, 12, tzinfo=UTC),
    ],
)
def test_24x7_is_elapsed_real_time_across_dst(zone, start_utc):
    calendar = BusinessCalendar.always_open(zone)
    for duration in (timedelta(hours=1), timedelta(hours=24), timedelta(days=30, minutes=7)):
        assert add_business_time(calendar, start_utc, duration) == start_utc + duration
        assert business_time_between(calendar, start_utc, start_utc + duration) == duration
    assert is_business_time(calendar, start_utc)


def test_24x7_across_berlin_dst_weekend_days():
    calendar = BusinessCalendar.always_open("Europe/Berlin")
    assert business_time_between(calendar, at(BERLIN, 2024, 3, 30, 12), at(BERLIN, 2024, 3, 31, 12)) == timedelta(
        hours=23
    )
    assert business_time_between(calendar, at(BERLIN, 2024, 10, 26, 12), at(BERLIN, 2024, 10, 27, 12)) == timedelta(
        hours=25
    )


def test_24x7_still_closes_on_holidays():
    calendar = BusinessCalendar.always_open("Europe/Berlin", holidays=[date(2024, 12, 25)])
    assert business_time_between(calendar, at(BERLIN, 2024, 12, 24, 0), at(BERLIN, 2024, 12, 27, 0)) == timedelta(
        hours=48
    )


# --- refused input -------------------------------------------------------------------------

NAIVE = datetime(2024, 3, 4, 10)


@pytest.mark.parametrize(
    "call",
    [
        lambda: add_business_time(BERLIN_OFFICE, NAIVE, timedelta(hours=1)),
        lambda: business_time_between(BERLIN_OFFICE, NAIVE, datetime(2024, 3, 5, tzinfo=UTC)),
        lambda: business_time_between(BERLIN_OFFICE, datetime(2024, 3, 5, tzinfo=UTC), NAIVE),
        lambda: next_business_moment(BERLIN_OFFICE, NAIVE),
        lambda: is_business_time(BERLIN_OFFICE, NAIVE),
    ],
)
def test_naive_datetimes_are_rejected(call):
    with pytest.raises(ValueError, match="timezone-aware"):
        call()


def test_negative_duration_is_rejected():
    with pytest.raises(ValueError, match="negative"):
        add_business_time(BERLIN_OFFICE, at(BERLIN, 2024, 3, 4, 10), timedelta(hours=-1))


@pytest.mark.parametrize(
    ("weekly_hours", "timezone", "message"),
    [
        ({Weekday.monday: [("09:00", "12:00"), ("11:00", "17:00")]}, "Europe/Berlin", "overlap"),
        ({Weekday.monday: [("17:00", "09:00")]}, "Europe/Berlin", "end after they start"),
        ({Weekday.monday: []}, "Europe/Berlin", "at least one weekday"),
        ({}, "Europe/Berlin", "at least one weekday"),
        ({Weekday.monday: [("09:00", "17:00")]}, "Europe/Atlantis", "unknown time zone"),
        ({Weekday.monday: [("20:00", "24:00"), ("23:00", "23:30")]}, "Europe/Berlin", "overlap"),
    ],
)
def test_invalid_calendars_are_refused(weekly_hours, timezone, message):
    with pytest.raises(ValueError, match=message):
        BusinessCalendar(
            timezone=timezone,
            weekly_hours={day: [{"start": s, "end": e} for s, e in spans] for day, spans in weekly_hours.items()},
        )


def test_calendar_survives_a_json_round_trip():
    calendar = BusinessCalendar(
        timezone="America/New_York",
        weekly_hours={Weekday.friday: hours(("20:00", "24:00")), Weekday.saturday: hours(("00:00", "02:00"))},
        holidays=[date(2024, 7, 4), date(2024, 7, 4)],
    )
    assert calendar.holidays == [date(2024, 7, 4)]
    restored = BusinessCalendar.model_validate_json(calendar.model_dump_json())
    assert restored == calendar
    # A late shift through midnight is continuous business time.
    friday_11pm = at(NEW_YORK, 2024, 3, 1, 23)
    assert add_business_time(restored, friday_11pm, timedelta(hours=2)) == at(NEW_YORK, 2024, 3, 2, 1)
