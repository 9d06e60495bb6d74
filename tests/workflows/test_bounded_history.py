"""Bounded histories: a long ticket projects changes, not snapshots, and continues as new
before its history grows large, carrying its state, tasks, SLA clock and waits across."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.service import RPCError
from temporalio.worker import Worker

from models.task import TaskOutcome, TaskStatus
from models.ticket import (
    CustomerFeedback,
    CustomerMessage,
    Priority,
    TicketInput,
    TicketPolicy,
    TicketSnapshot,
    TicketStatus,
)
from sla import BusinessCalendar, SlaPolicy, SlaTarget
from sla.config import SlaConfig
from sla.policy import RaisePriority
from workflow_fakes import FakeReadModel, claim_request, completion, open_task, work_task
from workflows.ticket import TicketWorkflow, workflow_id_for

# The bound the README documents: a run hands over once it holds `continue_as_new_after_events`
# events; finishing the step it is in and handing over adds at most this many (10%). Messages
# that arrive during the hand-over add to it: Temporal refuses the continue-as-new of a
# workflow task that new signals interrupt, and the task runs again (seen: up to 82 on a busy
# 2-core machine).
HAND_OVER_EVENTS = 200
MAX_RUN_BYTES = 1_000_000


def sla(first_response: timedelta, resolution: timedelta) -> SlaConfig:
    return SlaConfig(calendar=BusinessCalendar.always_open("UTC"), policies=[
        SlaPolicy(priority=p, target=SlaTarget(first_response=first_response, resolution=resolution),
                  warn_at=0.5, escalations=[RaisePriority()])
        for p in Priority
    ])


def ticket_input(events: int, **overrides) -> TicketInput:
    policy = TicketPolicy(auto_close_after=timedelta(hours=72), customer_reply_timeout=timedelta(days=7),
                          faq_enabled=False, gather_context=False, auto_assign=False,
                          stale_claim_after=timedelta(days=30), continue_as_new_after_events=events)
    return TicketInput(**{
        "ticket_id": uuid.uuid4().hex, "customer_id": "cust-1", "subject": "Where is my parcel?",
        "body": "It was due on Monday.", "department": "logistics", "opened_at": datetime.now(UTC),
        "policy": policy, **overrides,
    })


@pytest.fixture
async def started(fresh_time_env: WorkflowEnvironment, task_queue: str):
    fake = FakeReadModel()
    async with Worker(fresh_time_env.client, task_queue=task_queue, workflows=[TicketWorkflow],
                      activities=fake.activities()):
        async def start(inp: TicketInput) -> WorkflowHandle:
            return await fresh_time_env.client.start_workflow(
                TicketWorkflow.run, inp, id=workflow_id_for(inp.ticket_id), task_queue=task_queue
            )

        yield start, fake


@dataclass
class Run:
    run_id: str
    events: int
    size: int
    continued: bool


async def runs_of(client: Client, handle: WorkflowHandle) -> list[Run]:
    """Every run of the ticket's workflow, first to latest, following continue-as-new."""
    runs: list[Run] = []
    run_id: str | None = handle.first_execution_run_id or handle.result_run_id
    while run_id:
        history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
        last = history.events[-1]
        continued = last.HasField("workflow_execution_continued_as_new_event_attributes")
        runs.append(Run(run_id, len(history.events), sum(e.ByteSize() for e in history.events), continued))
        run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id if continued else None
    return runs


async def until_continued(client: Client, handle: WorkflowHandle, runs: int, poke, bound: int) -> None:
    """Call `poke()` until the ticket has at least `runs` runs. Past the history bound the
    pokes slow down: Temporal refuses a continue-as-new while new signals keep arriving in
    the same workflow task, and on a busy machine a task can take longer than a quick poke."""
    for _ in range(600):
        seen = await runs_of(client, handle)
        if len(seen) >= runs:
            return
        try:
            await poke()
        except RPCError as err:  # the run completed by continuing as new between the check and the poke
            if "Completed workflow" not in str(err):
                raise
        await asyncio.sleep(0.01 if seen[-1].events < bound else 0.5)
    raise AssertionError(f"the ticket never reached {runs} runs")


@pytest.mark.slow
async def test_five_hundred_messages_and_replies_stay_bounded_and_end_correctly(started, fresh_time_env):
    start, fake = started
    inp = ticket_input(2_000, sla=sla(timedelta(hours=1), timedelta(days=30)))
    handle = await start(inp)

    previous = None
    for i in range(500):
        task = await work_task(handle, TaskOutcome.ask_customer, not_id=previous, reply=f"answer {i}")
        previous = task.task_id
        await handle.signal(TicketWorkflow.customer_message, CustomerMessage(message_id=f"m{i}", text=f"question {i}"))
    await work_task(handle, TaskOutcome.resolve, not_id=previous, reply="All sorted.")
    result: TicketSnapshot = await handle.result()  # skips the quiet period

    assert result.status == TicketStatus.closed
    runs = await runs_of(fresh_time_env.client, handle)
    assert len(runs) >= 3 and all(r.continued for r in runs[:-1])
    assert max(r.events for r in runs) <= inp.policy.continue_as_new_after_events + HAND_OVER_EVENTS
    assert max(r.size for r in runs) < MAX_RUN_BYTES
    print(f"\n{len(runs)} runs; events per run max {max(r.events for r in runs)}, "
          f"total {sum(r.events for r in runs)}; largest run {max(r.size for r in runs) / 1e6:.2f} MB")

    # The read model holds the whole ticket, every entry once and in order.
    projected = fake.tickets[inp.ticket_id]
    assert projected.status == TicketStatus.closed
    inbound = [e.text for e in projected.conversation if e.direction == "in"]
    outbound = [e.text for e in projected.conversation if e.direction == "out"]
    assert inbound == [inp.body] + [f"question {i}" for i in range(500)]
    assert outbound == [f"answer {i}" for i in range(500)] + ["All sorted."]
    kinds = [e.kind for e in projected.timeline]
    assert kinds.count("continued_as_new") == len(runs) - 1
    assert kinds.count("customer_message") == 500 and kinds.count("task_completed") == 501
    assert [e.at for e in projected.timeline] == sorted(e.at for e in projected.timeline)
    # Task ids keep counting across runs; every task ended completed.
    assert sorted(fake.tasks) == sorted(f"{inp.ticket_id}-t{n}" for n in range(1, 502))
    assert all(t.status == TaskStatus.completed for t in fake.tasks.values())
    assert [r.text for r in fake.replies][-1] == "All sorted."
    # The workflow keeps only a window; the offsets say how much is before it.
    assert result.timeline_offset + len(result.timeline) == len(projected.timeline)
    assert result.conversation_offset + len(result.conversation) == len(projected.conversation)
    assert projected.context["sla"]["status"] and projected.context["sla"]["breached"] == []


async def test_a_claimed_task_and_the_sla_clock_carry_across(started, fresh_time_env):
    start, fake = started
    inp = ticket_input(100, sla=sla(timedelta(hours=1), timedelta(hours=8)))
    handle = await start(inp)
    task = await open_task(handle)
    await handle.execute_update(TicketWorkflow.claim_task, claim_request(task_id=task.task_id, agent="ana"))

    sent = iter(range(10_000))
    await until_continued(fresh_time_env.client, handle, 2, lambda: handle.signal(
        TicketWorkflow.customer_message, CustomerMessage(message_id=f"m{next(sent)}", text="any news?")), 100)

    [carried] = await handle.query(TicketWorkflow.open_tasks)  # asks the latest run
    assert (carried.task_id, carried.status, carried.assignee) == (task.task_id, TaskStatus.claimed, "ana")
    state = await handle.query(TicketWorkflow.state)
    assert state.status == TicketStatus.in_progress and state.conversation_offset + len(state.conversation) > 1

    # The first-response SLA, armed in the first run, breaches on time in the second.
    await fresh_time_env.sleep(timedelta(minutes=65))
    for _ in range(100):
        state = await handle.query(TicketWorkflow.state)
        if "sla_breached" in [e.kind for e in state.timeline]:
            break
        await asyncio.sleep(0.05)
    breached = next(e for e in state.timeline if e.kind == "sla_breached")
    assert timedelta(minutes=59) < breached.at - inp.opened_at <= timedelta(minutes=61)
    assert state.priority == Priority.high

    # ana completes the task she claimed in the first run.
    await handle.execute_update(TicketWorkflow.complete_task, completion(
        task_id=task.task_id, agent="ana", outcome=TaskOutcome.resolve, reply="On its way."))
    result = await handle.result()
    assert result.status == TicketStatus.closed
    assert fake.tasks[task.task_id].status == TaskStatus.completed
    assert [r.text for r in fake.replies] == ["On its way."]


async def test_a_wait_for_the_customer_keeps_its_deadline_across_runs(started, fresh_time_env):
    start, fake = started
    inp = ticket_input(100)
    handle = await start(inp)
    await work_task(handle, TaskOutcome.ask_customer, reply="Which address?")
    waiting = await handle.query(TicketWorkflow.state)
    assert waiting.status == TicketStatus.waiting_customer
    asked_at = waiting.updated_at

    # Verdicts on no bot answer change nothing but grow the history: the wait hands over.
    await until_continued(fresh_time_env.client, handle, 2, lambda: handle.signal(
        TicketWorkflow.customer_feedback, CustomerFeedback(helpful=False)), 100)
    assert (await handle.query(TicketWorkflow.state)).status == TicketStatus.waiting_customer

    result = await handle.result()  # no reply: resolved after 7 days, closed 72 h later
    resolved = next(e for e in fake.tickets[inp.ticket_id].timeline
                    if e.kind == "status" and "-> resolved" in e.detail)
    assert "no reply within 7 days" in resolved.detail
    assert timedelta(days=7) <= resolved.at - asked_at < timedelta(days=7, minutes=1)
    assert result.status == TicketStatus.closed
    assert result.updated_at - resolved.at >= timedelta(hours=72)


async def test_a_duplicate_message_is_still_dropped_after_a_hand_over(started, fresh_time_env):
    start, fake = started
    inp = ticket_input(100)
    handle = await start(inp)
    await open_task(handle)
    sent = iter(range(10_000))
    await until_continued(fresh_time_env.client, handle, 2, lambda: handle.signal(
        TicketWorkflow.customer_message, CustomerMessage(message_id=f"m{next(sent)}", text="hello?")), 100)
    last = next(sent) - 1
    await handle.signal(TicketWorkflow.customer_message, CustomerMessage(message_id=f"m{last}", text="hello?"))
    await handle.signal(TicketWorkflow.customer_message, CustomerMessage(message_id="fresh", text="new"))
    for _ in range(100):
        projected = fake.tickets[inp.ticket_id]
        if projected.conversation[-1].id == "fresh":
            break
        await asyncio.sleep(0.05)
    ids = [e.id for e in projected.conversation]
    assert ids[-1] == "fresh" and len(ids) == len(set(ids)) == last + 3  # opening, m0..m<last>, fresh
