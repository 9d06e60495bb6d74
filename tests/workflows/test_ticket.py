"""TicketWorkflow on the time-skipping test server, with its activities replaced by name."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from temporalio import activity
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from models.steps import CustomerNotification, DeliveryReceipt
from models.task import ClaimTask, CompleteTask, ReleaseTask, TaskOutcome, TaskSnapshot, TaskStatus
from models.ticket import CustomerMessage, Priority, TicketInput, TicketPolicy, TicketSnapshot, TicketStatus
from workflows.ticket import TicketWorkflow, workflow_id_for


class FakeReadModel:
    """Stands in for the database: keeps the latest projection per id, by revision."""

    def __init__(self) -> None:
        self.tickets: dict[str, TicketSnapshot] = {}
        self.tasks: dict[str, TaskSnapshot] = {}
        self.replies: list[CustomerNotification] = []
        self.fail_delivery = False

    def activities(self) -> list:
        @activity.defn(name="project_ticket")
        async def project_ticket(snap: TicketSnapshot) -> None:
            old = self.tickets.get(snap.ticket_id)
            if old is None or old.revision < snap.revision:
                self.tickets[snap.ticket_id] = snap

        @activity.defn(name="project_task")
        async def project_task(snap: TaskSnapshot) -> None:
            old = self.tasks.get(snap.task_id)
            if old is None or old.revision < snap.revision:
                self.tasks[snap.task_id] = snap

        @activity.defn(name="deliver_reply")
        async def deliver_reply(note: CustomerNotification) -> DeliveryReceipt:
            if self.fail_delivery:
                raise ApplicationError("recipient unknown", type="InvalidRequest", non_retryable=True)
            self.replies.append(note)
            return DeliveryReceipt(delivered=True, via="test")

        return [project_ticket, project_task, deliver_reply]


POLICY = TicketPolicy(auto_close_after=timedelta(hours=72), customer_reply_timeout=timedelta(days=7))


def ticket_input(**overrides) -> TicketInput:
    tid = uuid.uuid4().hex
    data = dict(
        ticket_id=tid, customer_id="cust-1", subject="Where is my parcel?", body="It was due on Monday.",
        department="logistics", opened_at=datetime.now(UTC), policy=POLICY,
    )
    data.update(overrides)
    return TicketInput(**data)


async def open_task(handle: WorkflowHandle, *, not_id: str | None = None, timeout: float = 10) -> TaskSnapshot:
    """Poll the workflow's query until it offers an open task (other than `not_id`)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        tasks = await handle.query(TicketWorkflow.open_tasks)
        tasks = [t for t in tasks if t.task_id != not_id]
        if tasks:
            return tasks[0]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("no open task appeared")
        await asyncio.sleep(0.05)


@pytest.fixture
async def started(time_env: WorkflowEnvironment, task_queue: str):
    fake = FakeReadModel()
    async with Worker(time_env.client, task_queue=task_queue, workflows=[TicketWorkflow],
                      activities=fake.activities()):
        async def start(**overrides) -> WorkflowHandle:
            inp = ticket_input(**overrides)
            return await time_env.client.start_workflow(
                TicketWorkflow.run, inp, id=workflow_id_for(inp.ticket_id), task_queue=task_queue
            )

        yield start, fake


async def test_agent_resolves_then_ticket_closes_after_quiet_period(started):
    start, fake = started
    handle = await start()
    task = await open_task(handle)
    assert task.queue == "logistics" and task.status == TaskStatus.open

    claimed = await handle.execute_update(TicketWorkflow.claim_task, ClaimTask(task_id=task.task_id, agent="ana"))
    assert claimed.status == TaskStatus.claimed and claimed.assignee == "ana"
    assert (await handle.query(TicketWorkflow.state)).status == TicketStatus.in_progress

    await handle.execute_update(
        TicketWorkflow.complete_task,
        CompleteTask(task_id=task.task_id, agent="ana", outcome=TaskOutcome.resolve, reply="It arrives tomorrow."),
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


async def test_customer_message_before_auto_close_reopens(started, time_env):
    start, fake = started
    handle = await start()
    task = await open_task(handle)
    await handle.execute_update(TicketWorkflow.claim_task, ClaimTask(task_id=task.task_id, agent="ana"))
    await handle.execute_update(
        TicketWorkflow.complete_task,
        CompleteTask(task_id=task.task_id, agent="ana", outcome=TaskOutcome.resolve, reply="Done."),
    )
    await time_env.sleep(timedelta(hours=24))  # within the quiet period
    assert (await handle.query(TicketWorkflow.state)).status == TicketStatus.resolved
    await handle.signal(TicketWorkflow.customer_message, CustomerMessage(message_id="m1", text="Still not here!"))

    second = await open_task(handle, not_id=task.task_id)
    state = await handle.query(TicketWorkflow.state)
    assert state.status == TicketStatus.awaiting_agent
    assert "reopened" in [e.kind for e in state.timeline]
    assert state.conversation[-1].text == "Still not here!"
    assert second.task_id != task.task_id


async def test_second_claim_and_foreign_completion_are_refused_and_change_nothing(started):
    start, _ = started
    handle = await start()
    task = await open_task(handle)
    await handle.execute_update(TicketWorkflow.claim_task, ClaimTask(task_id=task.task_id, agent="ana"))
    before = await handle.query(TicketWorkflow.state)

    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(TicketWorkflow.claim_task, ClaimTask(task_id=task.task_id, agent="bob"))
    assert err.value.cause.type == "TaskConflict" and "claimed by ana" in str(err.value.cause)

    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(
            TicketWorkflow.complete_task,
            CompleteTask(task_id=task.task_id, agent="bob", outcome=TaskOutcome.resolve, reply="x"),
        )
    assert err.value.cause.type == "TaskConflict"

    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(TicketWorkflow.claim_task, ClaimTask(task_id="nope", agent="bob"))
    assert err.value.cause.type == "TaskNotFound"

    after = await handle.query(TicketWorkflow.state)
    assert after.revision == before.revision  # rejected updates wrote nothing
    # the same agent claiming again is harmless
    again = await handle.execute_update(TicketWorkflow.claim_task, ClaimTask(task_id=task.task_id, agent="ana"))
    assert again.assignee == "ana"


async def test_completing_an_unclaimed_task_is_refused(started):
    start, _ = started
    handle = await start()
    task = await open_task(handle)
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(
            TicketWorkflow.complete_task,
            CompleteTask(task_id=task.task_id, agent="ana", outcome=TaskOutcome.resolve, reply="x"),
        )
    assert "claim it before completing" in str(err.value.cause)


async def test_release_puts_task_back_in_queue(started):
    start, fake = started
    handle = await start()
    task = await open_task(handle)
    await handle.execute_update(TicketWorkflow.claim_task, ClaimTask(task_id=task.task_id, agent="ana"))
    released = await handle.execute_update(TicketWorkflow.release_task, ReleaseTask(task_id=task.task_id, agent="ana"))
    assert released.status == TaskStatus.open and released.assignee is None
    assert fake.tasks[task.task_id].status == TaskStatus.open
    claimed = await handle.execute_update(TicketWorkflow.claim_task, ClaimTask(task_id=task.task_id, agent="bob"))
    assert claimed.assignee == "bob"


async def test_ask_customer_waits_then_reply_goes_back_to_an_agent(started):
    start, fake = started
    handle = await start()
    task = await open_task(handle)
    await handle.execute_update(TicketWorkflow.claim_task, ClaimTask(task_id=task.task_id, agent="ana"))
    await handle.execute_update(
        TicketWorkflow.complete_task,
        CompleteTask(task_id=task.task_id, agent="ana", outcome=TaskOutcome.ask_customer, reply="Which address?"),
    )
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
    task = await open_task(handle)
    await handle.execute_update(TicketWorkflow.claim_task, ClaimTask(task_id=task.task_id, agent="ana"))
    await handle.execute_update(
        TicketWorkflow.complete_task,
        CompleteTask(task_id=task.task_id, agent="ana", outcome=TaskOutcome.ask_customer, reply="Which address?"),
    )
    result = await handle.result()
    assert result.status == TicketStatus.closed
    assert result.resolution == "no reply from the customer"


async def test_escalation_moves_to_supervisors_with_raised_priority(started):
    start, _ = started
    handle = await start(priority=Priority.high)
    task = await open_task(handle)
    await handle.execute_update(TicketWorkflow.claim_task, ClaimTask(task_id=task.task_id, agent="ana"))
    await handle.execute_update(
        TicketWorkflow.complete_task, CompleteTask(task_id=task.task_id, agent="ana", outcome=TaskOutcome.escalate)
    )
    second = await open_task(handle, not_id=task.task_id)
    assert second.queue == "supervisors" and second.priority == Priority.urgent
    assert (await handle.query(TicketWorkflow.state)).priority == Priority.urgent


async def test_transfer_moves_task_to_named_queue(started):
    start, _ = started
    handle = await start()
    task = await open_task(handle)
    await handle.execute_update(TicketWorkflow.claim_task, ClaimTask(task_id=task.task_id, agent="ana"))
    await handle.execute_update(
        TicketWorkflow.complete_task,
        CompleteTask(task_id=task.task_id, agent="ana", outcome=TaskOutcome.transfer, queue="billing"),
    )
    second = await open_task(handle, not_id=task.task_id)
    assert second.queue == "billing"


async def test_undeliverable_reply_is_kept_and_marked(started):
    start, fake = started
    fake.fail_delivery = True
    handle = await start()
    task = await open_task(handle)
    await handle.execute_update(TicketWorkflow.claim_task, ClaimTask(task_id=task.task_id, agent="ana"))
    await handle.execute_update(
        TicketWorkflow.complete_task,
        CompleteTask(task_id=task.task_id, agent="ana", outcome=TaskOutcome.resolve, reply="Refund issued."),
    )
    result = await handle.result()
    undelivered = [e for e in result.timeline if e.kind == "reply_undelivered"]
    assert undelivered and "recipient unknown" in undelivered[0].detail
    assert result.conversation[-1].text == "Refund issued."
