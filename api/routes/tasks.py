"""Agents' tasks: the inbox and the actions on one task.

Every action is a Temporal Update validated inside the ticket's workflow: a refused action
(already claimed, not yours, wrong state) comes back as 409 and writes nothing."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import AuthorizerDep, CurrentUser, DbDep, TemporalDep, require, require_scope
from models import readmodel
from models.task import ClaimTask, CompleteTask, ReleaseTask, TaskCompletion, TaskPage, TaskPublic, TaskSnapshot, TaskStatus
from policies import Resource
from workflows.ticket import TicketWorkflow

router = APIRouter(prefix="/tasks", tags=["tasks"])


@router.get("", response_model=TaskPage, summary="The inbox: tasks in the caller's queues, oldest first")
async def list_tasks(
    user: CurrentUser, db: DbDep, authorizer: AuthorizerDep,
    status_: Annotated[TaskStatus | None, Query(alias="status")] = None,
    queue: Annotated[str | None, Query(max_length=50)] = None,
    assignee: Annotated[str | None, Query(max_length=100, description="`me` for the caller")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> TaskPage:
    scope = require_scope(authorizer, user, "read", "task")
    items, next_cursor = await db.run(
        readmodel.list_tasks, limit=limit, cursor=cursor, status=status_.value if status_ else None, queue=queue,
        queues=[user.department] if scope == "department" else None,
        assignee=user.name if assignee == "me" else assignee,
    )
    return TaskPage(items=items, next_cursor=next_cursor)


def _public(task: TaskSnapshot) -> TaskPublic:
    return TaskPublic.model_validate({**task.model_dump(), "id": task.task_id})


async def _act(task_id: str, action: str, update: Any, arg: Any, user, db, client, authorizer) -> TaskPublic:
    row = await db.run(readmodel.get_task, task_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no task {task_id}")
    require(authorizer, user, action, Resource("task", department=row.queue))
    handle = client.get_workflow_handle(row.workflow_id)
    try:
        result: TaskSnapshot = await handle.execute_update(update, arg)
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type == "TaskNotFound":
            raise HTTPException(status.HTTP_404_NOT_FOUND, cause.message) from err
        if isinstance(cause, ApplicationError) and cause.type == "TaskConflict":
            raise HTTPException(status.HTTP_409_CONFLICT, cause.message) from err
        raise
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:  # the workflow has finished
            raise HTTPException(status.HTTP_409_CONFLICT, f"task {task_id} belongs to a closed ticket") from err
        raise
    return _public(result)


@router.post("/{task_id}/claim", response_model=TaskPublic, summary="Take a task (409 if someone else has it)")
async def claim(task_id: str, user: CurrentUser, db: DbDep, client: TemporalDep, authorizer: AuthorizerDep):
    return await _act(task_id, "claim", TicketWorkflow.claim_task, ClaimTask(task_id=task_id, agent=user.name),
                      user, db, client, authorizer)


@router.post("/{task_id}/release", response_model=TaskPublic, summary="Give a claimed task back to its queue")
async def release(task_id: str, user: CurrentUser, db: DbDep, client: TemporalDep, authorizer: AuthorizerDep):
    return await _act(task_id, "release", TicketWorkflow.release_task, ReleaseTask(task_id=task_id, agent=user.name),
                      user, db, client, authorizer)


@router.post("/{task_id}/complete", response_model=TaskPublic,
             summary="Finish a claimed task with an outcome (resolve, ask_customer, escalate, transfer)")
async def complete(
    task_id: str, body: TaskCompletion, user: CurrentUser, db: DbDep, client: TemporalDep, authorizer: AuthorizerDep
):
    arg = CompleteTask(task_id=task_id, agent=user.name, outcome=body.outcome, reply=body.reply, queue=body.queue)
    return await _act(task_id, "complete", TicketWorkflow.complete_task, arg, user, db, client, authorizer)
