"""Fakes for workflow tests: activities replaced by name, and small polling helpers."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from models.routing import OfferRequest, OfferResult, RouteDecision, RouteRequest
from models.steps import CustomerNotification, DeliveryReceipt
from models.auth import AccessDecision
from models.task import AddNote, ClaimTask, CompleteTask, ReassignTask, ReleaseTask, TaskOutcome, TaskSnapshot
from models.ticket import TicketChanges, TicketSnapshot
from workflows.ticket import TicketWorkflow


def allow(action: str, who: str) -> AccessDecision:
    """The decision the API would send along with an action it allowed."""
    return AccessDecision(principal=who, action=action, object="task", department="logistics", allowed=True,
                          role="agent", rule=f"p, agent, task, {action}, department,", policy_version=1)


def claim_request(**fields) -> ClaimTask:
    return ClaimTask(**fields, authorization=allow("claim", fields["agent"]))


def release_request(**fields) -> ReleaseTask:
    return ReleaseTask(**fields, authorization=allow("release", fields["agent"]))


def note_request(**fields) -> AddNote:
    return AddNote(**fields, authorization=allow("note", fields["author"]))


def reassign_request(**fields) -> ReassignTask:
    return ReassignTask(**fields, authorization=allow("reassign", fields["by"]))


def completion(**fields) -> CompleteTask:
    """A completion with every decision its outcome needs: completing, escalating or
    transferring, refunding."""
    agent, outcome = fields["agent"], str(fields["outcome"])  # any case type's outcome
    decisions = [allow("complete", agent)]
    if outcome in (TaskOutcome.escalate.value, TaskOutcome.transfer.value):
        decisions.append(allow(outcome, agent))
    if fields.get("refund") is not None:
        decisions.append(allow("refund", agent))
    return CompleteTask(**fields, authorization=decisions)


class FakeReadModel:
    """Stands in for the database: keeps the latest projection per id, by revision."""

    def __init__(self) -> None:
        self.tickets: dict[str, TicketSnapshot] = {}
        self.tasks: dict[str, TaskSnapshot] = {}
        self.replies: list[CustomerNotification] = []
        self.fail_delivery = False
        self.delivery_seconds = 0.0  # how long a reply takes to go out
        self.projection_seconds = 0.0  # how long showing a ticket's changes takes
        self.route_to: list[str | None] = []  # answers of the router, in order; empty: nobody fits
        self.routed: list[RouteRequest] = []
        self.offers: list[OfferRequest] = []

    def activities(self) -> list:
        @activity.defn(name="project_ticket")
        async def project_ticket(snap: TicketSnapshot) -> None:
            old = self.tickets.get(snap.ticket_id)
            if old is None or old.revision < snap.revision:
                self.tickets[snap.ticket_id] = snap

        @activity.defn(name="project_ticket_changes")
        async def project_ticket_changes(changes: TicketChanges) -> None:
            await asyncio.sleep(self.projection_seconds)
            old = self.tickets.get(changes.ticket.ticket_id)
            if old is None or old.revision < changes.ticket.revision:
                self.tickets[changes.ticket.ticket_id] = changes.applied_to(old)

        @activity.defn(name="project_task")
        async def project_task(snap: TaskSnapshot) -> None:
            old = self.tasks.get(snap.task_id)
            if old is None or old.revision < snap.revision:
                self.tasks[snap.task_id] = snap

        @activity.defn(name="deliver_reply")
        async def deliver_reply(note: CustomerNotification) -> DeliveryReceipt:
            if self.fail_delivery:
                raise ApplicationError("recipient unknown", type="InvalidRequest", non_retryable=True)
            await asyncio.sleep(self.delivery_seconds)
            self.replies.append(note)
            return DeliveryReceipt(delivered=True, via="test")

        @activity.defn(name="route_task")
        async def route_task(req: RouteRequest) -> RouteDecision:
            self.routed.append(req)
            agent = self.route_to.pop(0) if self.route_to else None
            return RouteDecision(agent_id=agent, code="assigned" if agent else "nobody_fits",
                                 reason=f"least loaded: {agent}" if agent else "no agent online in queue")

        @activity.defn(name="offer_queued")
        async def offer_queued(req: OfferRequest) -> OfferResult:
            self.offers.append(req)
            return OfferResult()

        return [project_ticket, project_ticket_changes, project_task, deliver_reply, route_task, offer_queued]


async def open_task(handle: WorkflowHandle, *, not_id: str | None = None, timeout: float = 10) -> TaskSnapshot:
    """Poll the workflow's query until it offers an open task (other than `not_id`).

    A query that meets the run just as it continues as new can go unanswered by the
    time-skipping server: such a query is cut off after a few seconds and asked again,
    which reaches the new run. A query is a read, so asking twice changes nothing."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            tasks = await handle.query(TicketWorkflow.open_tasks, rpc_timeout=timedelta(seconds=5))
        except RPCError as err:
            if err.status not in (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED) \
                    or asyncio.get_running_loop().time() > deadline:
                raise
            continue
        tasks = [t for t in tasks if t.task_id != not_id]
        if tasks:
            return tasks[0]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("no open task appeared")
        await asyncio.sleep(0.05)


async def work_task(handle: WorkflowHandle, outcome, *, agent: str = "ana", not_id: str | None = None,
                    **fields) -> TaskSnapshot:
    """An agent claims the next open task and completes it with `outcome` (and `reply`,
    `queue`, ... in `fields`); returns the task as it was offered."""
    task = await open_task(handle, not_id=not_id)
    await handle.execute_update(TicketWorkflow.claim_task, claim_request(task_id=task.task_id, agent=agent))
    await handle.execute_update(
        TicketWorkflow.complete_task,
        completion(task_id=task.task_id, agent=agent, outcome=outcome, **fields),
    )
    return task
