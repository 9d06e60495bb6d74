"""The parts a case is composed of, used by a case that is nothing but them (ReviewProbe)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.worker import Worker

from case_probe import ReviewProbe
from models.enums import Priority
from models.ticket import CustomerMessage, TicketInput, TicketPolicy, TicketStatus
from sla import BusinessCalendar, SlaPolicy, SlaTarget
from sla.config import SlaConfig
from workflow_fakes import FakeReadModel, work_task

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"


def review_input() -> TicketInput:
    sla = SlaConfig(calendar=BusinessCalendar.always_open("UTC"), policies=[
        SlaPolicy(priority=p, target=SlaTarget(first_response=timedelta(hours=1), resolution=timedelta(hours=8)))
        for p in Priority])
    return TicketInput(ticket_id=uuid.uuid4().hex, customer_id="cust-1", subject="Review", body="Please review.",
                       department="general", opened_at=datetime.now(UTC), sla=sla,
                       policy=TicketPolicy(faq_enabled=False, gather_context=False, auto_assign=False))


@pytest.fixture
async def review(fresh_time_env, task_queue):
    fake = FakeReadModel()
    async with Worker(fresh_time_env.client, task_queue=task_queue, workflows=[ReviewProbe],
                      activities=fake.activities()):
        handle = await fresh_time_env.client.start_workflow(
            ReviewProbe.run, review_input(), id=f"review-{uuid.uuid4().hex}", task_queue=task_queue)
        yield handle, fake


async def test_escalate_and_transfer_happen_inside_the_task_step(review, fresh_time_env):
    handle, fake = review
    first = await work_task(handle, "escalate")
    second = await work_task(handle, "transfer", not_id=first.task_id, queue="billing")
    assert (second.queue, second.priority) == ("supervisors", Priority.high)
    third = await work_task(handle, "approve", not_id=second.task_id, agent="bo")
    assert third.queue == "billing" and third.priority == Priority.high

    # only the decision came back to the case: it asks the customer, its clock paused meanwhile
    state = await _wait(handle, lambda s: s.status == TicketStatus.waiting_customer)
    assert state.context["sla"]["status"] == "paused"
    await fresh_time_env.sleep(timedelta(minutes=10))
    await handle.signal(ReviewProbe.customer_message, CustomerMessage(message_id="m1", text="No, thanks"))
    result = await handle.result()  # run_case finished it: the SLA watcher ended with the case

    assert result.status == TicketStatus.resolved
    assert result.resolution == "approve in billing; the customer said No, thanks"
    kinds = [e.kind for e in result.timeline]
    assert kinds.count("escalated") == 1 and kinds.count("transferred") == 1
    assert "sla_met" in kinds
    assert [o.queues for o in fake.offers] == []  # auto_assign is off: nothing to offer


async def test_a_question_nobody_answers_gives_none(review, fresh_time_env):
    handle, _ = review
    await work_task(handle, "approve")
    await _wait(handle, lambda s: s.status == TicketStatus.waiting_customer)
    await fresh_time_env.sleep(timedelta(hours=2))
    result = await handle.result()
    assert result.resolution == "approve in general; the customer said nothing"
    assert "customer_silent" in [e.kind for e in result.timeline]


def test_every_workflow_module_stays_small():
    sizes = {p.relative_to(WORKFLOWS).as_posix(): len(p.read_text().splitlines()) for p in WORKFLOWS.rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > 300} == {}


async def _wait(handle, predicate, timeout: float = 10):
    import asyncio

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        state = await handle.query(ReviewProbe.state)
        if predicate(state):
            return state
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"never happened; status {state.status}")
        await asyncio.sleep(0.05)
