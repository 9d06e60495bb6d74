"""Business-hours arithmetic for SLA deadlines.

Working hours are wall-clock hours in the calendar's time zone, but business time is
measured in real elapsed time: the span between the moment the clock on the office wall
first shows the opening time and the moment it first shows the closing time. That makes
09:00-17:00 eight hours on every day of the year (DST changes happen at night), makes a
24x7 calendar equal to plain elapsed time, and gives night intervals their true length
on DST days: 00:00-04:00 in Berlin is 3 hours on the spring-forward day and 5 hours on
the fall-back day, because that is how long the night shift actually worked.

Everything here is deterministic and free of I/O apart from the tz database that
``zoneinfo`` loads once per zone, so workflow code may call it. Results are UTC-aware.
Deadlines depend on the zone rules installed (the ``tzdata`` package or the system's), so
a rule change shipped between a run and its replay can move them: upgrade tzdata like
any other change to workflow code.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_MIDNIGHT = time(0)
_ONE_DAY = timedelta(days=1)


class Weekday(StrEnum):
    # Declared in date.weekday() order so the enum can be indexed by it.
    monday = "monday"
    tuesday = "tuesday"
    wednesday = "wednesday"
    thursday = "thursday"
    friday = "friday"
    saturday = "saturday"
    sunday = "sunday"


_WEEKDAYS = list(Weekday)


class WorkingHours(BaseModel):
    """One opening interval of a day, ``[start, end)`` in the calendar's wall-clock time.

    ``end`` may be given as ``"24:00"`` (stored as 00:00) so an interval can reach the end
    of the day; a shift that runs past midnight is written as two intervals on two days.
    """

    model_config = ConfigDict(frozen=True)

    start: time
    end: time

    @field_validator("end", mode="before")
    @classmethod
    def _end_of_day(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip() in {"24:00", "24:00:00"}:
            return _MIDNIGHT
        return value

    @model_validator(mode="after")
    def _ordered(self) -> WorkingHours:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("working hours are wall-clock times of the calendar's zone; drop the UTC offset")
        if self.end != _MIDNIGHT and self.end <= self.start:
            raise ValueError(
                f"working hours must end after they start (got {self.start.isoformat()}-{self.end.isoformat()}); "
                "split a shift that crosses midnight into two days"
            )
        return self

    @property
    def ends_at_midnight(self) -> bool:
        return self.end == _MIDNIGHT


class BusinessCalendar(BaseModel):
    """When a team counts as working: weekly opening hours in one IANA zone, minus holidays.

    A weekday missing from ``weekly_hours`` (or with an empty list) is closed. Holidays close
    the whole local day.
    """

    model_config = ConfigDict(frozen=True)

    timezone: str = Field(description="IANA zone name, e.g. Europe/Berlin")
    weekly_hours: dict[Weekday, list[WorkingHours]]
    holidays: list[date] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'Europe/Berlin'") from exc
        return value

    @field_validator("weekly_hours")
    @classmethod
    def _sorted_without_overlap(cls, value: dict[Weekday, list[WorkingHours]]) -> dict[Weekday, list[WorkingHours]]:
        # Overlapping intervals would count the same hour twice, so refuse them here
        # rather than silently shortening every deadline.
        result: dict[Weekday, list[WorkingHours]] = {}
        for day in _WEEKDAYS:
            intervals = sorted(value.get(day, []), key=lambda hours: hours.start)
            for earlier, later in pairwise(intervals):
                if earlier.ends_at_midnight or later.start < earlier.end:
                    raise ValueError(f"working hours on {day.value} overlap")
            if intervals:
                result[day] = intervals
        if not result:
            raise ValueError("a business calendar needs working hours on at least one weekday")
        return result

    @field_validator("holidays")
    @classmethod
    def _unique_holidays(cls, value: list[date]) -> list[date]:
        return sorted(set(value))

    @classmethod
    def always_open(cls, timezone: str = "UTC", holidays: list[date] | None = None) -> BusinessCalendar:
        """A 24x7 calendar; business time equals real elapsed time (outside holidays)."""
        whole_day = [WorkingHours(start=_MIDNIGHT, end=_MIDNIGHT)]
        return cls(timezone=timezone, weekly_hours={day: whole_day for day in Weekday}, holidays=holidays or [])


def is_business_time(calendar: BusinessCalendar, t: datetime) -> bool:
    """Whether ``t`` falls inside working hours (opening instant included, closing excluded)."""
    t = require_aware_utc(t, "t")
    start, _ = next(_open_spans(calendar, t))
    return start <= t


def next_business_moment(calendar: BusinessCalendar, t: datetime) -> datetime:
    """``t`` itself during working hours, otherwise the next opening instant."""
    t = require_aware_utc(t, "t")
    start, _ = next(_open_spans(calendar, t))
    return max(start, t)


def add_business_time(calendar: BusinessCalendar, start: datetime, duration: timedelta) -> datetime:
    """The earliest instant at which ``duration`` of business time has passed since ``start``.

    Landing exactly on a closing time returns that closing time, not the next opening, so a
    deadline reads "today 17:00" rather than "tomorrow 09:00". A zero duration returns
    ``start`` unchanged, even outside working hours.
    """
    start = require_aware_utc(start, "start")
    if duration < timedelta(0):
        raise ValueError(f"duration must not be negative (got {duration})")
    remaining = duration
    if not remaining:
        return start
    for span_start, span_end in _open_spans(calendar, start):
        span_start = max(span_start, start)
        available = span_end - span_start
        if remaining <= available:
            return span_start + remaining
        remaining -= available
    raise AssertionError("unreachable: _open_spans never ends")


def business_time_between(calendar: BusinessCalendar, a: datetime, b: datetime) -> timedelta:
    """Business time from ``a`` to ``b``; negative when ``b`` is before ``a`` so that
    "time left until the deadline" can be read off directly."""
    a = require_aware_utc(a, "a")
    b = require_aware_utc(b, "b")
    if b < a:
        return -business_time_between(calendar, b, a)
    total = timedelta(0)
    for span_start, span_end in _open_spans(calendar, a):
        if span_start >= b:
            break
        total += min(span_end, b) - max(span_start, a)
    return total


def require_aware_utc(value: datetime, name: str) -> datetime:
    """``value`` in UTC; naive datetimes are refused because they would be read in the
    machine's zone, which can differ between the worker that ran a workflow and the one
    replaying it."""
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{name} must be timezone-aware (got naive {value.isoformat()}); pass workflow.now() or a UTC time"
        )
    return value.astimezone(UTC)


def _open_spans(calendar: BusinessCalendar, t: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Opening spans in UTC, in order, from the first one that ends after ``t``; endless.

    Walks local days rather than minutes so a deadline weeks away costs a few dozen zone
    conversions. Starts a day early because with DST a span of the previous local date
    can still be open at ``t``. Terminates for every valid calendar: at least one weekday
    is open and the holiday list is finite.
    """
    zone = ZoneInfo(calendar.timezone)
    holidays = frozenset(calendar.holidays)
    day = t.astimezone(zone).date() - _ONE_DAY
    while True:
        if day not in holidays:
            for hours in calendar.weekly_hours.get(_WEEKDAYS[day.weekday()], ()):
                span_start = _first_instant_showing(zone, day, hours.start)
                span_end = _first_instant_showing(zone, day + _ONE_DAY if hours.ends_at_midnight else day, hours.end)
                # An interval lying wholly inside a spring-forward gap never happens.
                if span_end > t and span_start < span_end:
                    yield span_start, span_end
        day += _ONE_DAY


def _first_instant_showing(zone: ZoneInfo, day: date, wall: time) -> datetime:
    """The first instant at which a wall clock in ``zone`` shows ``day`` ``wall`` or later.

    A repeated (fall-back) time maps to its first occurrence; a skipped (spring-forward) time
    maps to the instant of the jump, when the clock passes it. Mapping both ends of every
    interval the same way keeps back-to-back intervals (and 24x7) gap-free.
    """
    naive = datetime.combine(day, wall)
    first = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first <= second:
        return first
    # Skipped time: the jump lies in (second, first]. zoneinfo exposes no transition list,
    # so bisect on whole seconds (tz transitions are on whole seconds): ~12 steps per hour.
    before, after = int(second.timestamp()), int(first.timestamp())
    while after - before > 1:
        middle = (before + after) // 2
        if datetime.fromtimestamp(middle, zone).replace(tzinfo=None) >= naive:
            after = middle
        else:
            before = middle
    return datetime.fromtimestamp(after, UTC)
