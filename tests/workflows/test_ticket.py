"""TicketWorkflow on the time-skipping test server, with its activities replaced by name."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from models.task import ClaimTask, CompleteTask, RefundDecision, TaskOutcome, TaskStatus
from models.ticket import CustomerMessage, Priority, TicketInput, TicketPolicy, TicketSnapshot, TicketStatus
from sla import BusinessCalendar, SlaPolicy, SlaTarget
from sla.config import SlaConfig
from sla.policy import MoveToQueue, Notify, RaisePriority
from workflow_fakes import (
    FakeReadModel,
    allow,
    claim_request,
    completion,
    note_request,
    open_task,
    release_request,
    work_task,
)
from workflows.ticket import TicketWorkflow, workflow_id_for


# Gathering and the FAQ bot have their own tests; here the agent path is under test.
POLICY = TicketPolicy(auto_close_after=timedelta(hours=72), customer_reply_timeout=timedelta(days=7),
                      faq_enabled=False, gather_context=False)


def ticket_input(**overrides) -> TicketInput:
    tid = uuid.uuid4().hex
    data = dict(
        ticket_id=tid, customer_id="cust-1", subject="Where is my parcel?", body="It was due on Monday.",
        department="logistics", opened_at=datetime.now(UTC), policy=POLICY,
    )
    data.update(overrides)
    return TicketInput(**data)


@pytest.fixture
async def started(fresh_time_env: WorkflowEnvironment, task_queue: str):
    fake = FakeReadModel()
    async with Worker(fresh_time_env.client, task_queue=task_queue, workflows=[TicketWorkflow],
                      activities=fake.activities()):
        async def start(**overrides) -> WorkflowHandle:
            inp = ticket_input(**overrides)
            return await fresh_time_env.client.start_workflow(
                TicketWorkflow.run, inp, id=workflow_id_for(inp.ticket_id), task_queue=task_queue
            )

        yield start, fake


async def test_agent_resolves_then_ticket_closes_after_quiet_period(started):
    start, fake = started
    handle = await start()
    task = await open_task(handle)
    assert task.queue == "logistics" and task.status == TaskStatus.open

    claimed = await handle.execute_update(TicketWorkflow.claim_task, claim_request(task_id=task.task_id, agent="ana"))
    assert claimed.status == TaskStatus.claimed and claimed.assignee == "ana"
    assert (await handle.query(TicketWorkflow.state)).status == TicketStatus.in_progress

    await handle.execute_update(
        TicketWorkflow.complete_task,
        completion(task_id=task.task_id, agent="ana", outcome=TaskOutcome.resolve, reply="It arrives tomorrow."),
    )
    result: TicketSnapshot = await handle.result()  # skips the 72h quiet period

    assert result.status == TicketStatus.closed
    assert [r.text for r in fake.replies] == ["It arrives tomorrow."]
    kinds = [e.kind for e in result.timeline]
    assert kinds.index("reply_sent") < kinds.index("task_completed") or "reply_sent" in kinds
    closed_at = result.updated_at
    resolved_at = next(e.at for e in result.timeline if e.kind == "status" and "-> resolved" in e.detail)
    assert closed_at - resolved_at >= timedelta(hours=72)
    # the read model saw the final state
    assert fake.tickets[result.ticket_id].status == TicketStatus.closed
    assert fake.tasks[task.task_id].status == TaskStatus.completed


async def test_a_message_written_while_the_resolving_reply_goes_out_reopens_the_ticket(started):
    start, fake = started
    fake.delivery_seconds = 1.0
    handle = await start()
    first = await work_task(handle, TaskOutcome.resolve, reply="Done.")
    # the reply is still on its way; the customer writes again
    await handle.signal(TicketWorkflow.customer_message, CustomerMessage(message_id="m1", text="One more thing"))
    second = await open_task(handle, not_id=first.task_id)
    assert second.status == TaskStatus.open
    state = await handle.query(TicketWorkflow.state)
    assert "reopened" in [e.kind for e in state.timeline]


async def test_customer_message_before_auto_close_reopens(started, fresh_time_env):
    start, fake = started
    handle = await start()
    task = await work_task(handle, TaskOutcome.resolve, reply="Done.")
    await fresh_time_env.sleep(timedelta(hours=24))  # within the quiet period
    assert (await handle.query(TicketWorkflow.state)).status == TicketStatus.resolved
    await handle.signal(TicketWorkflow.customer_message, CustomerMessage(message_id="m1", text="Still not here!"))

    second = await open_task(handle, not_id=task.task_id)
    state = await handle.query(TicketWorkflow.state)
    assert state.status == TicketStatus.awaiting_agent
    assert "reopened" in [e.kind for e in state.timeline]
    assert state.conversation[-1].text == "Still not here!"
    assert second.task_id != task.task_id


async def test_an_update_without_the_apis_decision_is_refused_and_writes_nothing(started):
    """Sent straight through Temporal, with no authorization or someone else's, an action is
    refused by the validator: nothing lands in the history."""
    start, _ = started
    handle = await start()
    task = await open_task(handle)
    before = len((await handle.fetch_history()).events)
    for request in (ClaimTask(task_id=task.task_id, agent="mallory"),
                    ClaimTask(task_id=task.task_id, agent="mallory", authorization=allow("claim", "ana")),
                    ClaimTask(task_id=task.task_id, agent="mallory",
                              authorization=allow("claim", "mallory").model_copy(update={"allowed": False}))):
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await handle.execute_update(TicketWorkflow.claim_task, request)
        assert err.value.cause.type == "Unauthorized" and "through the ticketflow API" in str(err.value.cause)
    await handle.execute_update(TicketWorkflow.claim_task, claim_request(task_id=task.task_id, agent="ana"))
    refund = RefundDecision(amount=Decimal("5"), reason="late")
    without_refund_right = CompleteTask(task_id=task.task_id, agent="ana", outcome=TaskOutcome.resolve, reply="x",
                                        refund=refund, authorization=[allow("complete", "ana")])
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(TicketWorkflow.complete_task, without_refund_right)
    assert err.value.cause.type == "Unauthorized" and "refund" in str(err.value.cause)
    state = await handle.query(TicketWorkflow.state)
    assert [e.kind for e in state.timeline].count("task_claimed") == 1
    assert len((await handle.fetch_history()).events) > before  # the one allowed claim


async def test_second_claim_and_foreign_completion_are_refused_and_change_nothing(started):
    start, _ = started
    handle = await start()
    task = await open_task(handle)
    await handle.execute_update(TicketWorkflow.claim_task, claim_request(task_id=task.task_id, agent="ana"))
    before = await handle.query(TicketWorkflow.state)

    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(TicketWorkflow.claim_task, claim_request(task_id=task.task_id, agent="bob"))
    assert err.value.cause.type == "TaskConflict" and "claimed by ana" in str(err.value.cause)

    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(
            TicketWorkflow.complete_task,
            completion(task_id=task.task_id, agent="bob", outcome=TaskOutcome.resolve, reply="x"),
        )
    assert err.value.cause.type == "TaskConflict"

    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(TicketWorkflow.claim_task, claim_request(task_id="nope", agent="bob"))
    assert err.value.cause.type == "TaskNotFound"

    after = await handle.query(TicketWorkflow.state)
    assert after.revision == before.revision  # rejected updates wrote nothing
    # the same agent claiming again is harmless
    again = await handle.execute_update(TicketWorkflow.claim_task, claim_request(task_id=task.task_id, agent="ana"))
    assert again.assignee == "ana"


async def test_completing_an_unclaimed_task_is_refused(started):
    start, _ = started
    handle = await start()
    task = await open_task(handle)
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(
            TicketWorkflow.complete_task,
            completion(task_id=task.task_id, agent="ana", outcome=TaskOutcome.resolve, reply="x"),
        )
    assert "claim it before completing" in str(err.value.cause)


async def test_release_puts_task_back_in_queue(started):
    start, fake = started
    handle = await start()
    task = await open_task(handle)
    await handle.execute_update(TicketWorkflow.claim_task, claim_request(task_id=task.task_id, agent="ana"))
    released = await handle.execute_update(TicketWorkflow.release_task, release_request(task_id=task.task_id, agent="ana"))
    assert released.status == TaskStatus.open and released.assignee is None
    assert fake.tasks[task.task_id].status == TaskStatus.open
    claimed = await handle.execute_update(TicketWorkflow.claim_task, claim_request(task_id=task.task_id, agent="bob"))
    assert claimed.assignee == "bob"


async def test_ask_customer_waits_then_reply_goes_back_to_an_agent(started):
    start, fake = started
    handle = await start()
    task = await work_task(handle, TaskOutcome.ask_customer, reply="Which address?")
    deadline = asyncio.get_running_loop().time() + 10
    while (await handle.query(TicketWorkflow.state)).status != TicketStatus.waiting_customer:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    await handle.signal(TicketWorkflow.customer_message, CustomerMessage(message_id="a1", text="Main St 1"))
    await handle.signal(TicketWorkflow.customer_message, CustomerMessage(message_id="a1", text="Main St 1"))
    second = await open_task(handle, not_id=task.task_id)
    state = await handle.query(TicketWorkflow.state)
    assert state.status == TicketStatus.awaiting_agent
    assert [c.text for c in state.conversation].count("Main St 1") == 1  # duplicate delivery ignored
    assert second.queue == "logistics"


async def test_customer_silence_resolves_then_closes(started):
    start, _ = started
    handle = await start()
    task = await work_task(handle, TaskOutcome.ask_customer, reply="Which address?")
    result = await handle.result()
    assert result.status == TicketStatus.closed
    assert result.resolution == "no reply from the customer"


async def test_escalation_moves_to_supervisors_with_raised_priority(started):
    start, _ = started
    handle = await start(priority=Priority.high)
    task = await work_task(handle, TaskOutcome.escalate)
    second = await open_task(handle, not_id=task.task_id)
    assert second.queue == "supervisors" and second.priority == Priority.urgent
    assert (await handle.query(TicketWorkflow.state)).priority == Priority.urgent


async def test_transfer_moves_task_to_named_queue(started):
    start, _ = started
    handle = await start()
    task = await work_task(handle, TaskOutcome.transfer, queue="billing")
    second = await open_task(handle, not_id=task.task_id)
    assert second.queue == "billing"


async def test_undeliverable_reply_is_kept_and_marked(started):
    start, fake = started
    fake.fail_delivery = True
    handle = await start()
    task = await work_task(handle, TaskOutcome.resolve, reply="Refund issued.")
    result = await handle.result()
    undelivered = [e for e in result.timeline if e.kind == "reply_undelivered"]
    assert undelivered and "recipient unknown" in undelivered[0].detail
    assert result.conversation[-1].text == "Refund issued."


# --- routing and stale claims --------------------------------------------------------------


async def wait_for(handle: WorkflowHandle, predicate, timeout: float = 10):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        state = await handle.query(TicketWorkflow.state)
        if predicate(state):
            return state
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met; timeline: {[e.kind for e in state.timeline]}")
        await asyncio.sleep(0.05)


async def test_new_task_is_routed_to_the_chosen_agent(started):
    start, fake = started
    fake.route_to = ["ana"]
    handle = await start(skills=["refunds"], language="de")
    state = await wait_for(handle, lambda s: s.status == TicketStatus.in_progress)
    task = next(iter(fake.tasks.values()))
    assert task.assignee == "ana" and task.status == TaskStatus.claimed and "least loaded" in task.routing
    req = fake.routed[0].requirements
    assert req.queue == "logistics" and req.skills == frozenset({"refunds"}) and req.language == "de"
    assert "task_assigned" in [e.kind for e in state.timeline]


async def test_nobody_fits_leaves_task_queued_with_reason(started):
    start, fake = started
    handle = await start()
    task = await open_task(handle)
    state = await wait_for(handle, lambda s: "task_queued" in [e.kind for e in s.timeline])
    assert task.status == TaskStatus.open and state.status == TicketStatus.awaiting_agent
    assert fake.tasks[task.task_id].routing == "no agent online in queue"


async def test_stale_claim_is_released_and_rerouted(started, fresh_time_env):
    start, fake = started
    fake.route_to = ["ana", "bob"]
    handle = await start()
    await wait_for(handle, lambda s: s.status == TicketStatus.in_progress)
    await fresh_time_env.sleep(timedelta(minutes=31))  # ana never touches it
    state = await wait_for(handle, lambda s: s.status == TicketStatus.in_progress
                           and "task_released" in [e.kind for e in s.timeline])
    released = next(e for e in state.timeline if e.kind == "task_released")
    assert "went stale" in released.detail
    assert [r.requirements.task_id for r in fake.routed] == [fake.routed[0].requirements.task_id] * 2
    assert fake.offers and fake.offers[0].queues == ["logistics"]
    task = next(iter(fake.tasks.values()))
    assert task.assignee == "bob"


async def test_a_note_keeps_a_claim_fresh(started, fresh_time_env):
    start, fake = started
    fake.route_to = ["ana"]
    handle = await start()
    await wait_for(handle, lambda s: s.status == TicketStatus.in_progress)
    task_id = next(iter(fake.tasks))
    await fresh_time_env.sleep(timedelta(minutes=20))
    await handle.execute_update(TicketWorkflow.add_note, note_request(task_id=task_id, author="ana", text="calling carrier"))
    await fresh_time_env.sleep(timedelta(minutes=20))  # 40 min after the claim, 20 after the note
    state = await handle.query(TicketWorkflow.state)
    assert "task_released" not in [e.kind for e in state.timeline]
    assert fake.tasks[task_id].notes[0].text == "calling carrier"


async def test_offline_agents_task_is_rerouted(started):
    start, fake = started
    fake.route_to = ["ana", "bob"]
    handle = await start()
    await wait_for(handle, lambda s: s.status == TicketStatus.in_progress)
    task_id = next(iter(fake.tasks))
    # what the API does when ana goes offline
    await handle.execute_update(TicketWorkflow.release_task,
                                release_request(task_id=task_id, agent="ana", reason="ana went offline"))
    await wait_for(handle, lambda s: [e.kind for e in s.timeline].count("task_assigned") == 2)
    assert fake.tasks[task_id].assignee == "bob"


# --- SLA clocks ------------------------------------------------------------------------------

ROUND_THE_CLOCK = BusinessCalendar.always_open("UTC")


def sla_config(first_response: timedelta, resolution: timedelta, escalations: list) -> SlaConfig:
    return SlaConfig(calendar=ROUND_THE_CLOCK, policies=[
        SlaPolicy(priority=p, target=SlaTarget(first_response=first_response, resolution=resolution),
                  warn_at=0.5, escalations=escalations)
        for p in Priority
    ])


async def test_sla_warns_then_breaches_then_escalates_on_time(started, fresh_time_env):
    start, fake = started
    config = sla_config(timedelta(hours=1), timedelta(hours=4),
                        [RaisePriority(), MoveToQueue(queue="supervisors"), Notify(recipient="team-leads")])
    handle = await start(sla=config)
    opened = (await handle.query(TicketWorkflow.state)).opened_at
    task = await open_task(handle)
    assert task.due_at == opened + timedelta(hours=1)

    await fresh_time_env.sleep(timedelta(minutes=65))
    state = await wait_for(handle, lambda s: "sla_breached" in [e.kind for e in s.timeline])
    events = {(e.kind, e.data.get("target")): e for e in state.timeline}
    warned = events[("sla_warned", "first_response")].at
    breached = events[("sla_breached", "first_response")].at
    assert timedelta(minutes=29) < warned - opened <= timedelta(minutes=31)
    assert timedelta(minutes=59) < breached - opened <= timedelta(minutes=61)
    assert state.priority == Priority.high  # raised from normal
    moved = await wait_for(handle, lambda s: fake.tasks[task.task_id].queue == "supervisors")
    assert any(e.kind == "sla_notified" and "team-leads" in e.detail for e in moved.timeline)
    assert fake.tasks[task.task_id].priority == Priority.high
    assert state.context["sla"]["breached"] == ["first_response"]


async def test_sla_pauses_while_waiting_on_the_customer(started, fresh_time_env):
    start, fake = started
    handle = await start(sla=sla_config(timedelta(hours=1), timedelta(hours=2), [RaisePriority()]))
    task = await open_task(handle)
    await handle.execute_update(TicketWorkflow.claim_task, claim_request(task_id=task.task_id, agent="ana"))
    await fresh_time_env.sleep(timedelta(minutes=25))  # inside the 30 min before a claim goes stale
    await handle.execute_update(
        TicketWorkflow.complete_task,
        completion(task_id=task.task_id, agent="ana", outcome=TaskOutcome.ask_customer, reply="Which address?"),
    )
    await wait_for(handle, lambda s: s.status == TicketStatus.waiting_customer)
    await fresh_time_env.sleep(timedelta(hours=5))  # well past the 2h resolution budget, but paused
    state = await handle.query(TicketWorkflow.state)
    kinds = [e.kind for e in state.timeline]
    assert "sla_paused" in kinds and "sla_breached" not in kinds
    assert ("sla_met", "first_response") in [(e.kind, e.data.get("target")) for e in state.timeline]

    await handle.signal(TicketWorkflow.customer_message, CustomerMessage(message_id="r1", text="Main St 1"))
    second = await open_task(handle, not_id=task.task_id)
    state = await wait_for(handle, lambda s: "sla_resumed" in [e.kind for e in s.timeline])
    resumed_at = next(e.at for e in state.timeline if e.kind == "sla_resumed")
    # 25 of the 120 resolution minutes were used before the pause: 95 remain from the resume
    due = datetime.fromisoformat(state.context["sla"]["resolution_due"])
    assert abs((due - resumed_at) - timedelta(minutes=95)) < timedelta(minutes=1)
    assert second.due_at is not None
