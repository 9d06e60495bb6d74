"""The case itself: its state, its timeline, its status, and the read model that shows it.

Every other part builds on :class:`CaseBase`. Status changes go through
:meth:`CaseBase.set_status` (or :meth:`~CaseBase.resolve` and :meth:`~CaseBase.close`), which
records them on the timeline and moves the SLA clock with them: a step that changes the
status never has to remember the clock.
"""

from __future__ import annotations

import asyncio
import copy
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

from workflows.steps import metrics
from workflows.steps.sla import SlaSupervisor

with workflow.unsafe.imports_passed_through():
    from models.auth import AccessDecision
    from models.customer360 import Customer360
    from models.task import TaskSnapshot, TaskStatus
    from models.ticket import (
        CaseStep,
        ConversationEntry,
        TicketChanges,
        TicketInput,
        TicketSnapshot,
        TicketStatus,
        TimelineEvent,
    )
    from sla.policy import CustomerTier

# The read model is ours: keep retrying until the database is back, however long it takes.
PROJECTION = dict(
    start_to_close_timeout=timedelta(seconds=15),
    retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=30)),
)
# Marks code that projects changes instead of snapshots and continues as new; histories
# recorded before it replay along the old path.
BOUNDED_HISTORY_PATCH = "bounded-history"
_SETTLED = (TicketStatus.resolved, TicketStatus.closed)


class CaseBase:
    """State every case has, and the calls that change it."""

    # The registered name of the case type this workflow runs (workflows/registry.py); it is
    # on the case and its tasks in the read model, so lists and the inbox can filter by it.
    CASE_TYPE = "support-ticket"

    def __init__(self) -> None:
        self.state: TicketSnapshot | None = None
        self.input: TicketInput
        self.tasks: dict[str, TaskSnapshot] = {}
        self.sla = SlaSupervisor(self)
        self.customer360: Customer360 | None = None  # what the gather step found, typed
        self.tier_from_systems: CustomerTier | None = None
        self.step: CaseStep | None = None  # set by runs that can continue as new from their steps
        self._task_events = 0  # bumped on every change to a task; steps that wait on tasks watch it
        self._background: list[asyncio.Task] = []  # steps that run beside the case; finish() collects them
        self._handing_over = False  # continuing as new: nothing is projected meanwhile
        self._unpublished_tasks: dict[str, None] = {}
        self._bounded = False  # see BOUNDED_HISTORY_PATCH
        self._publishing = asyncio.Lock()  # changes are projected one after another, in order
        self._published_conversation = 0
        self._published_timeline = 0
        self._published_context: dict[str, Any] | None = None
        self._published_revision = -1

    # --- opening ---------------------------------------------------------------------------

    def open(self, inp: TicketInput) -> TicketSnapshot:
        info = workflow.info()
        self.input = inp
        self._bounded = workflow.patched(BOUNDED_HISTORY_PATCH)
        self.state = TicketSnapshot(
            ticket_id=inp.ticket_id,
            case_type=self.CASE_TYPE,
            workflow_id=info.workflow_id,
            customer_id=inp.customer_id,
            subject=inp.subject,
            body=inp.body,
            channel=inp.channel,
            order_id=inp.order_id,
            priority=inp.priority,
            department=inp.department,
            external_ref=inp.external_ref,
            intake_key=inp.intake_key,
            conversation_id=inp.conversation_id,
            status=TicketStatus.new,
            opened_at=inp.opened_at,
            updated_at=workflow.now(),
            revision=0,
            conversation=[
                ConversationEntry(
                    id=inp.opening_message_id or f"{inp.ticket_id}-opening", direction="in",
                    author=inp.customer_id, text=inp.body, at=inp.opened_at,
                )
            ],
        )
        self.opened(inp)
        self.record("opened", f"via {inp.channel.value}", department=inp.department, priority=inp.priority.value)
        metrics.count("cases_opened", case_type=self.CASE_TYPE, channel=inp.channel.value)
        return self.state

    def opened(self, inp: TicketInput) -> None:
        """Hook for parts that set themselves up from the input when the case opens."""

    def customer_answered(self) -> None:
        """Hook: what the customer wrote so far is answered (the conversation part counts it)."""

    @property
    def snapshot(self) -> TicketSnapshot:
        assert self.state is not None, "open() runs first"
        return self.state

    @property
    def customer_tier(self) -> CustomerTier:
        """Tier given with the case, else what the order system said, else standard."""
        return self.input.customer_tier or self.tier_from_systems or CustomerTier.standard

    # --- the timeline and the status -------------------------------------------------------

    def record(self, kind: str, detail: str = "", **data: Any) -> None:
        """Add a decision to the case's timeline (and bump its revision)."""
        s = self.snapshot
        s.timeline.append(TimelineEvent(at=workflow.now(), kind=kind, detail=detail, data=data))
        s.revision += 1
        s.updated_at = workflow.now()

    def record_decision(self, decision: AccessDecision, task_id: str) -> None:
        """Put why an action was allowed on the timeline: who, as what, under which rule."""
        self.record("authorized", f"{decision.action} by {decision.principal} as {decision.role} in "
                                  f"{decision.department or 'any department'} (policy v{decision.policy_version})",
                    task_id=task_id, **decision.model_dump())

    def set_status(self, status: TicketStatus, detail: str = "", **data: Any) -> None:
        """Move the case to `status`; the SLA clock follows (paused while the customer is
        asked, stopped once resolved)."""
        s = self.snapshot
        if s.status == status:
            return
        previous = s.status
        s.status = status
        self.record("status", f"{previous.value} -> {status.value}" + (f": {detail}" if detail else ""), **data)
        self.sla.follow(previous, status)
        if status in _SETTLED and previous not in _SETTLED:
            metrics.count("cases_closed", case_type=s.case_type, status=status.value)

    async def resolve(self, resolution: str, detail: str = "") -> None:
        """The case is settled: say how, and show it."""
        self.snapshot.resolution = resolution
        self.set_status(TicketStatus.resolved, detail or resolution)
        await self.publish()

    async def close(self, resolution: str, detail: str = "") -> None:
        """The case is over: say how, and show it."""
        self.snapshot.resolution = resolution
        self.set_status(TicketStatus.closed, detail or resolution)
        await self.publish()

    # --- the read model --------------------------------------------------------------------

    async def publish(self) -> None:
        """Project the case into the read model (idempotent, newest revision wins).

        Sends what changed since the last projection: the new conversation entries and
        timeline events, and the context only if it changed. While the run hands over to a
        new one nothing is projected: the new run projects what changed meanwhile."""
        if self._handing_over:
            return
        if not self._bounded:  # a history recorded before changes were projected
            await workflow.execute_activity("project_ticket", self.snapshot.model_copy(deep=True), **PROJECTION)
            return
        async with self._publishing:
            s = self.snapshot
            revision = s.revision
            conversation_end = s.conversation_offset + len(s.conversation)
            timeline_end = s.timeline_offset + len(s.timeline)
            context_changed = s.context != self._published_context
            context = copy.deepcopy(s.context) if context_changed else {}
            changes = TicketChanges(
                ticket=s.model_copy(update={
                    "conversation": s.conversation[self._published_conversation - s.conversation_offset:],
                    "timeline": s.timeline[self._published_timeline - s.timeline_offset:],
                    "context": context,
                }),
                conversation_from=self._published_conversation, timeline_from=self._published_timeline,
                context_changed=context_changed,
            )
            await workflow.execute_activity("project_ticket_changes", changes, **PROJECTION)
            self._published_conversation, self._published_timeline = conversation_end, timeline_end
            self._published_revision = revision
            if context_changed:
                self._published_context = context

    async def publish_task(self, task: TaskSnapshot) -> None:
        if self._handing_over:
            self._unpublished_tasks[task.task_id] = None
            return
        await workflow.execute_activity("project_task", task.model_copy(deep=True), **PROJECTION)

    def live_tasks(self) -> list[TaskSnapshot]:
        return [t for t in self.tasks.values() if t.status in (TaskStatus.open, TaskStatus.claimed)]

    def change_task(self, task: TaskSnapshot, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(task, key, value)
        task.revision += 1

    # --- long histories (``handover.py`` fills these in) --------------------------------------

    def history_is_long(self) -> bool:
        return False

    async def continue_as_new_if_long(self) -> None:
        return None

    # --- the end ---------------------------------------------------------------------------

    async def finish(self) -> None:
        """Let background steps end and every handler finish before the workflow returns."""
        await self.sla.stop()
        for step in self._background:
            await step
        await workflow.wait_condition(workflow.all_handlers_finished)

    # --- queries ---------------------------------------------------------------------------

    @workflow.query
    def state(self) -> TicketSnapshot:
        return self.snapshot

    @workflow.query
    def open_tasks(self) -> list[TaskSnapshot]:
        return self.live_tasks()
