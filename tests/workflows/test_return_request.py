"""The return request, branch by branch, on a time-skipping server with the systems faked:
eligible or not, reason given or asked for, approved, rejected or asked about, the label and
the scan, the refund made exactly once, and each system failing."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.worker import Worker

from models.customer360 import OrderStatus
from models.task import CompleteTask
from models.returns import ReturnInput
from models.ticket import CustomerMessage, TicketStatus
from return_fakes import POLICY, ReturnRequestAsReleased, Systems, approve, order, replies, return_input
from workflow_fakes import FakeReadModel, allow, claim_request, open_task, work_task
from workflows.return_request import RETURN_REQUEST, ReturnRequestWorkflow

@pytest.fixture
async def run_case(fresh_time_env, task_queue):
    fake = FakeReadModel()
    started: list[WorkflowHandle] = []

    async def start(systems: Systems, _input: ReturnInput | None = None, **data) -> WorkflowHandle:  # noqa: ANN003
        inp = _input or return_input(**data)
        handle = await fresh_time_env.client.start_workflow(
            ReturnRequestWorkflow.run, inp, id=RETURN_REQUEST.workflow_id(inp.ticket_id), task_queue=task_queue)
        started.append(handle)
        return handle

    systems = Systems()
    async with Worker(fresh_time_env.client, task_queue=task_queue, workflows=[ReturnRequestWorkflow],
                      activities=[*fake.activities(), *systems.activities()]):
        yield start, systems, fake


async def test_approved_labelled_scanned_refunded_once(run_case):
    start, systems, fake = run_case
    handle = await start(systems, items=["SKU-HEADPH", "SKU-CHARGR"])
    task = await open_task(handle)
    assert task.queue == "returns" and task.allowed_outcomes == ["approve", "reject", "ask_customer"]
    assert task.context["amount"] == "198.98" and task.context["refund_on"] == {"approve": "198.98"}
    await approve(handle)
    result = await handle.result()  # the scans are polled on durable timers, skipped here

    assert (result.status, result.resolution) == (TicketStatus.closed, "refunded")
    assert [label.skus for label in systems.labels] == [["SKU-HEADPH", "SKU-CHARGR"]]
    assert systems.tracked == 3  # two polls before the scan, six hours apart
    [refund] = systems.refunds
    assert (refund.amount, refund.decided_by, refund.department) == (Decimal("198.98"), "ana", "returns")
    assert refund.idempotency_key == f"{result.ticket_id}:refund"
    text = replies(fake)
    assert "tracking number SBXR1" in text and "refunded 198.98 EUR" in text
    kinds = [e.kind for e in result.timeline]
    for kind in ("return_checked", "task_completed", "label_created", "parcel_scanned", "refund_created"):
        assert kind in kinds
    # the approver is free again: the returns queue's waiting work is offered (a patch on
    # released return requests, whose recorded histories replay without the offer)
    assert [o.queues for o in fake.offers] == [["returns"]]


async def test_no_items_named_means_every_line_that_may_come_back(run_case):
    start, systems, _ = run_case
    handle = await start(systems)
    task = await open_task(handle)
    assert task.context["items"] == ["SKU-HEADPH", "SKU-CHARGR"] and task.context["amount"] == "198.98"
    assert (await handle.query(ReturnRequestWorkflow.state)).context["return"]["kept_back"] == ["SKU-BOOK"]


async def test_approval_without_the_refund_right_is_refused_and_changes_nothing(run_case):
    start, systems, _ = run_case
    handle = await start(systems)
    task = await open_task(handle)
    await handle.execute_update(ReturnRequestWorkflow.claim_task, claim_request(task_id=task.task_id, agent="ana"))
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(ReturnRequestWorkflow.complete_task, CompleteTask(
            task_id=task.task_id, agent="ana", outcome="approve", authorization=[allow("complete", "ana")]))
    assert err.value.cause.type == "Unauthorized" and "refund" in str(err.value.cause)
    assert systems.labels == [] and (await open_task(handle)).task_id == task.task_id


@pytest.mark.parametrize(("systems_change", "data", "problem"), [
    ({"orders": [order(placed_days_ago=45)]}, {}, "returns close after 30 days"),
    ({}, {"items": ["SKU-BOOK"]}, "SKU-BOOK cannot be returned"),
    ({}, {"items": ["SKU-TOASTER"]}, "order ORD-1 has no SKU-TOASTER"),
    ({"orders": [order().model_copy(update={"lines": order().lines[2:]})]}, {}, "nothing on order ORD-1 can be"),
    ({"orders": [order(status=OrderStatus.processing)]}, {}, "only shipped or delivered orders come back"),
])
async def test_a_return_the_policy_does_not_allow_is_closed_with_the_reason(run_case, systems_change, data, problem):
    start, systems, fake = run_case
    for key, value in systems_change.items():
        setattr(systems, key, value)
    result = await (await start(systems, **data)).result()
    assert (result.status, result.resolution) == (TicketStatus.closed, "not_eligible")
    assert problem in replies(fake) and systems.labels == [] and systems.refunds == []


async def test_an_order_the_customer_does_not_have_is_closed(run_case):
    start, systems, fake = run_case
    systems.orders = [order().model_copy(update={"id": "ORD-2"})]
    result = await (await start(systems)).result()
    assert result.resolution == "unknown_order" and "could not find order ORD-1" in replies(fake)


async def test_a_return_that_names_no_order_asks_for_it_and_closes(run_case):
    start, systems, fake = run_case
    inp = return_input().model_copy(update={"order_id": None})  # from a chat that named none
    result = await (await start(systems, _input=inp)).result()
    assert result.resolution == "no_order" and "write again with its number" in replies(fake)


async def test_an_erp_that_cannot_answer_puts_the_return_before_an_agent(run_case):
    start, systems, fake = run_case
    systems.orders = None
    handle = await start(systems)
    task = await open_task(handle)
    assert task.kind == "fix_return" and "ERP could not say" in task.context["problem"]
    await work_task(handle, "resolve", reply="Refunded by hand.")
    result = await handle.result()
    assert result.resolution == "settled_by_agent" and "Refunded by hand." in replies(fake)


async def test_a_missing_reason_is_asked_for_and_the_answer_goes_to_the_approver(run_case):
    start, systems, fake = run_case
    handle = await start(systems, reason=None)
    # the question is sent, then the case waits on the customer (its status says so once the
    # delivery's result is back in the workflow)
    while (await handle.query(ReturnRequestWorkflow.state)).status != TicketStatus.waiting_customer:
        await asyncio.sleep(0.05)
    assert "Why are you sending back SKU-HEADPH, SKU-CHARGR?" in replies(fake)
    await handle.signal(ReturnRequestWorkflow.customer_message, CustomerMessage(message_id="m1", text="It is broken"))
    task = await open_task(handle)
    assert task.context["reason"] == "It is broken"


async def test_no_answer_to_the_reason_question_closes_the_return(run_case):
    start, systems, _ = run_case
    result = await (await start(systems, reason=None)).result()  # two days skipped
    assert result.resolution == "no_reason" and "customer_silent" in [e.kind for e in result.timeline]


async def test_a_rejected_return_is_closed_with_the_agents_words(run_case):
    start, systems, fake = run_case
    handle = await start(systems)
    await work_task(handle, "reject", reply="Used items cannot come back.")
    result = await handle.result()
    assert result.resolution == "rejected" and "Used items cannot come back." in replies(fake)
    assert systems.labels == []


async def test_the_approver_may_ask_the_customer_first(run_case):
    start, systems, fake = run_case
    handle = await start(systems)
    first = await work_task(handle, "ask_customer", reply="Is the box still sealed?")
    await handle.signal(ReturnRequestWorkflow.customer_message, CustomerMessage(message_id="m1", text="Yes, sealed"))
    second = await open_task(handle, not_id=first.task_id)
    assert second.kind == "approve_return"
    assert "Is the box still sealed?" in replies(fake)


@pytest.mark.parametrize(("failure", "resolution_kind"), [("label_error", "label_failed"),
                                                          ("refund_error", "refund_failed")])
async def test_a_label_or_refund_the_systems_refuse_goes_back_to_an_agent(run_case, failure, resolution_kind):
    start, systems, _ = run_case
    setattr(systems, failure, "InvalidRequest")
    systems.scans_after = 0  # scanned at the first look: no timer between approval and refund
    handle = await start(systems)
    await approve(handle)
    fix = await open_task(handle, timeout=30)
    while fix.kind != "fix_return":
        fix = await open_task(handle, not_id=fix.task_id)
    assert resolution_kind in [e.kind for e in (await handle.query(ReturnRequestWorkflow.state)).timeline]
    await work_task(handle, "resolve", reply="Done by hand.", not_id=None)
    assert (await handle.result()).resolution == "settled_by_agent"


async def test_a_parcel_never_scanned_closes_the_return_without_a_refund(run_case):
    start, systems, fake = run_case
    systems.scans_after = None
    handle = await start(systems)
    await approve(handle)
    result = await handle.result()  # ten days of polls skipped
    assert result.resolution == "never_sent" and systems.refunds == []
    assert systems.tracked == 40  # every six hours for ten days
    assert "never scanned the parcel" in replies(fake)
    assert replies(fake).count("A reminder") == 1  # once, after three days


async def test_a_return_started_before_the_reminder_existed_finishes_on_todays_code(fresh_time_env, task_queue):
    """The worked example of a patch: a case that passed the reminder point on the released
    code replays on today's without one and goes on to its refund; a new case is reminded."""
    systems, fake = Systems(scans_after=None), FakeReadModel()
    activities = [*fake.activities(), *systems.activities()]
    daily = POLICY.model_copy(update={"scan_poll_every": timedelta(days=1), "remind_after": timedelta(days=2)})
    inp = return_input().model_copy(update={"returns": daily})
    # No cache on the released code's worker: its tasks then never wait on a sticky queue of
    # a worker that is gone (the test server does not skip time for that).
    async with Worker(fresh_time_env.client, task_queue=task_queue, workflows=[ReturnRequestAsReleased],
                      activities=activities, max_cached_workflows=0):
        old = await fresh_time_env.client.start_workflow(
            ReturnRequestWorkflow.run, inp, id=RETURN_REQUEST.workflow_id(inp.ticket_id), task_queue=task_queue)
        await approve(old)
        await fresh_time_env.sleep(timedelta(days=3))  # past remind_after (2 days) on the released code
        while systems.tracked < 4:
            await asyncio.sleep(0.05)

    systems.scans_after = systems.tracked + 1  # handed in now: scanned at the next look
    async with Worker(fresh_time_env.client, task_queue=task_queue, workflows=[ReturnRequestWorkflow],
                      activities=activities):
        result = await asyncio.wait_for(old.result(), 60)  # replayed on today's code, then on to its end
        assert (result.status, result.resolution) == (TicketStatus.closed, "refunded")
        assert "A reminder" not in replies(fake)

        systems.scans_after, systems.tracked = None, 0
        now = await fresh_time_env.get_current_time()  # days later: the skipped time has passed
        systems.orders = [order().model_copy(update={"placed_at": now - timedelta(days=1)})]
        new_case = return_input().model_copy(update={"returns": daily})
        new = await fresh_time_env.client.start_workflow(
            ReturnRequestWorkflow.run, new_case, id=RETURN_REQUEST.workflow_id(new_case.ticket_id),
            task_queue=task_queue)
        await approve(new)
        assert (await new.result()).resolution == "never_sent"
    assert replies(fake).count("A reminder") == 1
