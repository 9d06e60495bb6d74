"""The SLA clock as a ticket workflow drives it: start, timers, pauses, replies."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sla import (
    BusinessCalendar,
    ClockStatus,
    DeadlineKind,
    Priority,
    SlaClock,
    SlaClockError,
    SlaDeadline,
    SlaEventKind,
    SlaPolicy,
    SlaTarget,
    SlaTargetKind,
    Weekday,
    WorkingHours,
)

BERLIN = ZoneInfo("Europe/Berlin")
FIRST_RESPONSE = SlaTargetKind.first_response
RESOLUTION = SlaTargetKind.resolution
NINE_TO_FIVE = BusinessCalendar(
    timezone="Europe/Berlin",
    weekly_hours={
        day: [WorkingHours(start="09:00", end="17:00")]
        for day in (Weekday.monday, Weekday.tuesday, Weekday.wednesday, Weekday.thursday, Weekday.friday)
    },
)
# 4h to first response (warn after 3h), 16h to resolution (warn after 12h).
POLICY = SlaPolicy(
    priority=Priority.normal,
    target=SlaTarget(first_response=timedelta(hours=4), resolution=timedelta(hours=16)),
    warn_at=0.75,
)


def berlin(day: int, hour: int, minute: int = 0) -> datetime:
    """A time in the week of Monday 4 March 2024 (CET)."""
    return datetime(2024, 3, day, hour, minute, tzinfo=BERLIN)


def started_clock(now: datetime | None = None, policy: SlaPolicy = POLICY) -> SlaClock:
    """A clock started on Monday 4 March 09:00 unless told otherwise."""
    clock = SlaClock(calendar=NINE_TO_FIVE, policy=policy)
    clock.start(now or berlin(4, 9))
    return clock


def kinds(events) -> list[tuple[SlaEventKind, SlaTargetKind]]:
    return [(event.kind, event.target) for event in events]


def test_start_records_both_targets():
    clock = SlaClock(calendar=NINE_TO_FIVE, policy=POLICY)
    assert clock.next_deadline(berlin(4, 9)) is None
    events = clock.start(berlin(4, 9))
    assert kinds(events) == [(SlaEventKind.started, FIRST_RESPONSE), (SlaEventKind.started, RESOLUTION)]
    assert events[0].detail == "4h of business time"
    assert clock.status is ClockStatus.running
    assert clock.events == events


def test_warning_then_breach_at_the_right_times():
    clock = started_clock()

    warning = clock.next_deadline(berlin(4, 9))
    assert warning == SlaDeadline(kind=DeadlineKind.warning, target=FIRST_RESPONSE, at=berlin(4, 12))
    assert clock.on_timer(berlin(4, 11, 59)) == []  # an early timer changes nothing

    warned = clock.on_timer(berlin(4, 12))
    assert kinds(warned) == [(SlaEventKind.warned, FIRST_RESPONSE)]
    assert warned[0].at == berlin(4, 12)
    assert warned[0].detail == "75% of 4h used"

    assert clock.next_deadline(berlin(4, 12)) == SlaDeadline(
        kind=DeadlineKind.breach, target=FIRST_RESPONSE, at=berlin(4, 13)
    )
    breached = clock.on_timer(berlin(4, 13))
    assert kinds(breached) == [(SlaEventKind.breached, FIRST_RESPONSE)]

    # Resolution: 8h on Monday, 4h more on Tuesday for the warning, 8h on Tuesday for the breach.
    assert clock.next_deadline(berlin(4, 13)) == SlaDeadline(
        kind=DeadlineKind.warning, target=RESOLUTION, at=berlin(5, 13)
    )
    assert kinds(clock.on_timer(berlin(5, 13))) == [(SlaEventKind.warned, RESOLUTION)]
    assert clock.next_deadline(berlin(5, 13)) == SlaDeadline(
        kind=DeadlineKind.breach, target=RESOLUTION, at=berlin(5, 17)
    )
    assert kinds(clock.on_timer(berlin(5, 17))) == [(SlaEventKind.breached, RESOLUTION)]
    assert clock.next_deadline(berlin(5, 17)) is None


def test_repeated_timers_do_not_duplicate_warnings_or_breaches():
    clock = started_clock()
    clock.on_timer(berlin(4, 12))
    assert clock.on_timer(berlin(4, 12)) == []
    assert clock.on_timer(berlin(4, 12, 30)) == []
    clock.on_timer(berlin(4, 13))
    assert clock.on_timer(berlin(4, 13)) == []
    assert clock.on_timer(berlin(4, 16)) == []
    recorded = [event.kind for event in clock.events if event.target is FIRST_RESPONSE]
    assert recorded == [SlaEventKind.started, SlaEventKind.warned, SlaEventKind.breached]


def test_late_timer_records_everything_due_in_time_order():
    clock = started_clock()
    # The worker was down until Wednesday: all four thresholds were crossed meanwhile.
    events = clock.on_timer(berlin(6, 10))
    assert [(event.kind, event.target, event.at) for event in events] == [
        (SlaEventKind.warned, FIRST_RESPONSE, berlin(4, 12)),
        (SlaEventKind.breached, FIRST_RESPONSE, berlin(4, 13)),
        (SlaEventKind.warned, RESOLUTION, berlin(5, 13)),
        (SlaEventKind.breached, RESOLUTION, berlin(5, 17)),
    ]


def test_deadline_outside_hours_waits_for_the_next_business_day():
    clock = started_clock(berlin(8, 16))  # Friday 16:00
    assert clock.next_deadline(berlin(8, 16)).at == berlin(11, 11)  # 1h Friday + 2h Monday = 3h warning
    assert clock.on_timer(berlin(9, 12)) == []  # Saturday: nothing is due


def test_pause_shifts_the_deadline_by_the_paused_business_time():
    clock = started_clock()
    clock.met(berlin(4, 10), FIRST_RESPONSE)
    paused = clock.pause(berlin(4, 11))  # waiting on the customer after 2h
    assert kinds(paused) == [(SlaEventKind.paused, RESOLUTION)]
    assert paused[0].detail == "2h of 16h used"
    assert clock.next_deadline(berlin(4, 12)) is None
    # Far past the unpaused breach (Tuesday 17:00): a paused clock does not breach.
    assert clock.on_timer(berlin(6, 8)) == []

    resumed = clock.resume(berlin(6, 9))  # Wednesday morning
    assert kinds(resumed) == [(SlaEventKind.resumed, RESOLUTION)]
    assert resumed[0].detail == "14h left"
    # 10h to the warning: 8h Wednesday + 2h Thursday; 14h to breach: Thursday 15:00.
    assert clock.next_deadline(berlin(6, 9)) == SlaDeadline(
        kind=DeadlineKind.warning, target=RESOLUTION, at=berlin(7, 11)
    )
    clock.on_timer(berlin(7, 11))
    assert clock.next_deadline(berlin(7, 11)) == SlaDeadline(
        kind=DeadlineKind.breach, target=RESOLUTION, at=berlin(7, 15)
    )
    assert clock.business_time_used(RESOLUTION, berlin(7, 15)) == timedelta(hours=16)


def test_pause_records_thresholds_already_crossed_first():
    clock = started_clock()
    events = clock.pause(berlin(4, 12, 30))
    assert kinds(events) == [
        (SlaEventKind.warned, FIRST_RESPONSE),
        (SlaEventKind.paused, FIRST_RESPONSE),
        (SlaEventKind.paused, RESOLUTION),
    ]
    clock.resume(berlin(4, 15))
    assert clock.next_deadline(berlin(4, 15)) == SlaDeadline(
        kind=DeadlineKind.breach, target=FIRST_RESPONSE, at=berlin(4, 15, 30)
    )


def test_met_in_time_stops_that_target_only():
    clock = started_clock()
    events = clock.met(berlin(4, 10, 30), FIRST_RESPONSE)
    assert kinds(events) == [(SlaEventKind.met, FIRST_RESPONSE)]
    assert events[0].detail == "on time: 1h 30m used of 4h"
    assert clock.on_timer(berlin(4, 13)) == []  # the first-response breach time passes quietly
    assert clock.next_deadline(berlin(4, 13)).target is RESOLUTION
    assert clock.status is ClockStatus.running


def test_met_after_breach_is_recorded_as_late():
    clock = started_clock()
    events = clock.met(berlin(4, 14), FIRST_RESPONSE)  # no timer ran in between
    assert kinds(events) == [
        (SlaEventKind.warned, FIRST_RESPONSE),
        (SlaEventKind.breached, FIRST_RESPONSE),
        (SlaEventKind.met, FIRST_RESPONSE),
    ]
    assert events[-1].detail == "late: 5h used of 4h (1h over)"


def test_meeting_at_the_breach_instant_counts_as_breached():
    clock = started_clock()
    events = clock.met(berlin(4, 13), FIRST_RESPONSE)
    assert (SlaEventKind.breached, FIRST_RESPONSE) in kinds(events)


def test_all_targets_met_finishes_the_clock():
    clock = started_clock()
    clock.met(berlin(4, 10), FIRST_RESPONSE)
    clock.met(berlin(4, 11), RESOLUTION)
    assert clock.status is ClockStatus.finished
    assert clock.next_deadline(berlin(4, 11)) is None
    assert clock.on_timer(berlin(9, 0)) == []
    assert clock.pause(berlin(9, 1)) == []
    assert clock.met(berlin(9, 2), RESOLUTION) == []


def test_resolution_met_while_paused():
    clock = started_clock()
    clock.met(berlin(4, 10), FIRST_RESPONSE)
    clock.pause(berlin(4, 11))
    events = clock.met(berlin(5, 10), RESOLUTION)  # closed while waiting on the customer
    assert events[0].detail == "on time: 2h used of 16h"
    assert clock.status is ClockStatus.finished


def test_repeated_transitions_are_no_ops():
    clock = started_clock()
    assert clock.start(berlin(4, 9, 30)) == []
    assert clock.resume(berlin(4, 9, 30)) == []  # not paused
    clock.pause(berlin(4, 10))
    assert clock.pause(berlin(4, 10, 30)) == []
    clock.resume(berlin(4, 11))
    assert clock.resume(berlin(4, 11, 30)) == []
    clock.met(berlin(4, 12), FIRST_RESPONSE)
    assert clock.met(berlin(4, 12, 30), FIRST_RESPONSE) == []
    assert [event.kind for event in clock.events].count(SlaEventKind.paused) == 2  # one per target, once


def test_no_warnings_when_warn_at_is_unset():
    clock = started_clock(policy=POLICY.model_copy(update={"warn_at": None}))
    assert clock.next_deadline(berlin(4, 9)) == SlaDeadline(
        kind=DeadlineKind.breach, target=FIRST_RESPONSE, at=berlin(4, 13)
    )
    assert kinds(clock.on_timer(berlin(4, 13))) == [(SlaEventKind.breached, FIRST_RESPONSE)]


def test_clock_state_survives_serialisation_mid_pause():
    clock = started_clock()
    clock.on_timer(berlin(4, 12))
    clock.pause(berlin(4, 12, 30))
    restored = SlaClock.model_validate_json(clock.model_dump_json())
    assert restored == clock
    restored.resume(berlin(5, 9))
    assert restored.next_deadline(berlin(5, 9)) == SlaDeadline(
        kind=DeadlineKind.breach, target=FIRST_RESPONSE, at=berlin(5, 9, 30)
    )


def test_deadlines_are_utc():
    assert started_clock().next_deadline(berlin(4, 9)).at == datetime(2024, 3, 4, 11, tzinfo=UTC)


# --- refused use ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "action",
    [
        lambda clock: clock.pause(berlin(4, 9)),
        lambda clock: clock.resume(berlin(4, 9)),
        lambda clock: clock.met(berlin(4, 9), FIRST_RESPONSE),
    ],
)
def test_clock_must_be_started_first(action):
    clock = SlaClock(calendar=NINE_TO_FIVE, policy=POLICY)
    with pytest.raises(SlaClockError, match="not been started"):
        action(clock)
    assert clock.events == []


def test_time_must_not_go_backwards():
    clock = started_clock(berlin(4, 10))
    with pytest.raises(SlaClockError, match="backwards"):
        clock.on_timer(berlin(4, 9))
    assert len(clock.events) == 2


@pytest.mark.parametrize(
    "action",
    [
        lambda clock: clock.start(datetime(2024, 3, 4, 9)),
        lambda clock: clock.on_timer(datetime(2024, 3, 4, 9)),
        lambda clock: clock.next_deadline(datetime(2024, 3, 4, 9)),
    ],
)
def test_naive_times_are_rejected(action):
    with pytest.raises(ValueError, match="timezone-aware"):
        action(SlaClock(calendar=NINE_TO_FIVE, policy=POLICY))
