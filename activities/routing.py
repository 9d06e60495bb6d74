"""Routing against the read model: who gets a task, and handing queued tasks to agents.

The choice itself is the pure ``routing`` engine; this module gives it a consistent view of
the agents and their load. Every decision runs in one transaction that first locks the
candidate agents (``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite),
counts their claimed tasks, and writes the reservation (the task row's assignee) before it
commits. Two routers deciding at once therefore take turns, and the second one sees the
first one's reservation in the load: concurrent routing never pushes an agent past their
capacity.

A reservation keeps the revision of the state the workflow asked about: the workflow stays
the source of truth, and its next projection (the applied assignment, or a hand claim that
won the race) overwrites the reservation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from dataclasses import dataclass

from sqlalchemy import or_, select, update
from sqlmodel import Session
from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from models import readmodel
from models.agent import Agent, RoutingCursor
from models.auth import EVERY_DEPARTMENT, system_decision
from models.db import Database, utcnow
from models.routing import OfferRequest, OfferResult, RouteDecision, RouteRequest
from policies.store import work_departments
from models.task import AssignTask, ReleaseTask, Task, TaskStatus
from routing import AgentProfile, Presence, RoutingState, TaskRequirements, choose_agent, offer_queued
from sla.policy import CustomerTier, Priority
from workflows.ticket import TicketWorkflow

log = logging.getLogger("ticketflow.routing")

# Tasks considered per offer, most urgent and oldest first. More than any team frees up at
# once; a task further back waits for the next offer.
OFFER_WINDOW = 1000
# Updates sent to workflows at once when handing out or releasing many tasks.
UPDATE_CONCURRENCY = 16
# Rounds of releasing an agent's tasks (see release_agent_tasks).
RELEASE_PASSES = 3

ROUTING_RULE = "routing hands open tasks to online agents who may claim them in the task's department"

ALREADY_ASSIGNED = "already_assigned"
TASK_NOT_OPEN = "task_not_open"


class TaskNotProjected(RuntimeError):
    """The task row is not in the read model yet; the activity retries."""


class TaskChanged(RuntimeError):
    """A projection landed between reading the task row and reserving it; the activity
    retries with the new row."""


@dataclass(frozen=True)
class Reservation:
    task_id: str
    workflow_id: str
    agent_id: str
    reason: str
    revision: int
    previous_routing: str | None


# --- the locked transaction -----------------------------------------------------------------


def _lock_routing(session: Session) -> None:
    # SQLite has one writer at a time: taking the write lock up front means the reads below
    # already see every reservation committed before ours.
    if session.get_bind().dialect.name == "sqlite":
        session.connection().exec_driver_sql("BEGIN IMMEDIATE")


def _lock_agents(session: Session, queues: list[str]) -> list[Agent]:
    """Agents working any of `queues`, locked in id order (the same order everywhere, so two
    routers never wait on each other's locks in a cycle)."""
    works = [readmodel.json_array_contains(session, Agent.__table__.c.queues, queue) for queue in queues]
    q = select(Agent).where(or_(*works)).order_by(Agent.id)
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(of=Agent)
    return list(session.exec(q).scalars())  # type: ignore[call-overload]


def _profiles(session: Session, agents: list[Agent], excluding_task: str | None = None) -> list[AgentProfile]:
    """The routing engine's view of `agents`. An agent works only the queues of their profile
    in which they also hold a role that may claim tasks: the memberships authorization reads."""
    ids = [a.id for a in agents]
    loads = readmodel.agent_loads(session, ids, excluding_task=excluding_task)
    allowed = work_departments(session, ids)

    def workable(a: Agent) -> frozenset[str]:
        held = allowed.get(a.id, set())
        return frozenset(q for q in a.queues if EVERY_DEPARTMENT in held or q in held)

    return [
        AgentProfile(id=a.id, skills=frozenset(a.skills), languages=frozenset(a.languages),
                     queues=workable(a), capacity=a.capacity, load=loads.get(a.id, 0),
                     presence=Presence(a.presence), senior=a.senior)
        for a in agents
    ]


def _cursor_state(session: Session, queues: list[str]) -> RoutingState:
    q = select(RoutingCursor).where(RoutingCursor.__table__.c.queue.in_(queues))
    rows = session.exec(q).scalars()  # type: ignore[call-overload]
    return RoutingState(last_assigned={r.queue: r.last_assigned for r in rows if r.last_assigned})


def _save_cursor_state(session: Session, before: RoutingState, after: RoutingState) -> None:
    for queue, agent_id in after.last_assigned.items():
        if before.last_assigned.get(queue) != agent_id:
            readmodel.save_routing_cursor(session, queue, agent_id)


def _reserve(session: Session, task_id: str, agent_id: str, reason: str, *, seen_status: str, seen_revision: int,
             revision: int) -> bool:
    """Put the task in the agent's hands if its row is still as we read it."""
    c = Task.__table__.c
    result = session.exec(  # type: ignore[call-overload]
        update(Task.__table__)
        .where(c.id == task_id, c.status == seen_status, c.revision == seen_revision)
        .values(status=TaskStatus.claimed.value, assignee=agent_id, claimed_at=utcnow(), routing=reason,
                revision=revision)
    )
    return result.rowcount == 1


def _undo_reservation(session: Session, r: Reservation) -> None:
    """Give the task back to its queue unless the workflow has projected something newer."""
    c = Task.__table__.c
    session.exec(  # type: ignore[call-overload]
        update(Task.__table__)
        .where(c.id == r.task_id, c.status == TaskStatus.claimed.value, c.assignee == r.agent_id,
               c.revision == r.revision)
        .values(status=TaskStatus.open.value, assignee=None, claimed_at=None, routing=r.previous_routing)
    )


class _AskTheWorkflow(Exception):
    """The task row says claimed while its workflow asks to route it."""


def _held(agent_id: str | None, why: str) -> RouteDecision:
    return RouteDecision(agent_id=agent_id, code=ALREADY_ASSIGNED, reason=f"Already with {agent_id}: {why}.")


def route_in_transaction(session: Session, req: RouteRequest, open_at_revision: int | None = None) -> RouteDecision:
    """Choose an agent for the task and reserve them, all under the routing lock.

    `open_at_revision` is set when the workflow has confirmed the task is open at that
    revision although its row said claimed (see `route`)."""
    task_req = req.requirements
    _lock_routing(session)
    agents = _lock_agents(session, [task_req.queue])
    state = _cursor_state(session, [task_req.queue])
    # The task's own row never counts as load: it may still show a previous holder.
    profiles = _profiles(session, agents, excluding_task=task_req.task_id)
    agent_id, new_state, reason = choose_agent(task_req, profiles, state)
    decision = RouteDecision(agent_id=agent_id, code=reason.code.value, reason=reason.explanation)
    if agent_id is None:
        return decision
    row = session.get(Task, task_req.task_id)
    if row is None:
        raise TaskNotProjected(f"task {task_req.task_id} is not in the read model yet")
    revision = row.revision
    if row.status == TaskStatus.claimed.value:
        if open_at_revision is None:
            # Our own reservation from an attempt whose answer was lost, a projection of the
            # task's release still on its way, or a hand claim that got there first.
            raise _AskTheWorkflow
        if row.revision > open_at_revision:  # a newer change than the workflow told us about
            return _held(row.assignee, "claimed while routing")
        # The workflow's revision: the projection of the open state it has in flight
        # cannot undo this reservation; the applied assignment (one revision on) replaces it.
        revision = open_at_revision
    elif row.status != TaskStatus.open.value:
        return RouteDecision(agent_id=None, code=TASK_NOT_OPEN, reason=f"Stays as it is: the task is {row.status}.")
    if not _reserve(session, row.id, agent_id, reason.explanation, seen_status=row.status,
                    seen_revision=row.revision, revision=revision):
        raise TaskChanged(f"task {row.id} changed while it was being routed")
    _save_cursor_state(session, state, new_state)
    return decision


async def route(db: Database, client: Client, req: RouteRequest) -> RouteDecision:
    """Route one task; see `route_in_transaction`."""
    try:
        return await db.run(route_in_transaction, req)
    except _AskTheWorkflow:
        pass
    # Asked outside the transaction: no database lock is held while Temporal answers.
    tasks = await client.get_workflow_handle(req.workflow_id).query(TicketWorkflow.open_tasks)
    task = next((t for t in tasks if t.task_id == req.requirements.task_id), None)
    if task is None:
        return RouteDecision(agent_id=None, code=TASK_NOT_OPEN, reason="Stays as it is: the task is finished.")
    if task.status != TaskStatus.open:
        return _held(task.assignee, "claimed while routing")
    return await db.run(route_in_transaction, req, task.revision)


def _requirements(row) -> TaskRequirements:
    try:
        tier = CustomerTier(row.customer_tier)
    except ValueError:
        tier = CustomerTier.standard
    return TaskRequirements(task_id=row.id, queue=row.queue, skills=frozenset(row.skills), language=row.language,
                            priority=Priority(row.priority), tier=tier, queued_at=row.created_at)


def offer_in_transaction(session: Session, queues: list[str]) -> list[Reservation]:
    """Reserve agents with free capacity for the waiting tasks of `queues`."""
    if not queues:
        return []
    _lock_routing(session)
    profiles = _profiles(session, _lock_agents(session, queues))
    if not any(p.presence is Presence.online and p.load < p.capacity for p in profiles):
        return []
    c = Task.__table__.c
    rows = session.exec(  # type: ignore[call-overload]
        select(c.id, c.workflow_id, c.queue, c.skills, c.language, c.priority, c.customer_tier, c.created_at,
               c.revision, c.routing)
        .where(c.queue.in_(queues), c.status == TaskStatus.open.value, c.assignee.is_(None))
        .order_by(c.priority_rank.desc(), c.created_at.asc(), c.id.asc())
        .limit(OFFER_WINDOW)
    ).all()
    if not rows:
        return []
    by_id = {row.id: row for row in rows}
    state = _cursor_state(session, queues)
    assignments, new_state = offer_queued([_requirements(row) for row in rows], profiles, state)
    reserved = []
    for a in assignments:
        row = by_id[a.task_id]
        if _reserve(session, a.task_id, a.agent_id, a.reason.explanation, seen_status=TaskStatus.open.value,
                    seen_revision=row.revision, revision=row.revision):
            reserved.append(Reservation(a.task_id, row.workflow_id, a.agent_id, a.reason.explanation, row.revision,
                                        row.routing))
    _save_cursor_state(session, state, new_state)
    return reserved


# --- telling the workflows ------------------------------------------------------------------

# Temporal pushes back on a busy workflow (more than ten updates in flight, or updates
# aborted while it reloads); these pass within moments.
PUSHBACK = {RPCStatusCode.RESOURCE_EXHAUSTED, RPCStatusCode.UNAVAILABLE}
UPDATE_RETRY_SECONDS = 15.0
# Updates this process sends to one workflow at once. Twenty agents clicking the same task
# then queue here instead of overrunning the workflow; the losers are refused one by one by
# its validator, which writes nothing.
UPDATES_IN_FLIGHT_PER_WORKFLOW = 4


class _PerWorkflowLimit:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._gates: dict[str, tuple[asyncio.Semaphore, int]] = {}

    @contextlib.asynccontextmanager
    async def __call__(self, workflow_id: str):
        gate, users = self._gates.get(workflow_id) or (asyncio.Semaphore(self.limit), 0)
        self._gates[workflow_id] = (gate, users + 1)
        try:
            async with gate:
                yield
        finally:
            gate, users = self._gates[workflow_id]
            if users == 1:
                del self._gates[workflow_id]
            else:
                self._gates[workflow_id] = (gate, users - 1)


_one_workflow = _PerWorkflowLimit(UPDATES_IN_FLIGHT_PER_WORKFLOW)


async def send_update(client: Client, workflow_id: str, update, arg, *, retry_for: float = UPDATE_RETRY_SECONDS):
    """Run a workflow update, retrying while Temporal pushes back.

    Every attempt carries the same update id, so an attempt that did get through before
    the push-back is answered with its result instead of being applied twice."""
    handle = client.get_workflow_handle(workflow_id)
    update_id = str(uuid.uuid4())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + retry_for
    delay = 0.05
    while True:
        try:
            async with _one_workflow(workflow_id):
                return await handle.execute_update(update, arg, id=update_id)
        except RPCError as err:
            if err.status not in PUSHBACK or loop.time() + delay > deadline:
                raise
        await asyncio.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 1.0)


def _refused(err: BaseException) -> str | None:
    """Why a workflow refused an update for good (the task moved on, the ticket is closed),
    or None for a failure worth retrying."""
    if isinstance(err, WorkflowUpdateFailedError):
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type in ("TaskConflict", "TaskNotFound"):
            return cause.message
        return None
    if isinstance(err, RPCError) and err.status == RPCStatusCode.NOT_FOUND:
        return "the ticket's workflow has finished"
    return None


async def assign_reserved(db: Database, client: Client, reservations: list[Reservation]) -> OfferResult:
    """Tell each reserved task's workflow to assign it; give back the reservations it refuses."""
    limit = asyncio.Semaphore(UPDATE_CONCURRENCY)

    async def assign(r: Reservation) -> bool:
        async with limit:
            try:
                await send_update(client, r.workflow_id, TicketWorkflow.assign_task,
                                  AssignTask(task_id=r.task_id, agent=r.agent_id, by="routing", reason=r.reason,
                                             authorization=system_decision("routing", "assign", ROUTING_RULE)))
                return True
            except Exception as err:
                await db.run(_undo_reservation, r)
                why = _refused(err)
                if why is None:
                    raise
                log.info("task %s not assigned to %s: %s", r.task_id, r.agent_id, why)
                return False

    outcomes = await asyncio.gather(*(assign(r) for r in reservations), return_exceptions=True)
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    if failures:
        raise failures[0]
    return OfferResult(assigned={r.task_id: r.agent_id for r, ok in zip(reservations, outcomes) if ok is True})


async def offer_queued_tasks(db: Database, client: Client, queues: list[str]) -> OfferResult:
    """Hand the waiting tasks of `queues` to agents with free capacity, and tell each task's
    workflow. A task someone claimed meanwhile is skipped; a failure to reach Temporal gives
    the unapplied reservations back and raises."""
    reservations = await db.run(offer_in_transaction, sorted(set(queues)))
    return await assign_reserved(db, client, reservations)


async def release_agent_tasks(db: Database, client: Client, agent_id: str, reason: str) -> list[str]:
    """Give back every task `agent_id` holds (their workflows reroute them). Returns the ids
    released; a task that changed hands meanwhile is left alone.

    A task routing reserved for the agent just before they left may not be theirs in its
    workflow yet (the workflow refuses the release: not claimed); a later pass catches it
    once the assignment has landed."""
    limit = asyncio.Semaphore(UPDATE_CONCURRENCY)

    async def release(task_id: str, workflow_id: str) -> str | None:
        async with limit:
            try:
                await send_update(client, workflow_id, TicketWorkflow.release_task,
                                  ReleaseTask(task_id=task_id, agent=agent_id, reason=reason,
                                              authorization=system_decision("presence", "release", reason)))
                return task_id
            except Exception as err:
                why = _refused(err)
                if why is None:
                    raise
                log.info("task %s not released from %s: %s", task_id, agent_id, why)
                return None

    released: list[str] = []
    for attempt in range(RELEASE_PASSES):
        held = await db.run(readmodel.tasks_held_by, agent_id)
        if not held:
            break
        if attempt:
            await asyncio.sleep(0.25 * attempt)
        outcomes = await asyncio.gather(*(release(t, w) for t, w in held), return_exceptions=True)
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            raise failures[0]
        released += [o for o in outcomes if isinstance(o, str)]
    return released


class RoutingActivities:
    """The routing activities of a worker: `route_task` and `offer_queued`."""

    def __init__(self, db: Database, client: Client) -> None:
        self.db = db
        self.client = client

    @activity.defn(name="route_task")
    async def route_task(self, req: RouteRequest) -> RouteDecision:
        return await route(self.db, self.client, req)

    @activity.defn(name="offer_queued")
    async def offer_queued(self, req: OfferRequest) -> OfferResult:
        return await offer_queued_tasks(self.db, self.client, req.queues)
