"""How ``gather_customer_360`` combines the ERP's answer with the parcels the carrier lists
under the ticket's order id, when the two disagree or one of them fails. Time-skipping test
server, activities replaced by name; the real systems are in tests/integration."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from models.customer360 import Customer360, Order, OrderStatus, Shipment, ShipmentStatus
    from models.systems import (
        ExternalTicketsLookup,
        ExternalTicketsResult,
        OrdersLookup,
        OrdersResult,
        ShipmentLookup,
        ShipmentsLookup,
        ShipmentsResult,
    )

from workflows.context import gather_customer_360

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)


class GatherInput(BaseModel):
    customer_id: str
    order_id: str | None = None


@workflow.defn
class Gather:
    @workflow.run
    async def run(self, inp: GatherInput) -> Customer360:
        return await gather_customer_360(inp.customer_id, inp.order_id)


def order(order_id: str, tracking: str | None) -> Order:
    return Order(id=order_id, customer_id="C-1", status=OrderStatus.shipped, placed_at=NOW, currency="EUR",
                 total=Decimal("10"), tracking_number=tracking)


def parcel(tracking: str) -> Shipment:
    return Shipment(tracking_number=tracking, carrier="Test Express", status=ShipmentStatus.in_transit)


class FakeSystems:
    """C-1 has order O-1 (tracking T-1 in the ERP); the carrier lists ``by_reference`` under
    any reference. ``down`` names the activities that fail for good."""

    def __init__(self) -> None:
        self.by_reference: dict[str, list[str]] = {"O-1": ["T-1"], "O-2": ["T-2"]}
        self.down: set[str] = set()
        self.called: list[str] = []

    def _called(self, name: str) -> None:
        self.called.append(name)
        if name in self.down:
            raise ApplicationError(f"{name}: backend unavailable", type="Unavailable", non_retryable=True)

    def activities(self) -> list:
        @activity.defn(name="lookup_orders")
        async def lookup_orders(req: OrdersLookup) -> OrdersResult:
            self._called("lookup_orders")
            orders = [order("O-1", "T-1")]
            unknown = req.order_id if req.order_id and req.order_id != "O-1" else None
            return OrdersResult(orders=orders, unknown_order_id=unknown)

        @activity.defn(name="find_shipments")
        async def find_shipments(req: ShipmentsLookup) -> ShipmentsResult:
            self._called("find_shipments")
            return ShipmentsResult(shipments=[parcel(t) for t in self.by_reference.get(req.reference, [])])

        @activity.defn(name="track_shipment")
        async def track_shipment(req: ShipmentLookup) -> Shipment:
            self._called("track_shipment")
            return parcel(req.tracking_number)

        @activity.defn(name="find_external_tickets")
        async def find_external_tickets(req: ExternalTicketsLookup) -> ExternalTicketsResult:
            self._called("find_external_tickets")
            return ExternalTicketsResult()

        return [lookup_orders, find_shipments, track_shipment, find_external_tickets]


@pytest.fixture
async def gather(time_env: WorkflowEnvironment, task_queue: str):
    systems = FakeSystems()
    async with Worker(time_env.client, task_queue=task_queue, workflows=[Gather], activities=systems.activities()):
        async def run(order_id: str | None) -> Customer360:
            return await time_env.client.execute_workflow(
                Gather.run, GatherInput(customer_id="C-1", order_id=order_id), id=f"gather-{uuid.uuid4()}",
                task_queue=task_queue, execution_timeout=timedelta(minutes=5),
            )

        run.systems = systems
        yield run


async def test_the_parcels_listed_under_the_order_are_shown_without_tracking_them_again(gather):
    picture = await gather("O-1")
    assert [s.tracking_number for s in picture.shipments] == ["T-1"] and picture.gaps == []
    assert "track_shipment" not in gather.systems.called


async def test_a_parcel_the_erp_knows_but_the_carrier_did_not_list_is_tracked_after_the_erp(gather):
    gather.systems.by_reference["O-1"] = ["T-1b"]  # e.g. a label printed without the reference
    picture = await gather("O-1")
    assert [s.tracking_number for s in picture.shipments] == ["T-1b", "T-1"] and picture.gaps == []


async def test_a_carrier_that_cannot_list_the_order_is_a_gap_and_is_not_asked_again(gather):
    gather.systems.down.add("find_shipments")
    picture = await gather("O-1")
    assert [(g.system, g.error_type) for g in picture.gaps] == [("carrier", "Unavailable")]
    assert picture.shipments == [] and picture.orders
    assert "track_shipment" not in gather.systems.called


async def test_another_customers_order_neither_shows_its_parcels_nor_its_carrier_failure(gather):
    picture = await gather("O-2")
    assert [s.tracking_number for s in picture.shipments] == ["T-1"]  # the recent parcels instead
    assert [(g.system, g.error_type) for g in picture.gaps] == [("erp", "NotFound")]

    gather.systems.down.add("find_shipments")
    picture = await gather("O-2")
    assert [(g.system, g.error_type) for g in picture.gaps] == [("erp", "NotFound")]


async def test_with_the_erp_down_the_parcels_listed_under_the_order_are_kept(gather):
    gather.systems.down.add("lookup_orders")
    picture = await gather("O-1")
    assert [s.tracking_number for s in picture.shipments] == ["T-1"]
    assert [(g.system, g.error_type) for g in picture.gaps] == [("erp", "Unavailable")]
