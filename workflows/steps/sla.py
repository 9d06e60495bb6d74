"""The SLA supervisor: a case's clock, and the durable timers that act on it.

The clock itself (``sla/clock.py``) is pure: it says when targets warn and breach, in business
hours. The supervisor starts it when the case is opened, pauses and resumes it as the case's
status changes (:meth:`SlaSupervisor.follow`, called by ``set_status``), and runs a watcher
beside the case that sleeps until the next deadline, then records the warning or breach and
carries out the policy's escalations: raise the priority, move open tasks to another queue,
notify someone. It is an object the case holds (``self.sla``), not a step in ``run``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.task import TaskStatus
    from models.case import SlaSummary
    from models.ticket import TicketStatus
    from sla.clock import SlaClock, SlaEvent, SlaEventKind
    from sla.policy import MoveToQueue, Notify, RaisePriority, SlaTargetKind

from workflows.steps import metrics

if TYPE_CHECKING:
    from workflows.steps.base import CaseBase

# While the customer is asked something, the clock does not run.
WAITING_ON_CUSTOMER = (TicketStatus.waiting_customer, TicketStatus.bot_answered)
_COUNTED = {SlaEventKind.warned: "sla_warnings", SlaEventKind.breached: "sla_breaches"}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class SlaSupervisor:
    def __init__(self, case: CaseBase) -> None:
        self.case = case
        self.clock: SlaClock | None = None
        self._changes = 0  # bumped on every change to the clock: the watcher re-reads its deadline
        self._stopped = False
        self._watcher: asyncio.Task | None = None

    def start(self) -> None:
        """Start the clock at the moment the customer wrote, under the policy that matches the
        case's priority, department and tier, and the watcher beside it. No SLA configured
        for the case: nothing runs."""
        case = self.case
        config = case.input.sla
        if config is None or self.clock is not None:
            return
        s = case.snapshot
        policy = config.policy_for(s.priority, s.department, case.customer_tier)
        self.clock = SlaClock(calendar=config.calendar, policy=policy)
        self.apply(self.clock.start(s.opened_at))
        self._watcher = asyncio.create_task(self._watch())

    def resume(self, clock: SlaClock | None) -> None:
        """Take over the clock of the run before, and watch it again."""
        self.clock = clock
        if clock is not None:
            self._watcher = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        """Stop watching (the case ends, or hands over to a new run) and wait for the watcher."""
        self._stopped = True
        if self._watcher is not None:
            await self._watcher

    def due_at(self) -> datetime | None:
        """When the next target breaches; tasks carry it so the inbox can sort by it."""
        if self.clock is None:
            return None
        due = [t for t in (self.clock.breach_at(k) for k in SlaTargetKind) if t is not None]
        return min(due) if due else None

    def met(self, target: SlaTargetKind) -> None:
        if self.clock is not None:
            self.apply(self.clock.met(workflow.now(), target))

    def follow(self, previous: TicketStatus, status: TicketStatus) -> None:
        """The case's status changed: pause, resume or stop the clock to match."""
        if self.clock is None:
            return
        now = workflow.now()
        if status in WAITING_ON_CUSTOMER:
            self.apply(self.clock.pause(now))
        elif previous in WAITING_ON_CUSTOMER:
            self.apply(self.clock.resume(now))
        if status in (TicketStatus.resolved, TicketStatus.closed):
            for target in SlaTargetKind:
                self.apply(self.clock.met(now, target))
        if status == TicketStatus.closed:
            self._stopped = True

    def apply(self, events: list[SlaEvent]) -> None:
        """Record what the clock said, carry out the escalations of a breach, and keep the
        case's SLA summary and its tasks' due times current."""
        case = self.case
        for event in events:
            case.record(f"sla_{event.kind.value}", f"{event.target.value}: {event.detail}".rstrip(": "),
                        target=event.target.value)
            if event.kind in _COUNTED:
                metrics.count(_COUNTED[event.kind], target=event.target.value, department=case.snapshot.department)
            if event.kind == SlaEventKind.breached:
                self._escalate(event.target)
        self._changes += 1
        if self.clock is not None:
            case.snapshot.context["sla"] = SlaSummary(
                policy=self.clock.policy.model_dump(mode="json", include={"priority", "department", "tier", "target"}),
                status=self.clock.status.value,
                first_response_due=_iso(self.clock.breach_at(SlaTargetKind.first_response)),
                resolution_due=_iso(self.clock.breach_at(SlaTargetKind.resolution)),
                breached=[k.value for k in SlaTargetKind if getattr(self.clock, k.value).breached],
            ).model_dump(mode="json")
        due = self.due_at()
        for task in case.live_tasks():
            if task.due_at != due:
                case.change_task(task, due_at=due)

    def _escalate(self, target: SlaTargetKind) -> None:
        assert self.clock is not None
        case = self.case
        s = case.snapshot
        live = case.live_tasks()
        for step in self.clock.policy.escalations_for(target):
            if isinstance(step, RaisePriority):
                s.priority = s.priority.raised()
                for task in live:
                    case.change_task(task, priority=s.priority)
                case.record("escalated", f"priority raised to {s.priority.value} ({target.value} breached)")
            elif isinstance(step, MoveToQueue):
                for task in live:
                    if task.status == TaskStatus.open and task.queue != step.queue:
                        case.change_task(task, queue=step.queue, routing=f"moved: {target.value} SLA breached")
                        case.record("escalated", f"task moved to {step.queue} ({target.value} breached)",
                                    task_id=task.task_id)
            elif isinstance(step, Notify):
                case.record("sla_notified", f"{step.recipient}: {target.value} SLA breached",
                            recipient=step.recipient)
        case._task_events += 1  # wakes a waiting task step so it re-routes in its new queue

    def _done(self) -> bool:
        return self._stopped or self.case._handing_over

    async def _watch(self) -> None:
        case = self.case
        while not self._done() and self.clock is not None:
            now = workflow.now()
            deadline = self.clock.next_deadline(now)
            seen = self._changes
            fired = False
            if deadline is not None and deadline.at <= now:
                fired = True
            else:
                try:
                    await workflow.wait_condition(lambda: self._changes != seen or self._done(),
                                                  timeout=(deadline.at - now) if deadline else None)
                except TimeoutError:
                    fired = True
            if self._done():
                return
            if fired:
                self.apply(self.clock.on_timer(workflow.now()))
            # a list: a task may be created while a projection is awaited
            for task in case.live_tasks():
                await case.publish_task(task)
            await case.publish()
