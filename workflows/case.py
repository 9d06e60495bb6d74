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

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
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
        CustomerMessage,
        Priority,
        TicketInput,
        TicketSnapshot,
        TicketStatus,
        TimelineEvent,
    )

# The read model is ours: keep retrying until the database is back, however long it takes.
PROJECTION = dict(
    start_to_close_timeout=timedelta(seconds=15),
    retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=30)),
)
# Replies go to an outside system: retry for an hour, then tell the agents it did not arrive.
DELIVERY = dict(
    start_to_close_timeout=timedelta(seconds=30),
    schedule_to_close_timeout=timedelta(hours=1),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5)),
)

SUPERVISOR_QUEUE = "supervisors"


class TaskNotFound(ApplicationError):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"task {task_id} does not belong to this ticket", type="TaskNotFound", non_retryable=True)


class TaskConflict(ApplicationError):
    def __init__(self, message: str) -> None:
        super().__init__(message, type="TaskConflict", non_retryable=True)


class CaseWorkflow:
    """State, handlers and reusable steps shared by every kind of case."""

    def __init__(self) -> None:
        self.state: TicketSnapshot | None = None
        self.tasks: dict[str, TaskSnapshot] = {}
        self._seen_message_ids: set[str] = set()
        self._unanswered_messages = 0
        self._task_events = 0

    # --- state and read model ------------------------------------------------------------

    def open(self, inp: TicketInput) -> TicketSnapshot:
        info = workflow.info()
        self.input = inp
        self.state = TicketSnapshot(
            ticket_id=inp.ticket_id,
            workflow_id=info.workflow_id,
            customer_id=inp.customer_id,
            subject=inp.subject,
            body=inp.body,
            channel=inp.channel,
            order_id=inp.order_id,
            priority=inp.priority,
            department=inp.department,
            external_ref=inp.external_ref,
            conversation_id=inp.conversation_id,
            status=TicketStatus.new,
            opened_at=inp.opened_at,
            updated_at=workflow.now(),
            revision=0,
            conversation=[
                ConversationEntry(
                    id=f"{inp.ticket_id}-opening", direction="in", author=inp.customer_id, text=inp.body,
                    at=inp.opened_at,
                )
            ],
        )
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

    def set_status(self, status: TicketStatus, detail: str = "", **data: Any) -> None:
        s = self.snapshot
        if s.status == status:
            return
        previous = s.status
        s.status = status
        self.record("status", f"{previous.value} -> {status.value}" + (f": {detail}" if detail else ""), **data)

    def _touch(self) -> None:
        s = self.snapshot
        s.revision += 1
        s.updated_at = workflow.now()

    async def publish(self) -> None:
        """Project the ticket into the read model (idempotent, newest revision wins)."""
        await workflow.execute_activity("project_ticket", self.snapshot.model_copy(deep=True), **PROJECTION)

    async def _publish_task(self, task: TaskSnapshot) -> None:
        await workflow.execute_activity("project_task", task.model_copy(deep=True), **PROJECTION)

    # --- step: human task ----------------------------------------------------------------

    async def human_task(
        self,
        *,
        queue: str,
        priority: Priority,
        kind: str = "handle_ticket",
        context: dict[str, Any] | None = None,
        allowed_outcomes: list[TaskOutcome] | None = None,
    ) -> TaskSnapshot:
        """Put a task in `queue` and wait until an agent completes it. Returns the completed
        task; its ``outcome`` and ``reply`` say what the agent decided."""
        s = self.snapshot
        task = TaskSnapshot(
            task_id=f"{s.ticket_id}-t{len(self.tasks) + 1}",
            ticket_id=s.ticket_id,
            workflow_id=s.workflow_id,
            kind=kind,
            queue=queue,
            priority=priority,
            created_at=workflow.now(),
            allowed_outcomes=allowed_outcomes or list(TaskOutcome),
            context={"subject": s.subject, "order_id": s.order_id, **(context or {})},
        )
        self.tasks[task.task_id] = task
        self.set_status(TicketStatus.awaiting_agent)
        self.record("task_created", f"{kind} in queue {queue}", task_id=task.task_id, priority=priority.value)
        await self._publish_task(task)
        await self.publish()
        await workflow.wait_condition(lambda: task.status == TaskStatus.completed)
        return task

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
        await self._publish_task(task)
        await self.publish()
        self._task_changed(task)
        return task

    @reassign_task.validator
    def _validate_reassign(self, req: ReassignTask) -> None:
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
        task = self._task(req.task_id)
        if task.status == TaskStatus.cancelled:
            raise TaskConflict(f"task {task.task_id} is cancelled")

    def _task_changed(self, task: TaskSnapshot) -> None:
        """Hook for steps that watch tasks (SLA, stale claims); bumps a counter they wait on."""
        self._task_events += 1

    @workflow.update
    async def complete_task(self, req: CompleteTask) -> TaskSnapshot:
        task = self.tasks[req.task_id]
        context = dict(task.context)
        if req.queue:
            context["transfer_to"] = req.queue
        self._change_task(
            task, status=TaskStatus.completed, outcome=req.outcome, reply=req.reply, completed_at=workflow.now(),
            context=context,
        )
        self.record("task_completed", f"{req.outcome.value} by {req.agent}", task_id=task.task_id,
                    outcome=req.outcome.value, agent=req.agent)
        await self._publish_task(task)
        await self.publish()
        self._task_changed(task)
        return task

    @complete_task.validator
    def _validate_complete(self, req: CompleteTask) -> None:
        task = self._task(req.task_id)
        if task.status != TaskStatus.claimed:
            raise TaskConflict(f"task {task.task_id} is {task.status.value}: claim it before completing it")
        if task.assignee != req.agent:
            raise TaskConflict(f"task {task.task_id} is claimed by {task.assignee}, not {req.agent}")
        if req.outcome not in task.allowed_outcomes:
            allowed = ", ".join(o.value for o in task.allowed_outcomes)
            raise TaskConflict(f"outcome {req.outcome.value} is not allowed for this task (allowed: {allowed})")

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
        self._seen_message_ids.add(msg.message_id)
        s = self.snapshot
        s.conversation.append(
            ConversationEntry(id=msg.message_id, direction="in", author=s.customer_id, text=msg.text,
                              at=msg.sent_at or workflow.now())
        )
        self._unanswered_messages += 1
        self.record("customer_message", msg.text[:120], message_id=msg.message_id)
        await self.publish()

    async def wait_for_customer(self, timeout: timedelta) -> bool:
        """Wait durably for a new customer message. True if one came, False on timeout."""
        try:
            await workflow.wait_condition(lambda: self._unanswered_messages > 0, timeout=timeout)
        except TimeoutError:
            return False
        self._unanswered_messages = 0
        return True

    async def close_when_quiet(self, quiet_period: timedelta) -> bool:
        """After resolution: close once the customer stays quiet for `quiet_period`.
        Returns False (and reopens the ticket) if the customer writes first."""
        self._unanswered_messages = 0
        if await self.wait_for_customer(quiet_period):
            self.set_status(TicketStatus.awaiting_agent, "customer wrote after resolution")
            self.record("reopened")
            return False
        self.set_status(TicketStatus.closed, f"quiet for {quiet_period}")
        await self.publish()
        return True

    # --- queries -------------------------------------------------------------------------

    @workflow.query
    def state(self) -> TicketSnapshot:
        return self.snapshot

    @workflow.query
    def open_tasks(self) -> list[TaskSnapshot]:
        return [t for t in self.tasks.values() if t.status in (TaskStatus.open, TaskStatus.claimed)]
