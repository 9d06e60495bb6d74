"""Routing against the real read model (SQLite and PostgreSQL): reservations under
concurrency, the round-robin memory, stale rows, and offering and releasing tasks through
real ticket workflows. Who fits a task is tested on the pure engine in tests/routing."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import delete
from sqlmodel import select

from activities.routing import (
    ALREADY_ASSIGNED,
    RoutingActivities,
    assign_reserved,
    offer_in_transaction,
    release_agent_tasks,
)
from api.main import create_app
from harness import eventually, ticket_body
from models import readmodel
from policies.store import add_department, create_user, grant, revoke
from models.agent import AgentUpsert
from models.routing import OfferRequest, RouteRequest
from models.task import Task, TaskSnapshot, TaskStatus
from workflow_fakes import claim_request
from models.ticket import Priority
from routing import Presence, TaskRequirements
from settings import Settings
from worker import build_worker
from workflows.ticket import TicketWorkflow

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


class NoTemporal:
    """For decisions that must come from the database alone."""

    def get_workflow_handle(self, workflow_id: str):
        raise AssertionError(f"routing asked workflow {workflow_id} although the task row was open")


class FakeWorkflow:
    """A workflow that answers the `open_tasks` query with fixed tasks."""

    def __init__(self, tasks: list[TaskSnapshot]) -> None:
        self.tasks = tasks
        self.queries = 0

    def get_workflow_handle(self, workflow_id: str):
        return self

    async def query(self, query, *args):
        self.queries += 1
        return self.tasks


def new_queue(db) -> str:
    name = f"q-{uuid.uuid4().hex[:10]}"
    db.call(add_department, "tests", name)
    return name


@pytest.fixture
def queue(db):
    """A queue of its own; its seeded rows go afterwards, so no other test's inbox sees them."""
    name = new_queue(db)
    yield name
    db.call(lambda s: s.execute(delete(Task).where(Task.queue == name, Task.workflow_id.like(f"ticket-{name}-%"))))


def agent(db, agent_id: str, queue: str, *, capacity: int = 5, presence: Presence = Presence.online, **fields):
    """An agent who may work `queue` (the membership) and whose profile names it."""
    db.call(create_user, "tests", agent_id)
    db.call(grant, "tests", agent_id, "agent", queue)
    db.call(readmodel.upsert_agent, agent_id, AgentUpsert(queues=[queue], capacity=capacity, **fields))
    db.call(readmodel.set_presence, agent_id, presence)


def snapshot(queue: str, n: int, **fields) -> TaskSnapshot:
    values = dict(task_id=f"{queue}-t{n}", ticket_id=f"{queue}-{n}", workflow_id=f"ticket-{queue}-{n}", queue=queue,
                  priority=Priority.normal, created_at=T0 + timedelta(seconds=n), revision=1)
    return TaskSnapshot(**(values | fields))


def seed(db, queue: str, count: int) -> list[TaskSnapshot]:
    tasks = [snapshot(queue, n) for n in range(count)]
    for task in tasks:
        db.call(readmodel.upsert_task, task)
    return tasks


def route_request(task: TaskSnapshot) -> RouteRequest:
    return RouteRequest(ticket_id=task.ticket_id, workflow_id=task.workflow_id, requirements=TaskRequirements(
        task_id=task.task_id, queue=task.queue, skills=frozenset(task.skills), language=task.language,
        priority=task.priority, queued_at=task.created_at))


def row(db, task_id: str) -> Task:
    return db.call(readmodel.get_task, task_id)


async def test_concurrent_routing_never_pushes_an_agent_past_capacity(db, queue):
    capacities = {f"{queue}-ana": 2, f"{queue}-bob": 3, f"{queue}-cy": 4}
    for agent_id, capacity in capacities.items():
        agent(db, agent_id, queue, capacity=capacity)
    tasks = seed(db, queue, 30)
    routing = RoutingActivities(db, NoTemporal())

    decisions = await asyncio.gather(*(routing.route_task(route_request(t)) for t in tasks))

    assert Counter(d.agent_id for d in decisions if d.agent_id) == capacities
    assert Counter(d.code for d in decisions if d.agent_id is None) == {"all_agents_at_capacity": 21}
    assert db.call(readmodel.agent_loads, list(capacities)) == capacities
    for task, decision in zip(tasks, decisions):
        stored = row(db, task.task_id)
        assert (stored.assignee, stored.status) == (
            (decision.agent_id, "claimed") if decision.agent_id else (None, "open"))


async def test_round_robin_memory_survives_between_decisions(db, queue):
    ana, bob = f"{queue}-ana", f"{queue}-bob"
    agent(db, ana, queue)
    agent(db, bob, queue)
    routing = RoutingActivities(db, NoTemporal())
    chosen, codes = [], set()
    for task in seed(db, queue, 4):
        decision = await routing.route_task(route_request(task))
        chosen.append(decision.agent_id)
        codes.add(decision.code)
        # Finishing the task brings both agents back to a tie for the next one.
        done = task.model_copy(update={"status": TaskStatus.completed, "assignee": decision.agent_id, "revision": 9})
        db.call(readmodel.upsert_task, done)
    assert chosen == [ana, bob, ana, bob]
    assert codes == {"assigned_round_robin"}


async def test_nobody_fits_leaves_the_row_alone(db, queue):
    agent(db, f"{queue}-away", queue, presence=Presence.away)
    [task] = seed(db, queue, 1)
    decision = await RoutingActivities(db, NoTemporal()).route_task(route_request(task))
    assert (decision.agent_id, decision.code) == (None, "no_agent_online")
    assert "none is online" in decision.reason
    assert (row(db, task.task_id).status, row(db, task.task_id).assignee) == ("open", None)


async def test_only_agents_who_may_work_the_queue_are_offered_its_tasks(db, queue):
    """The profile names the queue, but the membership decides: one source of truth."""
    ana, bob = f"{queue}-ana", f"{queue}-bob"
    agent(db, ana, queue)
    agent(db, bob, queue)
    db.call(revoke, "tests", ana, "agent", queue)
    routing = RoutingActivities(db, NoTemporal())
    for task in seed(db, queue, 2):
        assert (await routing.route_task(route_request(task))).agent_id == bob
    db.call(revoke, "tests", bob, "agent", queue)
    task = snapshot(queue, 9)
    db.call(readmodel.upsert_task, task)
    assert (await routing.route_task(route_request(task))).agent_id is None


async def test_a_claimed_row_is_checked_with_the_workflow_before_it_is_overwritten(db, queue):
    """The row still shows the agent who just released the task (its projection is on the
    way), while the workflow routes the task as open at revision 4."""
    agent(db, f"{queue}-ana", queue)
    task = snapshot(queue, 0, status=TaskStatus.claimed, assignee="leaver", revision=3)
    db.call(readmodel.upsert_task, task)
    reopened = task.model_copy(update={"status": TaskStatus.open, "assignee": None, "revision": 4})
    workflow = FakeWorkflow([reopened])

    decision = await RoutingActivities(db, workflow).route_task(route_request(task))

    assert decision.agent_id == f"{queue}-ana" and workflow.queries == 1
    stored = row(db, task.task_id)
    assert (stored.assignee, stored.status, stored.revision) == (f"{queue}-ana", "claimed", 4)
    # the late projection of the open state cannot undo the reservation; the assignment can
    db.call(readmodel.upsert_task, reopened)
    assert row(db, task.task_id).assignee == f"{queue}-ana"
    db.call(readmodel.upsert_task, reopened.model_copy(update={"status": TaskStatus.claimed, "assignee": "x",
                                                               "revision": 5}))
    assert row(db, task.task_id).assignee == "x"


async def test_a_hand_claim_that_won_is_reported_and_not_overwritten(db, queue):
    agent(db, f"{queue}-ana", queue)
    task = snapshot(queue, 0, status=TaskStatus.claimed, assignee="zed", revision=5)
    db.call(readmodel.upsert_task, task)
    decision = await RoutingActivities(db, FakeWorkflow([task])).route_task(route_request(task))
    assert (decision.agent_id, decision.code) == ("zed", ALREADY_ASSIGNED)
    assert (row(db, task.task_id).assignee, row(db, task.task_id).revision) == ("zed", 5)


# --- through real ticket workflows -----------------------------------------------------------


@pytest.fixture
async def tickets(dev_env, db, tokens, task_queue):
    """A worker with the real activities, and an in-process API to open tickets through (the
    API builds each ticket's workflow input from the settings)."""
    # No FAQ worker runs here; an enabled bot would make every ticket wait for one.
    settings = Settings(database_url=db.url, task_queue=task_queue, faq_enabled=False)
    app = create_app(settings, db=db, temporal=dev_env.client)
    with ThreadPoolExecutor(max_workers=settings.activity_threads) as executor:
        async with build_worker(dev_env.client, settings, db, executor):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
                http.headers["Authorization"] = f"Bearer {tokens['admin']}"
                yield http


async def open_tickets(http, db, queue: str, priorities: list[Priority]) -> list[Task]:
    """Open one ticket per priority and wait until each task waits in `queue`, routed once."""
    ids = []
    for n, priority in enumerate(priorities):
        r = await http.post("/tickets", json=ticket_body(department=queue, priority=priority.value,
                                                         subject=f"parcel {n}"))
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])

    def waiting(session):
        q = select(Task).where(Task.ticket_id.in_(ids), Task.status == "open", Task.routing.is_not(None))
        return list(session.exec(q))

    async def all_waiting():
        rows = db.call(waiting)
        return rows if len(rows) == len(ids) else None

    rows = await eventually(all_waiting, timeout=30)
    return sorted(rows, key=lambda r: ids.index(r.ticket_id))


async def workflow_task(client, task: Task) -> TaskSnapshot | None:
    tasks = await client.get_workflow_handle(task.workflow_id).query(TicketWorkflow.open_tasks)
    return next((t for t in tasks if t.task_id == task.id), None)


async def test_an_agent_coming_online_is_offered_the_most_urgent_waiting_tasks(dev_env, db, tickets):
    client, queue = dev_env.client, new_queue(db)
    ana = f"{queue}-ana"
    agent(db, ana, queue, capacity=2, presence=Presence.offline)
    low, urgent, high = await open_tickets(tickets, db, queue, [Priority.low, Priority.urgent,
                                                                          Priority.high])
    db.call(readmodel.set_presence, ana, Presence.online)

    result = await RoutingActivities(db, client).offer_queued(OfferRequest(queues=[queue]))

    assert result.assigned == {urgent.id: ana, high.id: ana}
    for task in (urgent, high):
        in_workflow = await workflow_task(client, task)
        assert (in_workflow.status, in_workflow.assignee) == (TaskStatus.claimed, ana)
        assert (row(db, task.id).assignee, row(db, task.id).status) == (ana, "claimed")
    assert (row(db, low.id).status, row(db, low.id).assignee) == ("open", None)
    assert db.call(readmodel.agent_loads, [ana]) == {ana: 2}
    # full now: a second offer hands out nothing
    assert (await RoutingActivities(db, client).offer_queued(OfferRequest(queues=[queue]))).assigned == {}


async def test_a_task_claimed_by_hand_meanwhile_is_skipped_not_an_error(dev_env, db, tickets):
    client, queue = dev_env.client, new_queue(db)
    ana = f"{queue}-ana"
    agent(db, ana, queue, capacity=5, presence=Presence.offline)
    first, second = await open_tickets(tickets, db, queue, [Priority.normal, Priority.normal])
    db.call(readmodel.set_presence, ana, Presence.online)

    reservations = db.call(offer_in_transaction, [queue])
    assert {r.task_id for r in reservations} == {first.id, second.id}
    await client.get_workflow_handle(first.workflow_id).execute_update(
        TicketWorkflow.claim_task, claim_request(task_id=first.id, agent="zed"))
    result = await assign_reserved(db, client, reservations)

    assert result.assigned == {second.id: ana}
    assert (row(db, first.id).assignee, row(db, first.id).status) == ("zed", "claimed")
    assert (await workflow_task(client, first)).assignee == "zed"
    assert db.call(readmodel.agent_loads, [ana]) == {ana: 1}


async def test_releasing_an_agent_hands_back_only_their_tasks(dev_env, db, tickets):
    client, queue = dev_env.client, new_queue(db)
    ana, bob = f"{queue}-ana", f"{queue}-bob"
    tasks = await open_tickets(tickets, db, queue, [Priority.normal] * 3)
    for task, holder in zip(tasks, [ana, ana, bob]):
        await client.get_workflow_handle(task.workflow_id).execute_update(
            TicketWorkflow.claim_task, claim_request(task_id=task.id, agent=holder))

    released = await release_agent_tasks(db, client, ana, reason=f"{ana} went offline")

    assert sorted(released) == sorted(t.id for t in tasks[:2])
    for task in tasks[:2]:
        in_workflow = await workflow_task(client, task)
        assert in_workflow.status == TaskStatus.open and in_workflow.assignee is None
        assert row(db, task.id).status == "open"
    assert (await workflow_task(client, tasks[2])).assignee == bob
    assert await release_agent_tasks(db, client, ana, reason="again") == []
