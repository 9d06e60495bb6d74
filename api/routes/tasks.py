"""Agents' tasks: the inbox and the actions on one task.

Every action is a Temporal Update validated inside the ticket's workflow: a refused action
(already claimed, not yours, wrong state) comes back as 409 and writes nothing."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import BaseModel, Field, field_validator
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.routing import send_update
from api.deps import (
    CONFLICT,
    FORBIDDEN,
    NOT_FOUND,
    AuthorizerDep,
    CaseTypeFilter,
    CurrentUser,
    DbDep,
    TemporalDep,
    answers,
    forbidden,
    not_found,
    require,
    require_reach,
)
from models import readmodel
from models.auth import EVERY_DEPARTMENT, AccessDecision, Principal
from models.customer360 import left_to_refund
from models.db import utcnow
from models.enums import Priority
from models.readmodel import TaskSort
from models.task import (
    AddNote,
    ClaimTask,
    CompleteTask,
    ReassignTask,
    RefundDecision,
    ReleaseTask,
    TaskCompletion,
    TaskOutcome,
    TaskPage,
    TaskPublic,
    TaskSnapshot,
    TaskStatus,
)
from policies import Authorizer, Resource
from policies.store import department_exists, work_departments
from workflows.ticket import TicketWorkflow

router = APIRouter(prefix="/tasks", tags=["tasks"])

# Inbox pages are short reads at a high rate. On SQLite a page is a sub-millisecond local
# read that never waits for a lock (WAL), so it runs right here: handing it to a thread
# would cost more than the read. On PostgreSQL it runs on the event loop's own driver
# (Database.run).


@router.get("", response_model=TaskPage, responses=answers(FORBIDDEN),
            summary="The inbox: tasks in the caller's queues")
async def list_tasks(
    user: CurrentUser, db: DbDep, authorizer: AuthorizerDep, case_type: CaseTypeFilter,
    status_: Annotated[TaskStatus | None, Query(alias="status")] = None,
    queue: Annotated[str | None, Query(max_length=50)] = None,
    assignee: Annotated[str | None, Query(max_length=100, description="`me` for the caller")] = None,
    priority: Annotated[Priority | None, Query()] = None,
    overdue: Annotated[bool, Query(description="Only open or claimed tasks past their SLA due time")] = False,
    skill: Annotated[str | None, Query(max_length=50, description="Only tasks that need this skill")] = None,
    sort: Annotated[TaskSort, Query(description="created: oldest first; due: nearest SLA breach first, "
                                                "tasks without one last; priority: most urgent, then oldest")]
    = TaskSort.created,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500, description="next_cursor of the previous page, "
                                                                   "with the same sort")] = None,
) -> Response:
    reach = require_reach(authorizer, user, "read", "task")
    query = dict(
        as_json=True, limit=limit, cursor=cursor, sort=sort, status=status_.value if status_ else None,
        queue=queue, queues=None if reach.everything else sorted(reach.departments),
        assignee=user.name if assignee == "me" else assignee, priority=priority.value if priority else None,
        skill=skill, overdue_at=utcnow() if overdue else None, case_type=case_type,
    )
    if db.on_event_loop:
        items, next_cursor = await db.run(readmodel.list_tasks, **query)
    else:
        items, next_cursor = db.call(readmodel.list_tasks, **query)
    # The rows arrive as TaskPublic JSON already (see readmodel.list_tasks).
    body = '{"items":[' + ",".join(items) + '],"next_cursor":' + json.dumps(next_cursor) + "}"
    return Response(body, media_type="application/json")


def _public(task: TaskSnapshot) -> TaskPublic:
    return TaskPublic.model_validate({**task.model_dump(), "id": task.task_id})


def _task_resource(row) -> Resource:  # noqa: ANN001
    return Resource("task", department=row.queue, assignees=(row.assignee,) if row.assignee else ())


async def _task_for(task_id: str, action: str, user: Principal, db, authorizer: Authorizer):  # noqa: ANN001, ANN202
    """The task row and the decision allowing `action` on it. A task the caller may not read
    is 404, like one that does not exist; one they read but may not act on is 403."""
    row = await db.run(readmodel.get_task, task_id)
    if row is None or not authorizer.allowed(user, "read", _task_resource(row)):
        raise not_found("task", task_id)
    return row, require(authorizer, user, action, _task_resource(row))


async def _update(row, update: Any, arg: Any, client) -> TaskPublic:
    """Send the update to the task's workflow; its validator's refusal becomes 404 or 409."""
    try:
        result: TaskSnapshot = await send_update(client, row.workflow_id, update, arg)
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type == "TaskNotFound":
            raise HTTPException(status.HTTP_404_NOT_FOUND, cause.message) from err
        if isinstance(cause, ApplicationError) and cause.type in ("TaskConflict", "Unauthorized"):
            raise HTTPException(status.HTTP_409_CONFLICT, cause.message) from err
        raise
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:  # the workflow has finished
            raise HTTPException(status.HTTP_409_CONFLICT, f"task {row.id} belongs to a closed ticket") from err
        raise
    return _public(result)


ACTION_ANSWERS = answers(FORBIDDEN, NOT_FOUND, CONFLICT)


@router.post("/{task_id}/claim", response_model=TaskPublic, responses=ACTION_ANSWERS,
             summary="Take a task (409 if someone else has it)")
async def claim(task_id: str, user: CurrentUser, db: DbDep, client: TemporalDep, authorizer: AuthorizerDep):
    row, decision = await _task_for(task_id, "claim", user, db, authorizer)
    return await _update(row, TicketWorkflow.claim_task,
                         ClaimTask(task_id=task_id, agent=user.name, authorization=decision), client)


@router.post("/{task_id}/release", response_model=TaskPublic, responses=ACTION_ANSWERS,
             summary="Give a claimed task back to its queue")
async def release(task_id: str, user: CurrentUser, db: DbDep, client: TemporalDep, authorizer: AuthorizerDep):
    row, decision = await _task_for(task_id, "release", user, db, authorizer)
    return await _update(row, TicketWorkflow.release_task,
                         ReleaseTask(task_id=task_id, agent=user.name, authorization=decision), client)


def _unknown_queue(queue: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{
        "loc": ["body", "queue"], "type": "value_error",
        "msg": f"unknown department {queue!r}: transfer to one of the departments (GET /admin/departments)",
    }])


async def _outcome_decisions(body: TaskCompletion, row, user: Principal, db, authorizer: Authorizer  # noqa: ANN001
                             ) -> list[AccessDecision]:
    """The rights an outcome needs beyond completing: escalating, transferring, refunding
    (within the role's limit). Checked before anything is sent, so a refusal consumes nothing."""
    decisions = []
    if body.outcome in (TaskOutcome.escalate, TaskOutcome.transfer):
        decisions.append(require(authorizer, user, body.outcome, _task_resource(row)))
    if body.outcome == TaskOutcome.transfer:
        if not await db.run(department_exists, body.queue):
            raise _unknown_queue(body.queue or "")
    # An outcome that moves money by itself (approving a return refunds it) says how much
    # in the task's context; it needs the same right, within the same limit, as a refund.
    refund_on = (row.context or {}).get("refund_on") or {}
    if body.refund is not None:
        _refund_fits_the_order(body.refund, row.context or {})
    if body.refund is not None or body.outcome in refund_on:
        amount = body.refund.amount if body.refund is not None else Decimal(str(refund_on[body.outcome]))
        target = Resource("order", department=row.queue, amount=float(amount))
        decision = authorizer.decide(user, "refund", target)
        if not decision.allowed:
            limit = authorizer.refund_limit(user, row.queue)
            why = (f"{amount} is over your refund limit of {limit} for tickets of {row.queue}: ask a supervisor"
                   if limit is not None else "")
            raise forbidden(user, "refund", "order", row.queue, why=why)
        decisions.append(decision)
    return decisions


def _refund_fits_the_order(refund: RefundDecision, context: dict[str, Any]) -> None:
    """A refund larger than what is left on the order is refused here, before anything is
    sent, by what the order system said when the case gathered its facts (the ERP checks
    again when it refunds). An order the gather did not see is left to the ERP."""
    order_id = refund.order_id or context.get("order_id")
    known = left_to_refund(context.get("customer360"), order_id)
    if known is not None and refund.amount > known[0]:
        left, currency = known
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{
            "loc": ["body", "refund", "amount"], "type": "value_error",
            "msg": f"a refund of {refund.amount} is more than the {left:.2f} {currency} left to refund on order "
                   f"{order_id}".replace("  ", " ")}])


@router.post("/{task_id}/complete", response_model=TaskPublic, responses={**ACTION_ANSWERS},
             summary="Finish a claimed task with one of its allowed outcomes (a support ticket's: resolve, "
                     "ask_customer, escalate, transfer)")
async def complete(
    task_id: str, body: TaskCompletion, user: CurrentUser, db: DbDep, client: TemporalDep, authorizer: AuthorizerDep
):
    row, decision = await _task_for(task_id, "complete", user, db, authorizer)
    if body.outcome not in row.allowed_outcomes:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{
            "loc": ["body", "outcome"], "type": "value_error",
            "msg": f"outcome {body.outcome!r} is not one this task takes: {', '.join(row.allowed_outcomes)}"}])
    decisions = [decision, *await _outcome_decisions(body, row, user, db, authorizer)]
    arg = CompleteTask(task_id=task_id, agent=user.name, outcome=body.outcome, reply=body.reply, queue=body.queue,
                       refund=body.refund, authorization=decisions)
    return await _update(row, TicketWorkflow.complete_task, arg, client)


def _unsuitable_agent(why: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                         [{"loc": ["body", "agent"], "type": "value_error", "msg": why}])


class TaskReassignment(BaseModel):
    agent: str = Field(min_length=1, max_length=100, description="Id of the agent who takes the task over.")


@router.post("/{task_id}/reassign", response_model=TaskPublic, responses=ACTION_ANSWERS,
             summary="Move a task to another agent, claimed or not (supervisors)")
async def reassign(
    task_id: str, body: TaskReassignment, user: CurrentUser, db: DbDep, client: TemporalDep,
    authorizer: AuthorizerDep,
):
    row, decision = await _task_for(task_id, "reassign", user, db, authorizer)
    agent = await db.run(readmodel.get_agent, body.agent)
    if agent is None:
        raise _unsuitable_agent(f"no agent {body.agent}: create them first with PUT /agents/{body.agent}")
    if row.queue not in agent.queues:
        raise _unsuitable_agent(f"agent {body.agent} does not work queue {row.queue}: add it to their queues first")
    held = (await db.run(work_departments, [body.agent])).get(body.agent, set())
    if EVERY_DEPARTMENT not in held and row.queue not in held:
        raise _unsuitable_agent(
            f"agent {body.agent} holds no role that works tasks of {row.queue}: grant one first "
            f"(`ticketflow policy grant --user {body.agent} --role agent --department {row.queue}`)")
    return await _update(row, TicketWorkflow.reassign_task,
                         ReassignTask(task_id=task_id, agent=body.agent, by=user.name, authorization=decision), client)


class NoteCreate(BaseModel):
    text: str = Field(min_length=1, max_length=10_000, description="Seen by agents only, never by the customer.")

    @field_validator("text")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("text must not be blank")
        return text


@router.post("/{task_id}/notes", response_model=TaskPublic, status_code=status.HTTP_201_CREATED,
             responses=ACTION_ANSWERS, summary="Add an internal note to a task (agents of its department)")
async def add_note(
    task_id: str, body: NoteCreate, user: CurrentUser, db: DbDep, client: TemporalDep, authorizer: AuthorizerDep
):
    row, decision = await _task_for(task_id, "note", user, db, authorizer)
    return await _update(row, TicketWorkflow.add_note,
                         AddNote(task_id=task_id, author=user.name, text=body.text, authorization=decision), client)
