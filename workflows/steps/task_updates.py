"""What agents do to a case's tasks, as Temporal updates.

Each update has a validator that runs before anything is written: a refused action (the
task is someone else's, the outcome is not one of the task's, the API's authorization is
missing) leaves no trace in the history and answers the caller with the reason. An accepted
one goes through :meth:`HumanTasks.transition`, so the task, the case's status, the timeline
and the read model move together.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.steps.tasks import HumanTasks

with workflow.unsafe.imports_passed_through():
    from models.auth import SYSTEM_PREFIX, AccessDecision
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
    from models.ticket import TicketStatus

# Actions whose authorization goes on the case's timeline as well as into the history.
SENSITIVE_ACTIONS = frozenset({"refund", "transfer", "reassign", "escalate"})


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


class TaskUpdates(HumanTasks):
    def _task(self, task_id: str) -> TaskSnapshot:
        task = self.tasks.get(task_id)
        if task is None:
            raise TaskNotFound(task_id)
        return task

    def _held_by(self, task: TaskSnapshot, agent: str) -> None:
        if task.assignee != agent:
            raise TaskConflict(f"task {task.task_id} is claimed by {task.assignee}, not {agent}")

    def _not_finished(self, task: TaskSnapshot) -> None:
        if task.status in (TaskStatus.completed, TaskStatus.cancelled):
            raise TaskConflict(f"task {task.task_id} is {task.status.value}")

    @workflow.update
    async def claim_task(self, req: ClaimTask) -> TaskSnapshot:
        task = self.tasks[req.task_id]
        if task.assignee == req.agent:  # a retried claim by the same agent changes nothing
            return task
        return await self.transition(task, "task_claimed", f"by {req.agent}", case_status=TicketStatus.in_progress,
                                     data={"agent": req.agent}, status=TaskStatus.claimed, assignee=req.agent,
                                     claimed_at=workflow.now())

    @claim_task.validator
    def _validate_claim(self, req: ClaimTask) -> None:
        require_decision(req.authorization, "claim", req.agent)
        task = self._task(req.task_id)
        if task.status == TaskStatus.claimed and task.assignee != req.agent:
            raise TaskConflict(f"task {task.task_id} is already claimed by {task.assignee}")
        self._not_finished(task)

    @workflow.update
    async def release_task(self, req: ReleaseTask) -> TaskSnapshot:
        return await self.transition(self.tasks[req.task_id], "task_released", req.reason or f"by {req.agent}",
                                     case_status=TicketStatus.awaiting_agent, data={"agent": req.agent},
                                     status=TaskStatus.open, assignee=None, claimed_at=None)

    @release_task.validator
    def _validate_release(self, req: ReleaseTask) -> None:
        require_decision(req.authorization, "release", req.agent, system_may=True)
        task = self._task(req.task_id)
        if task.status != TaskStatus.claimed:
            raise TaskConflict(f"task {task.task_id} is {task.status.value}, not claimed")
        self._held_by(task, req.agent)

    @workflow.update
    async def assign_task(self, req: AssignTask) -> TaskSnapshot:
        """Routing offers an open task to an agent; the agent then holds it as if claimed."""
        return await self.transition(
            self.tasks[req.task_id], "task_assigned",
            f"to {req.agent} by {req.by}" + (f": {req.reason}" if req.reason else ""),
            case_status=TicketStatus.in_progress, data={"agent": req.agent},
            status=TaskStatus.claimed, assignee=req.agent, claimed_at=workflow.now(),
            routing=req.reason or f"assigned by {req.by}")

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
        return await self.transition(
            task, "task_reassigned", f"from {previous or 'queue'} to {req.agent} by {req.by}",
            case_status=TicketStatus.in_progress, data={"agent": req.agent, "previous": previous},
            authorized=[req.authorization] if req.authorization is not None else [],
            status=TaskStatus.claimed, assignee=req.agent, claimed_at=workflow.now(), routing=f"reassigned by {req.by}")

    @reassign_task.validator
    def _validate_reassign(self, req: ReassignTask) -> None:
        require_decision(req.authorization, "reassign", req.by)
        task = self._task(req.task_id)
        self._not_finished(task)
        if task.assignee == req.agent:
            raise TaskConflict(f"task {task.task_id} is already with {req.agent}")

    @workflow.update
    async def add_note(self, req: AddNote) -> TaskSnapshot:
        task = self.tasks[req.task_id]
        task.notes.append(TaskNote(author=req.author, text=req.text, at=workflow.now()))
        return await self.transition(task, "note_added", f"by {req.author}", publish=False)

    @add_note.validator
    def _validate_note(self, req: AddNote) -> None:
        require_decision(req.authorization, "note", req.author)
        task = self._task(req.task_id)
        if task.status == TaskStatus.cancelled:
            raise TaskConflict(f"task {task.task_id} is cancelled")

    @workflow.update
    async def complete_task(self, req: CompleteTask) -> TaskSnapshot:
        task = self.tasks[req.task_id]
        self.decisions[task.task_id] = req
        if self._bounded and req.outcome == TaskOutcome.resolve:
            # What the customer wrote so far is answered; a message from now on reopens the
            # case (counted here, not when the closing wait starts, so none slips between).
            self.customer_answered()
        return await self.transition(
            task, "task_completed", f"{req.outcome} by {req.agent}",
            data={"outcome": str(req.outcome), "agent": req.agent},
            authorized=[d for d in req.authorization if d.action in SENSITIVE_ACTIONS],
            status=TaskStatus.completed, outcome=req.outcome, reply=req.reply, completed_at=workflow.now())

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
        self._held_by(task, req.agent)
        if req.outcome not in task.allowed_outcomes:
            allowed = ", ".join(task.allowed_outcomes)
            raise TaskConflict(f"outcome {req.outcome} is not allowed for this task (allowed: {allowed})")
