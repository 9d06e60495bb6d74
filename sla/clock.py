"""The SLA clock of one ticket, driven by its workflow with explicit times.

The workflow keeps an ``SlaClock`` in its state, feeds it what happened (``start``,
``pause`` while the ticket waits on the customer, ``resume``, ``met``) with
``workflow.now()``, sleeps on a durable timer until ``next_deadline``, and then calls
``on_timer``. The clock never reads the time itself, so the same calls give the same
events on replay.

Methods change the clock in place and return the events they added, so the workflow can
act on them (notify, escalate) while ``events`` keeps the full record for the ticket.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, Field

from sla.business_hours import BusinessCalendar, add_business_time, business_time_between, require_aware_utc
from sla.policy import SlaPolicy, SlaTargetKind


class SlaEventKind(StrEnum):
    started = "started"
    paused = "paused"
    resumed = "resumed"
    warned = "warned"
    breached = "breached"
    met = "met"


class SlaEvent(BaseModel):
    """One line of the ticket's SLA history.

    For ``warned`` and ``breached``, ``at`` is when the threshold was crossed, which may be a
    little before the timer that noticed it fired.
    """

    kind: SlaEventKind
    target: SlaTargetKind
    at: AwareDatetime
    detail: str = ""


class DeadlineKind(StrEnum):
    warning = "warning"
    breach = "breach"


class SlaDeadline(BaseModel):
    """When the workflow's next SLA timer should fire, and what it is for."""

    kind: DeadlineKind
    target: SlaTargetKind
    at: AwareDatetime


class ClockStatus(StrEnum):
    not_started = "not_started"
    running = "running"
    paused = "paused"
    finished = "finished"  # every target met; nothing more can happen


class TargetProgress(BaseModel):
    """How far one target has got.

    ``used`` is the business time consumed up to ``running_since`` (or in total, once the
    target is paused or met); counting from the last resume rather than from the start is
    what makes a pause push the deadline out by exactly the paused business time.
    """

    used: timedelta = timedelta(0)
    running_since: AwareDatetime | None = None
    warned: bool = False
    breached: bool = False
    met_at: AwareDatetime | None = None


class SlaClockError(ValueError):
    """The workflow drove the clock out of order (e.g. paused it before starting it)."""


class SlaClock(BaseModel):
    """Both SLA targets of one ticket, their progress, and the events so far.

    Create it with the ticket's resolved policy and business calendar, then ``start`` it.
    Pausing stops every target not yet met; each target is met on its own.
    """

    calendar: BusinessCalendar
    policy: SlaPolicy
    status: ClockStatus = ClockStatus.not_started
    first_response: TargetProgress = Field(default_factory=TargetProgress)
    resolution: TargetProgress = Field(default_factory=TargetProgress)
    events: list[SlaEvent] = Field(default_factory=list)
    updated_at: AwareDatetime | None = None

    # --- transitions -------------------------------------------------------------------

    def start(self, now: datetime) -> list[SlaEvent]:
        """Start both targets. Starting again is a no-op, so a retried signal is harmless."""
        now = self._advance(now)
        if self.status is not ClockStatus.not_started:
            return []
        self.status = ClockStatus.running
        added = []
        for kind, progress in self._targets():
            progress.running_since = now
            added.append(self._event(SlaEventKind.started, kind, now, f"{_fmt(self._budget(kind))} of business time"))
        return self._record(added)

    def pause(self, now: datetime) -> list[SlaEvent]:
        """Stop counting (ticket waits on the customer). Thresholds already crossed are
        recorded first so the history stays in time order."""
        self._require_started("pause")
        now = self._advance(now)
        if self.status is not ClockStatus.running:
            return []
        added = self._catch_up(now)
        for kind, progress in self._open_targets():
            self._stop(progress, now)
            added.append(
                self._event(SlaEventKind.paused, kind, now, f"{_fmt(progress.used)} of {_fmt(self._budget(kind))} used")
            )
        self.status = ClockStatus.paused
        return self._record(added)

    def resume(self, now: datetime) -> list[SlaEvent]:
        """Count again from ``now``; what was used before the pause carries over."""
        self._require_started("resume")
        now = self._advance(now)
        if self.status is not ClockStatus.paused:
            return []
        added = []
        for kind, progress in self._open_targets():
            progress.running_since = now
            left = self._budget(kind) - progress.used
            detail = f"{_fmt(left)} left" if not progress.breached else "already breached"
            added.append(self._event(SlaEventKind.resumed, kind, now, detail))
        self.status = ClockStatus.running
        return self._record(added)

    def met(self, now: datetime, target: SlaTargetKind) -> list[SlaEvent]:
        """Mark ``target`` done (first reply sent / ticket resolved). Meeting it again is a
        no-op; meeting it late is still recorded, with how late, for reporting."""
        self._require_started("meet a target of")
        now = self._advance(now)
        progress = self._progress(target)
        if progress.met_at is not None:
            return []
        added = self._catch_up(now)
        self._stop(progress, now)
        progress.met_at = now
        budget = self._budget(target)
        if progress.breached:
            detail = f"late: {_fmt(progress.used)} used of {_fmt(budget)} ({_fmt(progress.used - budget)} over)"
        else:
            detail = f"on time: {_fmt(progress.used)} used of {_fmt(budget)}"
        added.append(self._event(SlaEventKind.met, target, now, detail))
        if all(p.met_at is not None for _, p in self._targets()):
            self.status = ClockStatus.finished
        return self._record(added)

    def on_timer(self, now: datetime) -> list[SlaEvent]:
        """Record warnings and breaches due by ``now``; each is recorded once, however often
        this is called."""
        now = self._advance(now)
        if self.status is not ClockStatus.running:
            return []
        return self._record(self._catch_up(now))

    # --- reads -------------------------------------------------------------------------

    def next_deadline(self, now: datetime) -> SlaDeadline | None:
        """The next warning or breach the workflow must wake up for; ``None`` while paused
        or when nothing is left. An ``at`` not after ``now`` means call ``on_timer`` now."""
        require_aware_utc(now, "now")
        if self.status is not ClockStatus.running:
            return None
        candidates = []
        for kind, progress in self._open_targets():
            pending = self._pending_thresholds(kind, progress)
            if pending:
                deadline_kind, amount = pending[0]
                candidates.append(SlaDeadline(kind=deadline_kind, target=kind, at=self._instant(progress, amount)))
        # min() keeps the first of equal times: first response before resolution.
        return min(candidates, key=lambda deadline: deadline.at, default=None)

    def breach_at(self, target: SlaTargetKind) -> datetime | None:
        """When ``target`` breaches if nothing changes; ``None`` once met or while paused
        (a paused clock has no deadline). Shown to agents as the task's due time."""
        progress = self._progress(target)
        if progress.met_at is not None or progress.running_since is None:
            return None
        return self._instant(progress, self._budget(target))

    def business_time_used(self, target: SlaTargetKind, now: datetime) -> timedelta:
        """Business time ``target`` has consumed by ``now``, for showing on the ticket."""
        now = require_aware_utc(now, "now")
        progress = self._progress(target)
        if progress.running_since is None:
            return progress.used
        return progress.used + business_time_between(self.calendar, progress.running_since, now)

    # --- internals ---------------------------------------------------------------------

    def _advance(self, now: datetime) -> datetime:
        now = require_aware_utc(now, "now")
        if self.updated_at is not None and now < self.updated_at:
            raise SlaClockError(
                f"time went backwards: {now.isoformat()} is before the clock's last update"
                f" {self.updated_at.isoformat()}"
            )
        self.updated_at = now
        return now

    def _require_started(self, action: str) -> None:
        if self.status is ClockStatus.not_started:
            raise SlaClockError(f"cannot {action} an SLA clock that has not been started")

    def _targets(self) -> list[tuple[SlaTargetKind, TargetProgress]]:
        return [(SlaTargetKind.first_response, self.first_response), (SlaTargetKind.resolution, self.resolution)]

    def _open_targets(self) -> list[tuple[SlaTargetKind, TargetProgress]]:
        return [(kind, progress) for kind, progress in self._targets() if progress.met_at is None]

    def _progress(self, target: SlaTargetKind) -> TargetProgress:
        return self.first_response if SlaTargetKind(target) is SlaTargetKind.first_response else self.resolution

    def _budget(self, target: SlaTargetKind) -> timedelta:
        return self.policy.target.budget(target)

    def _pending_thresholds(
        self, kind: SlaTargetKind, progress: TargetProgress
    ) -> list[tuple[DeadlineKind, timedelta]]:
        budget = self._budget(kind)
        pending = []
        if self.policy.warn_at is not None and not progress.warned and not progress.breached:
            pending.append((DeadlineKind.warning, budget * self.policy.warn_at))
        if not progress.breached:
            pending.append((DeadlineKind.breach, budget))
        return pending

    def _instant(self, progress: TargetProgress, amount: timedelta) -> datetime:
        assert progress.running_since is not None
        return add_business_time(self.calendar, progress.running_since, max(amount - progress.used, timedelta(0)))

    def _catch_up(self, now: datetime) -> list[SlaEvent]:
        due = []
        for kind, progress in self._open_targets():
            if progress.running_since is None:
                continue
            for deadline_kind, amount in self._pending_thresholds(kind, progress):
                at = self._instant(progress, amount)
                if at > now:
                    break
                if deadline_kind is DeadlineKind.warning:
                    progress.warned = True
                    detail = f"{round(self.policy.warn_at * 100)}% of {_fmt(self._budget(kind))} used"
                    due.append(self._event(SlaEventKind.warned, kind, at, detail))
                else:
                    progress.breached = True
                    due.append(self._event(SlaEventKind.breached, kind, at, f"{_fmt(amount)} used up"))
        # Stable sort: at equal times first response comes first, and a warning before its breach.
        return sorted(due, key=lambda event: event.at)

    def _stop(self, progress: TargetProgress, now: datetime) -> None:
        if progress.running_since is not None:
            progress.used += business_time_between(self.calendar, progress.running_since, now)
            progress.running_since = None

    @staticmethod
    def _event(kind: SlaEventKind, target: SlaTargetKind, at: datetime, detail: str) -> SlaEvent:
        return SlaEvent(kind=kind, target=target, at=at, detail=detail)

    def _record(self, added: list[SlaEvent]) -> list[SlaEvent]:
        self.events.extend(added)
        return added


def _fmt(duration: timedelta) -> str:
    """Business time in hours and minutes: "26h 15m" reads better than "1 day, 2:15:00",
    which would suggest a calendar day."""
    seconds = int(duration.total_seconds())
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours and minutes:
        return f"{sign}{hours}h {minutes}m"
    if hours:
        return f"{sign}{hours}h"
    if minutes or not secs:
        return f"{sign}{minutes}m"
    return f"{sign}{secs}s"
