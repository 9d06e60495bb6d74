"""The return request, branch by branch, on a time-skipping server with the systems faked:
eligible or not, reason given or asked for, approved, rejected or asked about, the label and
the scan, the refund made exactly once, and each system failing."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from temporalio import activity
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from models.customer360 import (
    Order,
    OrderLine,
    OrderStatus,
    Refund,
    RefundStatus,
    Shipment,
    ShipmentStatus,
)
from models.returns import ReturnData, ReturnInput, ReturnLabel, ReturnLabelRequest, ReturnPolicy
from models.systems import OrdersLookup, OrdersResult, RefundRequest, ShipmentLookup
from models.task import CompleteTask
from models.ticket import CustomerMessage, TicketPolicy, TicketStatus
from workflow_fakes import FakeReadModel, allow, claim_request, open_task, work_task
from workflows.return_request import RETURN_REQUEST, ReturnRequestWorkflow

POLICY = ReturnPolicy(window_days=30, non_returnable_skus=["SKU-BOOK"], reason_timeout=timedelta(days=2),
                      scan_poll_every=timedelta(hours=6), scan_wait_limit=timedelta(days=10))


def order(placed_days_ago: float = 5, status: OrderStatus = OrderStatus.delivered) -> Order:
    lines = [OrderLine(sku="SKU-HEADPH", description="Wireless headphones", quantity=1, unit_price=Decimal("129.00")),
             OrderLine(sku="SKU-CHARGR", description="USB-C charger", quantity=2, unit_price=Decimal("34.99")),
             OrderLine(sku="SKU-BOOK", description="Cookbook", quantity=1, unit_price=Decimal("27.00"))]
    return Order(id="ORD-1", customer_id="cust-1", status=status, currency="EUR", total=Decimal("225.98"),
                 placed_at=datetime.now(UTC) - timedelta(days=placed_days_ago), lines=lines)


@dataclass
class Systems:
    """The ERP and the carrier as the workflow sees them, with what they were asked."""

    orders: list[Order] | None = field(default_factory=lambda: [order()])  # None: the ERP is down
    scans_after: int | None = 2  # tracking calls before the parcel is scanned; None: never
    label_error: str | None = None
    refund_error: str | None = None
    labels: list[ReturnLabelRequest] = field(default_factory=list)
    refunds: list[RefundRequest] = field(default_factory=list)
    tracked: int = 0

    def activities(self) -> list:
        @activity.defn(name="lookup_orders")
        async def lookup_orders(req: OrdersLookup) -> OrdersResult:
            if self.orders is None:
                raise ApplicationError("connection refused", type="Unavailable", non_retryable=True)
            return OrdersResult(orders=self.orders)

        @activity.defn(name="create_return_label")
        async def create_return_label(req: ReturnLabelRequest) -> ReturnLabel:
            self.labels.append(req)
            if self.label_error:
                raise ApplicationError("no such service", type=self.label_error, non_retryable=True)
            return ReturnLabel(tracking_number="SBXR1", carrier="Sandbox Express", label_url="https://l/SBXR1.pdf")

        @activity.defn(name="track_shipment")
        async def track_shipment(req: ShipmentLookup) -> Shipment:
            self.tracked += 1
            scanned = self.scans_after is not None and self.tracked > self.scans_after
            return Shipment(tracking_number=req.tracking_number, carrier="Sandbox Express",
                            status=ShipmentStatus.in_transit if scanned else ShipmentStatus.label_created)

        @activity.defn(name="create_refund")
        async def create_refund(req: RefundRequest) -> Refund:
            self.refunds.append(req)
            if self.refund_error:
                raise ApplicationError("over the limit", type=self.refund_error, non_retryable=True)
            return Refund(id="RF-1", order_id=req.order_id, amount=req.amount, currency="EUR", reason=req.reason,
                          idempotency_key=req.idempotency_key, status=RefundStatus.completed,
                          created_at=datetime.now(UTC))

        return [lookup_orders, create_return_label, track_shipment, create_refund]


def return_input(**data) -> ReturnInput:  # noqa: ANN003
    return ReturnInput(ticket_id=uuid.uuid4().hex, customer_id="cust-1", subject="Return", body="Sending it back",
                       order_id="ORD-1", department="returns", opened_at=datetime.now(UTC),
                       policy=TicketPolicy(faq_enabled=False), returns=POLICY,
                       case_data=ReturnData(**{"reason": "too big", **data}))


@pytest.fixture
async def run_case(fresh_time_env, task_queue):
    fake = FakeReadModel()
    started: list[WorkflowHandle] = []

    async def start(systems: Systems, **data) -> WorkflowHandle:  # noqa: ANN003
        inp = return_input(**data)
        handle = await fresh_time_env.client.start_workflow(
            ReturnRequestWorkflow.run, inp, id=RETURN_REQUEST.workflow_id(inp.ticket_id), task_queue=task_queue)
        started.append(handle)
        return handle

    systems = Systems()
    async with Worker(fresh_time_env.client, task_queue=task_queue, workflows=[ReturnRequestWorkflow],
                      activities=[*fake.activities(), *systems.activities()]):
        yield start, systems, fake


async def approve(handle: WorkflowHandle, agent: str = "ana", **fields) -> None:  # noqa: ANN003
    """Approving moves money: the API sends the approver's refund decision along."""
    task = await open_task(handle)
    assert task.kind == "approve_return"
    await handle.execute_update(ReturnRequestWorkflow.claim_task, claim_request(task_id=task.task_id, agent=agent))
    await handle.execute_update(ReturnRequestWorkflow.complete_task, CompleteTask(
        task_id=task.task_id, agent=agent, outcome="approve", **fields,
        authorization=[allow("complete", agent), allow("refund", agent)]))


def replies(fake: FakeReadModel) -> str:
    return "\n".join(note.text for note in fake.replies)


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
    while "Why are you sending back SKU-HEADPH, SKU-CHARGR?" not in replies(fake):
        await asyncio.sleep(0.05)
    assert (await handle.query(ReturnRequestWorkflow.state)).status == TicketStatus.waiting_customer
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
