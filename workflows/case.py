"""The building blocks every kind of case is made of.

A process designer writes a new kind of case as a subclass of :class:`CaseWorkflow` and
composes its steps in ``run``:

- :meth:`CaseWorkflow.open` and :meth:`CaseWorkflow.publish`: take the input, keep the read
  model current;
- :meth:`CaseWorkflow.human_task`: put a task in an agents' queue and wait for its outcome;
- :meth:`CaseWorkflow.notify_customer`: send a reply through the customer's channel;
- :meth:`CaseWorkflow.wait_for_customer`: wait, durably, for the customer to write back;
- :meth:`CaseWorkflow.close_when_quiet`: close a resolved case after a quiet period, or
  reopen it when the customer writes.

The base class also carries the handlers agents and customers act through: the
``customer_message`` signal, the ``claim_task`` / ``release_task`` / ``complete_task``
updates (with validators, so a refused action writes nothing to history) and the ``state``
query. Everything here is deterministic: time comes from ``workflow.now()``, ids from
counters, and activities are named, not imported, so no driver is loaded into the sandbox.
"""

from __future__ import annotations

import asyncio
import copy
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.context import gather_customer_360, issue_refund

with workflow.unsafe.imports_passed_through():
    from models.auth import SYSTEM_PREFIX, AccessDecision
    from models.ticket import CaseCarry, CaseStep
    from models.faq import FaqDecision, FaqQuery, FaqResult
    from models.routing import OfferRequest, OfferResult, RouteDecision, RouteRequest
    from models.systems import RefundRequest, SystemFailure
    from models.steps import CustomerNotification, DeliveryReceipt
    from models.task import (
        AddNote,
        AssignTask,
        ClaimTask,
        CompleteTask,
        ReassignTask,
        ReleaseTask,
        TaskNote,
        TaskOutcome,
        TaskSnapshot,
        TaskStatus,
    )
    from models.ticket import (
        ConversationEntry,
        CustomerFeedback,
        CustomerMessage,
        Priority,
        TicketChanges,
        TicketInput,
        TicketSnapshot,
        TicketStatus,
        TimelineEvent,
    )
    from routing.models import TaskRequirements
    from sla.clock import SlaClock, SlaEvent, SlaEventKind
    from sla.policy import CustomerTier, MoveToQueue, Notify, RaisePriority, SlaTargetKind

# The read model is ours: keep retrying until the database is back, however long it takes.
PROJECTION = dict(
    start_to_close_timeout=timedelta(seconds=15),
    retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=30)),
)
# Routing decides from the read model; if it is down, agents still claim by hand.
ROUTING = dict(
    start_to_close_timeout=timedelta(seconds=10),
    schedule_to_close_timeout=timedelta(minutes=2),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=20)),
)
# Replies go to an outside system: retry for an hour, then tell the agents it did not arrive.
DELIVERY = dict(
    start_to_close_timeout=timedelta(seconds=30),
    schedule_to_close_timeout=timedelta(hours=1),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5)),
)

# The FAQ bot is a suggestion, never a blocker: a slow or absent FAQ worker hands the
# ticket to an agent after a few tries.
FAQ = dict(
    start_to_close_timeout=timedelta(seconds=30),
    schedule_to_close_timeout=timedelta(minutes=2),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3,
                             non_retryable_error_types=["InvalidRequest"]),
)

SUPERVISOR_QUEUE = "supervisors"
# Actions whose authorization goes on the ticket's timeline as well as into the history.
SENSITIVE_ACTIONS = frozenset({"refund", "transfer", "reassign", "escalate"})
FAQ_BOT = "faq-bot"

# Bounded histories. A run continues as new once its history holds
# `TicketPolicy.continue_as_new_after_events` events (or Temporal suggests it sooner); the
# new run keeps this many of the latest conversation entries and timeline events, and this
# many customer message ids to drop redeliveries. Everything older stays in the read model
# and in the earlier runs' histories.
CARRIED_ENTRIES = 20
CARRIED_MESSAGE_IDS = 200
# Marks code that projects changes instead of snapshots and continues as new; histories
# recorded before it replay along the old path.
BOUNDED_HISTORY_PATCH = "bounded-history"


class TaskNotFound(ApplicationError):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"task {task_id} does not belong to this ticket", type="TaskNotFound", non_retryable=True)


class TaskConflict(ApplicationError):
    def __init__(self, message: str) -> None:
        super().__init__(message, type="TaskConflict", non_retryable=True)


class Unauthorized(ApplicationError):
    def __init__(self, message: str) -> None:
        super().__init__(message, type="Unauthorized", non_retryable=True)


def require_decision(decisions: list[AccessDecision] | AccessDecision | None, action: str, actor: str, *,
                     system_may: bool = False) -> AccessDecision:
    """An update must carry the API's decision allowing `action` to `actor` (or, where
    `system_may`, to a ticketflow component). Workflow code holds no secrets, so this cannot
    tell a forged decision from a real one: it refuses updates that arrive without one, such
    as a bare update sent through Temporal, and the activities that move money ask the
    policy again."""
    found = decisions if isinstance(decisions, list) else [decisions] if decisions else []
    for d in found:
        if d.action != action or not d.allowed:
            continue
        if d.principal == actor or (system_may and d.principal.startswith(SYSTEM_PREFIX)):
            return d
    raise Unauthorized(f"no authorization for {action} by {actor}: act through the ticketflow API")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class CaseWorkflow:
    """State, handlers and reusable steps shared by every kind of case."""

    # The registered name of the case type this workflow runs (workflows/registry.py); it is
    # on the case and its tasks in the read model, so lists and the inbox can filter by it.
    CASE_TYPE = "support-ticket"

    def __init__(self) -> None:
        self.state: TicketSnapshot | None = None
        self.tasks: dict[str, TaskSnapshot] = {}
        self._seen_message_ids: dict[str, None] = {}  # ordered: the latest are carried across runs
        self._unanswered_messages = 0
        self._task_events = 0
        self.sla: SlaClock | None = None
        self._sla_changes = 0
        self._sla_watcher: asyncio.Task | None = None
        self._finished = False
        self._background: list[asyncio.Task] = []
        self.tier_from_systems: CustomerTier | None = None
        self._feedback: CustomerFeedback | None = None
        self.decisions: dict[str, CompleteTask] = {}
        # bounded histories (see BOUNDED_HISTORY_PATCH)
        self._bounded = False
        self._publishing = asyncio.Lock()  # changes are projected one after another, in order
        self._published_conversation = 0
        self._published_timeline = 0
        self._published_context: dict[str, Any] | None = None
        self._published_revision = -1
        self._task_count = 0
        self.step: CaseStep | None = None  # set by runs that can continue as new from their steps
        self._runs = 0
        self._handing_over = False
        self._unpublished_tasks: dict[str, None] = {}

    # --- state and read model ------------------------------------------------------------

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
        if inp.opening_message_id:  # the channel may deliver the opening message again
            self._seen_message_ids[inp.opening_message_id] = None
        self.record("opened", f"via {inp.channel.value}", department=inp.department, priority=inp.priority.value)
        return self.state

    @property
    def snapshot(self) -> TicketSnapshot:
        assert self.state is not None, "open() runs first"
        return self.state

    def record(self, kind: str, detail: str = "", **data: Any) -> None:
        """Add a decision to the ticket's timeline (and bump its revision)."""
        s = self.snapshot
        s.timeline.append(TimelineEvent(at=workflow.now(), kind=kind, detail=detail, data=data))
        self._touch()

    def record_decision(self, decision: AccessDecision, task_id: str) -> None:
        """Put why an action was allowed on the timeline: who, as what, under which rule."""
        self.record("authorized", f"{decision.action} by {decision.principal} as {decision.role} in "
                                  f"{decision.department or 'any department'} (policy v{decision.policy_version})",
                    task_id=task_id, **decision.model_dump())

    def set_status(self, status: TicketStatus, detail: str = "", **data: Any) -> None:
        s = self.snapshot
        if s.status == status:
            return
        previous = s.status
        s.status = status
        self.record("status", f"{previous.value} -> {status.value}" + (f": {detail}" if detail else ""), **data)
        self._sla_follow_status(previous, status)

    def _touch(self) -> None:
        s = self.snapshot
        s.revision += 1
        s.updated_at = workflow.now()

    async def publish(self) -> None:
        """Project the ticket into the read model (idempotent, newest revision wins).

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

    async def _publish_task(self, task: TaskSnapshot) -> None:
        if self._handing_over:
            self._unpublished_tasks[task.task_id] = None
            return
        await workflow.execute_activity("project_task", task.model_copy(deep=True), **PROJECTION)

    # --- step: human task ----------------------------------------------------------------

    async def human_task(
        self,
        *,
        queue: str,
        priority: Priority,
        kind: str = "handle_ticket",
        context: dict[str, Any] | None = None,
        allowed_outcomes: list[str] | None = None,
    ) -> TaskSnapshot:
        """Put a task in `queue` and wait until an agent completes it. Returns the completed
        task; its ``outcome`` and ``reply`` say what the agent decided."""
        s = self.snapshot
        self._task_count += 1
        task = TaskSnapshot(
            task_id=f"{s.ticket_id}-t{self._task_count}",
            ticket_id=s.ticket_id,
            workflow_id=s.workflow_id,
            case_type=s.case_type,
            kind=kind,
            queue=queue,
            priority=priority,
            created_at=workflow.now(),
            allowed_outcomes=allowed_outcomes or [str(o) for o in TaskOutcome],
            context={"subject": s.subject, "order_id": s.order_id, **(context or {})},
            skills=list(self.input.skills),
            language=self.input.language,
            customer_tier=self.customer_tier.value,
            due_at=self.sla_due_at(),
        )
        self.tasks[task.task_id] = task
        self.set_status(TicketStatus.awaiting_agent)
        self.record("task_created", f"{kind} in queue {queue}", task_id=task.task_id, priority=priority.value)
        await self._publish_task(task)
        await self.publish()
        return await self.wait_for_task(task, route=self.input.policy.auto_assign)

    async def wait_for_task(self, task: TaskSnapshot, *, route: bool) -> TaskSnapshot:
        """Wait until an agent completes `task` (routing it first if `route`); releases a
        claim nobody works on. A long history continues as new from here."""
        policy = self.input.policy
        while task.status != TaskStatus.completed:
            if self.step is not None:
                self.step = self.step.model_copy(update={"task_id": task.task_id})
            if task.status == TaskStatus.open:
                if route:
                    await self._route(task)
                route = policy.auto_assign
                if task.status == TaskStatus.open:
                    seen = self._task_events  # an escalation may move it to another queue
                    await workflow.wait_condition(
                        lambda: task.status != TaskStatus.open or self._task_events != seen
                        or self.history_is_long()
                    )
                    await self.continue_as_new_if_long()
                continue
            # Claimed: any action on the task (a note, an update) counts as work on it.
            seen = self._task_events
            try:
                await workflow.wait_condition(
                    lambda: task.status != TaskStatus.claimed or self._task_events != seen
                    or self.history_is_long(),
                    timeout=policy.stale_claim_after,
                )
            except TimeoutError:
                await self._release_stale(task)
            await self.continue_as_new_if_long()
        return task

    async def _route(self, task: TaskSnapshot) -> None:
        """Ask the router for an agent. Nobody fitting leaves the task queued; it is offered
        again when someone frees up. A router outage is recorded, not fatal: agents can
        still claim from the queue."""
        req = RouteRequest(
            ticket_id=task.ticket_id, workflow_id=task.workflow_id,
            requirements=TaskRequirements(
                task_id=task.task_id, queue=task.queue, skills=frozenset(task.skills), language=task.language,
                priority=task.priority, tier=CustomerTier(task.customer_tier), queued_at=task.created_at,
            ),
        )
        try:
            decision: RouteDecision = await workflow.execute_activity(
                "route_task", req, result_type=RouteDecision, **ROUTING
            )
        except ActivityError as err:
            self.record("routing_failed", str(err.cause or err), task_id=task.task_id)
            return
        if task.status != TaskStatus.open:  # claimed by hand while the router thought
            await self._publish_task(task)
            return
        if decision.agent_id is None:
            self._change_task(task, routing=decision.reason)
            self.record("task_queued", decision.reason, task_id=task.task_id, code=decision.code)
            await self._publish_task(task)
            return
        self._change_task(task, status=TaskStatus.claimed, assignee=decision.agent_id, claimed_at=workflow.now(),
                          routing=decision.reason)
        self.set_status(TicketStatus.in_progress)
        self.record("task_assigned", f"to {decision.agent_id}: {decision.reason}", task_id=task.task_id,
                    agent=decision.agent_id, code=decision.code)
        await self._publish_task(task)
        await self.publish()

    async def _release_stale(self, task: TaskSnapshot) -> None:
        holder = task.assignee
        self._change_task(task, status=TaskStatus.open, assignee=None, claimed_at=None,
                          routing=f"released: {holder} left it untouched for {self.input.policy.stale_claim_after}")
        self.set_status(TicketStatus.awaiting_agent)
        self.record("task_released", f"claim by {holder} went stale", task_id=task.task_id, agent=holder)
        await self._publish_task(task)
        await self.publish()
        self.offer_queued([task.queue])

    def offer_queued(self, queues: list[str]) -> None:
        """Capacity may have freed up in `queues`: let the router hand out waiting tasks.

        Runs in the background: offering touches other tickets, and this ticket (its reply
        to the customer, say) must not wait on them. `finish` collects it."""
        if not self.input.policy.auto_assign:
            return

        async def offer() -> None:
            try:
                await workflow.execute_activity("offer_queued", OfferRequest(queues=queues),
                                                result_type=OfferResult, **ROUTING)
            except ActivityError as err:
                self.record("routing_failed", f"offering queued tasks: {err.cause or err}")

        self._background.append(asyncio.create_task(offer()))

    def _task(self, task_id: str) -> TaskSnapshot:
        task = self.tasks.get(task_id)
        if task is None:
            raise TaskNotFound(task_id)
        return task

    def _change_task(self, task: TaskSnapshot, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(task, key, value)
        task.revision += 1

    @workflow.update
    async def claim_task(self, req: ClaimTask) -> TaskSnapshot:
        task = self.tasks[req.task_id]
        if task.assignee == req.agent:  # a retried claim by the same agent changes nothing
            return task
        self._change_task(task, status=TaskStatus.claimed, assignee=req.agent, claimed_at=workflow.now())
        self.set_status(TicketStatus.in_progress)
        self.record("task_claimed", f"by {req.agent}", task_id=task.task_id, agent=req.agent)
        await self._publish_task(task)
        await self.publish()
        self._task_changed(task)
        return task

    @claim_task.validator
    def _validate_claim(self, req: ClaimTask) -> None:
        require_decision(req.authorization, "claim", req.agent)
        task = self._task(req.task_id)
        if task.status == TaskStatus.claimed and task.assignee != req.agent:
            raise TaskConflict(f"task {task.task_id} is already claimed by {task.assignee}")
        if task.status in (TaskStatus.completed, TaskStatus.cancelled):
            raise TaskConflict(f"task {task.task_id} is {task.status.value}")

    @workflow.update
    async def release_task(self, req: ReleaseTask) -> TaskSnapshot:
        task = self.tasks[req.task_id]
        self._change_task(task, status=TaskStatus.open, assignee=None, claimed_at=None)
        self.set_status(TicketStatus.awaiting_agent)
        self.record("task_released", req.reason or f"by {req.agent}", task_id=task.task_id, agent=req.agent)
        await self._publish_task(task)
        await self.publish()
        self._task_changed(task)
        return task

    @release_task.validator
    def _validate_release(self, req: ReleaseTask) -> None:
        require_decision(req.authorization, "release", req.agent, system_may=True)
        task = self._task(req.task_id)
        if task.status != TaskStatus.claimed:
            raise TaskConflict(f"task {task.task_id} is {task.status.value}, not claimed")
        if task.assignee != req.agent:
            raise TaskConflict(f"task {task.task_id} is claimed by {task.assignee}, not {req.agent}")

    @workflow.update
    async def assign_task(self, req: AssignTask) -> TaskSnapshot:
        """Routing offers an open task to an agent; the agent then holds it as if claimed."""
        task = self.tasks[req.task_id]
        self._change_task(task, status=TaskStatus.claimed, assignee=req.agent, claimed_at=workflow.now(),
                          routing=req.reason or f"assigned by {req.by}")
        self.set_status(TicketStatus.in_progress)
        self.record("task_assigned", f"to {req.agent} by {req.by}" + (f": {req.reason}" if req.reason else ""),
                    task_id=task.task_id, agent=req.agent)
        await self._publish_task(task)
        await self.publish()
        self._task_changed(task)
        return task

    @assign_task.validator
    def _validate_assign(self, req: AssignTask) -> None:
        require_decision(req.authorization, "assign", req.by, system_may=True)
        task = self._task(req.task_id)
        if task.status != TaskStatus.open:
            raise TaskConflict(f"task {task.task_id} is {task.status.value}, not open")

    @workflow.update
    async def reassign_task(self, req: ReassignTask) -> TaskSnapshot:
        task = self.tasks[req.task_id]
        previous = task.assignee
        self._change_task(task, status=TaskStatus.claimed, assignee=req.agent, claimed_at=workflow.now(),
                          routing=f"reassigned by {req.by}")
        self.set_status(TicketStatus.in_progress)
        self.record("task_reassigned", f"from {previous or 'queue'} to {req.agent} by {req.by}",
                    task_id=task.task_id, agent=req.agent, previous=previous)
        if req.authorization is not None:
            self.record_decision(req.authorization, task.task_id)
        await self._publish_task(task)
        await self.publish()
        self._task_changed(task)
        return task

    @reassign_task.validator
    def _validate_reassign(self, req: ReassignTask) -> None:
        require_decision(req.authorization, "reassign", req.by)
        task = self._task(req.task_id)
        if task.status in (TaskStatus.completed, TaskStatus.cancelled):
            raise TaskConflict(f"task {task.task_id} is {task.status.value}")
        if task.assignee == req.agent:
            raise TaskConflict(f"task {task.task_id} is already with {req.agent}")

    @workflow.update
    async def add_note(self, req: AddNote) -> TaskSnapshot:
        task = self.tasks[req.task_id]
        task.notes.append(TaskNote(author=req.author, text=req.text, at=workflow.now()))
        task.revision += 1
        self.record("note_added", f"by {req.author}", task_id=task.task_id)
        await self._publish_task(task)
        self._task_changed(task)
        return task

    @add_note.validator
    def _validate_note(self, req: AddNote) -> None:
        require_decision(req.authorization, "note", req.author)
        task = self._task(req.task_id)
        if task.status == TaskStatus.cancelled:
            raise TaskConflict(f"task {task.task_id} is cancelled")

    def _task_changed(self, task: TaskSnapshot) -> None:
        """Hook for steps that watch tasks (SLA, stale claims); bumps a counter they wait on."""
        self._task_events += 1

    @workflow.update
    async def complete_task(self, req: CompleteTask) -> TaskSnapshot:
        task = self.tasks[req.task_id]
        self.decisions[task.task_id] = req
        if self._bounded and req.outcome == TaskOutcome.resolve:
            # What the customer wrote so far is answered; a message from now on reopens the
            # ticket (counted here, not when the closing wait starts, so none slips between).
            self._unanswered_messages = 0
        context = dict(task.context)
        if req.queue:
            context["transfer_to"] = req.queue
        self._change_task(
            task, status=TaskStatus.completed, outcome=req.outcome, reply=req.reply, completed_at=workflow.now(),
            context=context,
        )
        self.record("task_completed", f"{req.outcome} by {req.agent}", task_id=task.task_id,
                    outcome=str(req.outcome), agent=req.agent)
        for decision in req.authorization:
            if decision.action in SENSITIVE_ACTIONS:
                self.record_decision(decision, task.task_id)
        await self._publish_task(task)
        await self.publish()
        self._task_changed(task)
        return task

    @complete_task.validator
    def _validate_complete(self, req: CompleteTask) -> None:
        require_decision(req.authorization, "complete", req.agent)
        if req.outcome in (TaskOutcome.escalate, TaskOutcome.transfer):
            require_decision(req.authorization, str(req.outcome), req.agent)
        task = self._task(req.task_id)
        if req.refund is not None or req.outcome in task.context.get("refund_on", {}):
            require_decision(req.authorization, "refund", req.agent)
        if task.status != TaskStatus.claimed:
            raise TaskConflict(f"task {task.task_id} is {task.status.value}: claim it before completing it")
        if task.assignee != req.agent:
            raise TaskConflict(f"task {task.task_id} is claimed by {task.assignee}, not {req.agent}")
        if req.outcome not in task.allowed_outcomes:
            allowed = ", ".join(task.allowed_outcomes)
            raise TaskConflict(f"outcome {req.outcome} is not allowed for this task (allowed: {allowed})")

    # --- step: talk to the customer ------------------------------------------------------

    async def notify_customer(self, text: str, *, author: str, key: str) -> DeliveryReceipt:
        """Send `text` to the customer through their channel and add it to the conversation.

        `key` makes the send idempotent: a retried activity never sends twice. When the
        channel stays unreachable past the retry window the reply is kept on the ticket,
        marked undelivered, so an agent can follow up another way."""
        s = self.snapshot
        note = CustomerNotification(
            ticket_id=s.ticket_id, customer_id=s.customer_id, channel=s.channel, conversation_id=s.conversation_id,
            text=text, author=author,
            idempotency_key=f"{s.ticket_id}:{key}",
        )
        try:
            receipt: DeliveryReceipt = await workflow.execute_activity(
                "deliver_reply", note, result_type=DeliveryReceipt, **DELIVERY
            )
        except ActivityError as err:
            cause = err.cause
            reason = cause.message if isinstance(cause, ApplicationError) else str(cause or err)
            receipt = DeliveryReceipt(delivered=False, via="none", detail=reason)
        s.conversation.append(
            ConversationEntry(id=note.idempotency_key, direction="out", author=author, text=text, at=workflow.now())
        )
        self.record(
            "reply_sent" if receipt.delivered else "reply_undelivered",
            f"via {receipt.via}" + (f": {receipt.detail}" if receipt.detail else ""),
            key=note.idempotency_key,
        )
        return receipt

    @workflow.signal
    async def customer_message(self, msg: CustomerMessage) -> None:
        # Signals can arrive before run() has opened the case (signal-with-start, replays).
        await workflow.wait_condition(lambda: self.state is not None)
        if msg.message_id in self._seen_message_ids:  # the channel delivered it twice
            return
        self._seen_message_ids[msg.message_id] = None
        s = self.snapshot
        s.conversation.append(
            ConversationEntry(id=msg.message_id, direction="in", author=s.customer_id, text=msg.text,
                              at=msg.sent_at or workflow.now())
        )
        self._unanswered_messages += 1
        self.record("customer_message", msg.text[:120], message_id=msg.message_id)
        await self.publish()

    async def wait_for_customer(self, timeout: timedelta) -> bool:
        """Wait durably for a new customer message. True if one came, False on timeout.
        A long history continues as new from here (the wait's end carried across)."""
        until = workflow.now() + timeout
        while True:
            try:
                await workflow.wait_condition(lambda: self._unanswered_messages > 0 or self.history_is_long(),
                                              timeout=until - workflow.now())
            except TimeoutError:
                return False
            if self._unanswered_messages > 0:
                self._unanswered_messages = 0
                return True
            if self.step is not None:
                self.step = self.step.model_copy(update={"until": until})
            await self.continue_as_new_if_long()

    async def ask_customer(self, text: str, timeout: timedelta, *, key: str, author: str) -> str | None:
        """Ask the customer `text` and wait for their answer: its text, or None if none came
        within `timeout`. The case waits on the customer meanwhile (its SLA clock paused)."""
        self._unanswered_messages = 0  # what the customer wrote before being asked is not the answer
        await self.notify_customer(text, author=author, key=f"ask-{key}")
        self.set_status(TicketStatus.waiting_customer, "asked the customer")
        await self.publish()
        if not await self.wait_for_customer(timeout):
            self.record("customer_silent", f"no answer within {timeout}")
            return None
        answer = next((e.text for e in reversed(self.snapshot.conversation) if e.direction == "in"), "")
        self.set_status(TicketStatus.in_progress, "the customer answered")
        return answer

    async def close_when_quiet(self, quiet_period: timedelta, *, remaining: timedelta | None = None) -> bool:
        """After resolution: close once the customer stays quiet for `quiet_period` (or the
        `remaining` part of it, for a run that continues an earlier one's wait).
        Returns False (and reopens the ticket) if the customer writes first."""
        if not self._bounded:  # histories recorded before: messages until now were dropped here
            self._unanswered_messages = 0
        if await self.wait_for_customer(quiet_period if remaining is None else remaining):
            self.set_status(TicketStatus.awaiting_agent, "customer wrote after resolution")
            self.record("reopened")
            return False
        self.set_status(TicketStatus.closed, f"quiet for {quiet_period}")
        await self.publish()
        return True

    # --- step: gather context from the other systems ----------------------------------------

    async def gather_context(self) -> None:
        """Customer 360: orders, shipments and earlier tickets, fetched concurrently. A system
        that is down leaves a recorded gap; the ticket goes on with what the others said."""
        if not self.input.policy.gather_context:
            return
        s = self.snapshot
        picture = await gather_customer_360(s.customer_id, s.order_id)
        s.context["customer360"] = picture.model_dump(mode="json")
        if picture.customer is not None:
            self.tier_from_systems = picture.customer.tier
        found = (f"{len(picture.orders)} orders, {len(picture.shipments)} shipments, "
                 f"{len(picture.external_tickets)} earlier tickets")
        self.record("context_gathered", found, gaps=len(picture.gaps))
        for gap in picture.gaps:
            self.record("context_gap", f"{gap.system}: {gap.reason}", system=gap.system, error_type=gap.error_type)

    # --- step: ask the FAQ bot -------------------------------------------------------------

    async def ask_faq_bot(self, text: str) -> FaqResult | None:
        """Ask the FAQ bot. The decision, confidence, entry and index version go into the
        history and the ticket's timeline; the suggestions go to the agent's task."""
        if not self.input.policy.faq_enabled:
            return None
        query = FaqQuery(text=text[:5000], language=self.input.language.split("-")[0])
        try:
            result: FaqResult = await workflow.execute_activity(
                "answer_faq", query, result_type=FaqResult, task_queue=self.input.policy.faq_task_queue, **FAQ
            )
        except ActivityError as err:
            self.record("faq_unavailable", str(err.cause or err))
            return None
        best = result.best
        self.record(
            "faq_answer" if result.decision == FaqDecision.answer else "faq_no_answer",
            (f"{best.entry_id}: confidence {result.confidence if result.confidence is not None else 'n/a'}"
             f" vs threshold {result.threshold}") if best else "no matching entry",
            entry_id=best.entry_id if best else None, confidence=result.confidence, threshold=result.threshold,
            index_version=result.index_version, decision=result.decision.value,
        )
        self.snapshot.context["faq"] = {
            "index_version": result.index_version,
            "decision": result.decision.value,
            "confidence": result.confidence,
            "suggestions": [
                {"entry_id": m.entry_id, "question": m.question, "score": round(m.score, 4)}
                for m in ([best] if best else []) + list(result.alternatives)
            ],
            "answer": result.answer,
        }
        return result

    @workflow.signal
    def customer_feedback(self, feedback: CustomerFeedback) -> None:
        self._feedback = feedback

    async def wait_for_feedback(self, timeout: timedelta) -> str:
        """After an automatic answer: "helpful", "not_helpful", "follow_up" (the customer
        wrote again) or "timeout"."""
        self._feedback, self._unanswered_messages = None, 0
        try:
            await workflow.wait_condition(
                lambda: self._feedback is not None or self._unanswered_messages > 0, timeout=timeout
            )
        except TimeoutError:
            return "timeout"
        if self._feedback is not None:
            return "helpful" if self._feedback.helpful else "not_helpful"
        self._unanswered_messages = 0
        return "follow_up"

    # --- step: refund ----------------------------------------------------------------------

    async def refund(self, task: TaskSnapshot, decided: CompleteTask) -> bool:
        """Create the refund an agent decided, exactly once (the key is the task's), and
        record it. False: it could not be made; the reason is on the timeline."""
        s = self.snapshot
        decision = decided.refund
        assert decision is not None
        order_id = decision.order_id or s.order_id
        if not order_id:
            self.record("refund_failed", "the ticket names no order", task_id=task.task_id)
            return False
        result = await issue_refund(RefundRequest(
            ticket_id=s.ticket_id, customer_id=s.customer_id, order_id=order_id, amount=decision.amount,
            reason=decision.reason, idempotency_key=f"{task.task_id}:refund", department=task.queue,
            decided_by=decided.agent,
        ))
        if isinstance(result, SystemFailure):
            self.record("refund_failed", f"{result.error_type}: {result.message}", task_id=task.task_id,
                        amount=str(decision.amount), order_id=order_id)
            return False
        s.context.setdefault("refunds", []).append(result.model_dump(mode="json"))
        self.record("refund_created", f"{result.amount} {result.currency} on {order_id} ({result.id})",
                    task_id=task.task_id, refund_id=result.id)
        return True

    # --- step: SLA clock -----------------------------------------------------------------

    @property
    def customer_tier(self) -> CustomerTier:
        """Tier given with the ticket, else what the order system said, else standard."""
        return self.input.customer_tier or self.tier_from_systems or CustomerTier.standard

    def start_sla(self) -> None:
        """Start the SLA clock at the moment the customer wrote, and a watcher that fires
        warnings, breaches and escalations as durable timers."""
        config = self.input.sla
        if config is None or self.sla is not None:
            return
        s = self.snapshot
        policy = config.policy_for(s.priority, s.department, self.customer_tier)
        self.sla = SlaClock(calendar=config.calendar, policy=policy)
        self._apply_sla_events(self.sla.start(s.opened_at))
        self._sla_watcher = asyncio.create_task(self._watch_sla())

    def sla_due_at(self) -> datetime | None:
        if self.sla is None:
            return None
        due = [t for t in (self.sla.breach_at(k) for k in SlaTargetKind) if t is not None]
        return min(due) if due else None

    def sla_met(self, target: SlaTargetKind) -> None:
        if self.sla is not None:
            self._apply_sla_events(self.sla.met(workflow.now(), target))

    def _sla_follow_status(self, previous: TicketStatus, status: TicketStatus) -> None:
        if self.sla is None:
            return
        now = workflow.now()
        waiting_on_customer = (TicketStatus.waiting_customer, TicketStatus.bot_answered)
        if status in waiting_on_customer:
            self._apply_sla_events(self.sla.pause(now))
        elif previous in waiting_on_customer:
            self._apply_sla_events(self.sla.resume(now))
        if status in (TicketStatus.resolved, TicketStatus.closed):
            for target in SlaTargetKind:
                self._apply_sla_events(self.sla.met(now, target))
        if status == TicketStatus.closed:
            self._finished = True

    def _apply_sla_events(self, events: list[SlaEvent]) -> None:
        for event in events:
            self.record(f"sla_{event.kind.value}", f"{event.target.value}: {event.detail}".rstrip(": "),
                        target=event.target.value)
            if event.kind == SlaEventKind.breached:
                self._escalate(event.target)
        self._sla_changes += 1
        s = self.snapshot
        if self.sla is not None:
            s.context["sla"] = {
                "policy": self.sla.policy.model_dump(mode="json", include={"priority", "department", "tier", "target"}),
                "status": self.sla.status.value,
                "first_response_due": _iso(self.sla.breach_at(SlaTargetKind.first_response)),
                "resolution_due": _iso(self.sla.breach_at(SlaTargetKind.resolution)),
                "breached": [k.value for k in SlaTargetKind if getattr(self.sla, k.value).breached],
            }
        due = self.sla_due_at()
        for task in self.tasks.values():
            if task.status in (TaskStatus.open, TaskStatus.claimed) and task.due_at != due:
                self._change_task(task, due_at=due)

    def _escalate(self, target: SlaTargetKind) -> None:
        assert self.sla is not None
        s = self.snapshot
        live = [t for t in self.tasks.values() if t.status in (TaskStatus.open, TaskStatus.claimed)]
        for step in self.sla.policy.escalations_for(target):
            if isinstance(step, RaisePriority):
                s.priority = s.priority.raised()
                for task in live:
                    self._change_task(task, priority=s.priority)
                self.record("escalated", f"priority raised to {s.priority.value} ({target.value} breached)")
            elif isinstance(step, MoveToQueue):
                for task in live:
                    if task.status == TaskStatus.open and task.queue != step.queue:
                        self._change_task(task, queue=step.queue, routing=f"moved: {target.value} SLA breached")
                        self.record("escalated", f"task moved to {step.queue} ({target.value} breached)",
                                    task_id=task.task_id)
            elif isinstance(step, Notify):
                self.record("sla_notified", f"{step.recipient}: {target.value} SLA breached",
                            recipient=step.recipient)
        self._task_events += 1  # wakes a waiting task step so it re-routes in its new queue

    async def _watch_sla(self) -> None:
        while not self._finished and not self._handing_over and self.sla is not None:
            now = workflow.now()
            deadline = self.sla.next_deadline(now)
            seen = self._sla_changes
            fired = False
            if deadline is not None and deadline.at <= now:
                fired = True
            else:
                try:
                    await workflow.wait_condition(
                        lambda: self._sla_changes != seen or self._finished or self._handing_over,
                        timeout=(deadline.at - now) if deadline else None,
                    )
                except TimeoutError:
                    fired = True
            if self._finished or self._handing_over:
                return
            if fired:
                self._apply_sla_events(self.sla.on_timer(workflow.now()))
            # a list: a task may be created while a projection is awaited
            for task in [t for t in self.tasks.values() if t.status in (TaskStatus.open, TaskStatus.claimed)]:
                await self._publish_task(task)
            await self.publish()

    async def finish(self) -> None:
        """Let background steps end and every handler finish before the workflow returns."""
        self._finished = True
        if self._sla_watcher is not None:
            await self._sla_watcher
        for step in self._background:
            await step
        await workflow.wait_condition(workflow.all_handlers_finished)

    # --- bounded history: continue as new --------------------------------------------------

    def history_is_long(self) -> bool:
        """Time to continue as new: the run's history reached its bound, or Temporal
        suggests it. Only runs that know their step (``self.step``) can."""
        if not self._bounded or self.step is None or self._handing_over:
            return False
        info = workflow.info()
        return (info.get_current_history_length() >= self.input.policy.continue_as_new_after_events
                or info.is_continue_as_new_suggested())

    async def continue_as_new_if_long(self) -> None:
        """Continue as a new run from ``self.step`` if the history is long; else return.

        Background steps stop and handlers in progress finish first; handlers that run
        during the hand-over change the state without projecting it, and the new run
        projects what they changed. The new run gets the ticket's state, its open tasks
        (and any not yet projected), the SLA clock and the step with its deadline
        (:class:`CaseCarry`)."""
        if not self.history_is_long():
            return
        assert self.step is not None
        self._handing_over = True
        if self._sla_watcher is not None:
            await self._sla_watcher
        for step in self._background:
            await step
        events = workflow.info().get_current_history_length()
        self.record("continued_as_new", f"run {self._runs + 2} continues the ticket after {events} events in run "
                                        f"{self._runs + 1}", step=self.step.name.value, events=events)
        await workflow.wait_condition(workflow.all_handlers_finished)
        s = self.snapshot
        window = s.model_copy(update={
            "conversation": s.conversation[-CARRIED_ENTRIES:],
            "timeline": s.timeline[-CARRIED_ENTRIES:],
            "conversation_offset": s.conversation_offset + max(0, len(s.conversation) - CARRIED_ENTRIES),
            "timeline_offset": s.timeline_offset + max(0, len(s.timeline) - CARRIED_ENTRIES),
        })
        # Entries not yet projected stay in the window.
        if window.conversation_offset > self._published_conversation:
            window.conversation = s.conversation[self._published_conversation - s.conversation_offset:]
            window.conversation_offset = self._published_conversation
        if window.timeline_offset > self._published_timeline:
            window.timeline = s.timeline[self._published_timeline - s.timeline_offset:]
            window.timeline_offset = self._published_timeline
        # open tasks, tasks changed during the hand-over, and the step's own task: it may
        # have been completed just now, its decision not yet carried out
        tasks = [t for t in self.tasks.values()
                 if t.status in (TaskStatus.open, TaskStatus.claimed) or t.task_id in self._unpublished_tasks
                 or t.task_id == self.step.task_id]
        carry = CaseCarry(
            step=self.step, snapshot=window, tasks=tasks,
            unpublished_tasks=list(self._unpublished_tasks),
            decisions=[self.decisions[t.task_id] for t in tasks if t.task_id in self.decisions],
            task_count=self._task_count, seen_message_ids=list(self._seen_message_ids)[-CARRIED_MESSAGE_IDS:],
            unanswered_messages=self._unanswered_messages, sla=self.sla, tier_from_systems=self.tier_from_systems,
            published_conversation=self._published_conversation, published_timeline=self._published_timeline,
            published_revision=self._published_revision, published_context=self._published_context,
            runs=self._runs + 1,
        )
        workflow.continue_as_new(self.input.model_copy(update={"carried": carry}))

    def restore(self, inp: TicketInput, carry: CaseCarry) -> None:
        """Take over the state of the run before. Call it from the workflow's
        ``@workflow.init``: an update for a carried task can arrive before ``run`` starts."""
        self.input = inp.model_copy(update={"carried": None})  # so the next hand-over does not nest it
        self._bounded = True
        self.state = carry.snapshot
        self.tasks = {t.task_id: t for t in carry.tasks}
        self.decisions = {d.task_id: d for d in carry.decisions}
        self._task_count = carry.task_count
        self._seen_message_ids = dict.fromkeys(carry.seen_message_ids)
        self._unanswered_messages = carry.unanswered_messages
        self.tier_from_systems = carry.tier_from_systems
        self._published_conversation, self._published_timeline = carry.published_conversation, carry.published_timeline
        self._published_revision, self._published_context = carry.published_revision, carry.published_context
        self._unpublished_tasks = dict.fromkeys(carry.unpublished_tasks)
        self._runs = carry.runs
        self.step = carry.step
        self.sla = carry.sla

    async def resume(self) -> CaseStep:
        """Carry on after :meth:`restore`: restart the SLA watcher, project what the run
        before left unprojected; returns the step to carry on with."""
        assert self.step is not None, "restore() runs first"
        if self.sla is not None:
            self._sla_watcher = asyncio.create_task(self._watch_sla())
        for task_id in list(self._unpublished_tasks):
            del self._unpublished_tasks[task_id]
            await self._publish_task(self.tasks[task_id])
        if self.snapshot.revision != self._published_revision:
            await self.publish()
        return self.step

    # --- queries -------------------------------------------------------------------------

    @workflow.query
    def state(self) -> TicketSnapshot:
        return self.snapshot

    @workflow.query
    def open_tasks(self) -> list[TaskSnapshot]:
        return [t for t in self.tasks.values() if t.status in (TaskStatus.open, TaskStatus.claimed)]
