"""Fakes for return-request tests: the ERP and the carrier as the workflow sees them, and an
approver who sends the refund decision the API would."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from temporalio import activity, workflow
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError

from models.customer360 import Order, OrderLine, OrderStatus, Refund, RefundStatus, Shipment, ShipmentStatus
from models.returns import ReturnData, ReturnInput, ReturnLabel, ReturnLabelRequest, ReturnPolicy
from models.systems import OrdersLookup, OrdersResult, RefundRequest, ShipmentLookup
from models.task import CompleteTask
from models.ticket import TicketPolicy, TicketSnapshot
from workflow_fakes import FakeReadModel, allow, claim_request, open_task
from workflows.return_request import ReturnRequestWorkflow

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


@workflow.defn(name="ReturnRequestWorkflow")
class ReturnRequestAsReleased(ReturnRequestWorkflow):
    """The return request as first released: no reminder while the parcel is not scanned."""

    @workflow.run
    async def run(self, inp: ReturnInput) -> TicketSnapshot:
        return await super().run(inp)

    async def _remind(self, tracking_number: str) -> bool:
        return True
