"""A templated FAQ answer in TicketWorkflow on the time-skipping test server: the real
answer_faq activity (real embedding model, demo knowledge base) renders it with the facts the
ticket gathered from fake systems (activities replaced by name); a ticket that lacks them
goes to an agent with the suggestion and the reason."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import faq.knowledge_base as kb
from activities.faq import build_faq_worker
from models.customer360 import Customer, Order, OrderStatus, Shipment, ShipmentStatus, TrackingEvent
from models.db import Database
from models.systems import (
    ExternalTicketsLookup,
    ExternalTicketsResult,
    OrdersLookup,
    OrdersResult,
    ShipmentLookup,
    ShipmentsLookup,
    ShipmentsResult,
)
from models.ticket import TicketInput, TicketPolicy, TicketStatus
from settings import Settings
from tests.faq.knowledge_base_helpers import reset_knowledge_base
from tests.workflows.test_faq_branches import faq_results_in_history, status_becomes
from workflow_fakes import FakeReadModel, open_task
from workflows.case import FAQ_BOT
from workflows.ticket import TicketWorkflow, workflow_id_for

pytestmark = pytest.mark.slow  # the FAQ worker loads the embedding model (once per session)

# Subject and body the demo knowledge base matches to "track-parcel" well above its threshold.
WHERE = ("Where is my parcel?", "Where is my package right now?")
PLACED = datetime(2026, 3, 2, 12, tzinfo=UTC)


class Systems:
    """The customer's order O-1 ships as T-1; `parcel_known` False: the carrier has never heard of it."""

    def __init__(self) -> None:
        self.parcel_known = True

    def parcel(self, tracking: str) -> Shipment:
        return Shipment(tracking_number=tracking, carrier="Test Express", status=ShipmentStatus.in_transit,
                        estimated_delivery=datetime(2026, 3, 12, 15, tzinfo=UTC),
                        events=[TrackingEvent(time=datetime(2026, 3, 9, 8, tzinfo=UTC), location="Leipzig hub",
                                              description="Arrived at sorting facility")])

    def activities(self) -> list:
        @activity.defn(name="lookup_orders")
        async def lookup_orders(req: OrdersLookup) -> OrdersResult:
            return OrdersResult(customer=Customer(id=req.customer_id, name="Mia Keller", email=""), orders=[
                Order(id="O-1", customer_id=req.customer_id, status=OrderStatus.shipped, placed_at=PLACED,
                      currency="EUR", total=Decimal("20"), tracking_number="T-1", carrier="Test Express")])

        @activity.defn(name="find_shipments")
        async def find_shipments(req: ShipmentsLookup) -> ShipmentsResult:
            return ShipmentsResult(shipments=[self.parcel("T-1")] if self.parcel_known else [])

        @activity.defn(name="track_shipment")
        async def track_shipment(req: ShipmentLookup) -> Shipment:
            if not self.parcel_known:
                raise ApplicationError(f"no parcel {req.tracking_number}", type="NotFound", non_retryable=True)
            return self.parcel(req.tracking_number)

        @activity.defn(name="find_external_tickets")
        async def find_external_tickets(req: ExternalTicketsLookup) -> ExternalTicketsResult:
            return ExternalTicketsResult()

        return [lookup_orders, find_shipments, track_shipment, find_external_tickets]


@pytest.fixture
async def started(fresh_time_env: WorkflowEnvironment, task_queue: str, db: Database):
    reset_knowledge_base(db)
    kb.seed_demo_kb(db)
    fake, systems = FakeReadModel(), Systems()
    faq_queue = f"faq-{task_queue}"
    policy = TicketPolicy(faq_task_queue=faq_queue, bot_answer_timeout=timedelta(days=2))
    settings = Settings(database_url=db.url, task_queue=task_queue)
    with ThreadPoolExecutor(max_workers=settings.activity_threads) as executor:
        async with (
            Worker(fresh_time_env.client, task_queue=task_queue, workflows=[TicketWorkflow],
                   activities=[*fake.activities(), *systems.activities()]),
            build_faq_worker(fresh_time_env.client, settings, db, executor, faq_queue),
        ):
            async def start(order_id: str | None) -> WorkflowHandle:
                inp = TicketInput(ticket_id=uuid.uuid4().hex, customer_id="C-1", subject=WHERE[0], body=WHERE[1],
                                  order_id=order_id, department="general", opened_at=datetime.now(UTC), policy=policy)
                return await fresh_time_env.client.start_workflow(
                    TicketWorkflow.run, inp, id=workflow_id_for(inp.ticket_id), task_queue=task_queue
                )

            yield start, fake, systems


async def test_where_is_my_parcel_is_answered_with_the_parcels_real_status(started):
    start, fake, _ = started
    handle = await start("O-1")

    await status_becomes(handle, TicketStatus.bot_answered)

    [(author, text)] = [(r.author, r.text) for r in fake.replies]
    assert author == FAQ_BOT
    assert text.startswith("Your parcel for order O-1 is in transit with Test Express, expected on 12 March 2026.")
    assert "Arrived at sorting facility at Leipzig hub (9 March 2026, 08:00 UTC)" in text
    assert "{{" not in text
    [faq] = await faq_results_in_history(handle)
    assert faq.decision.value == "answer" and faq.best.entry_id == "track-parcel" and faq.answer == text


async def test_a_parcel_the_carrier_does_not_know_goes_to_an_agent_with_the_suggestion_and_why(started):
    start, fake, systems = started
    systems.parcel_known = False
    handle = await start("O-1")

    task = await open_task(handle, timeout=30)

    assert fake.replies == []  # nothing half-filled reached the customer
    faq = task.context["faq"]
    assert faq["decision"] == "escalate" and faq["suggestions"][0]["entry_id"] == "track-parcel"
    assert faq["answer"].startswith("Your parcel for order {{ order.id }}")  # the template, for the agent
    assert faq["reason"].startswith("needs shipment.status, shipment.carrier, shipment.eta")
    assert faq["reason"].endswith("which this ticket does not have")
    [result] = await faq_results_in_history(handle)
    assert result.decision.value == "escalate" and result.confidence >= result.threshold  # sure, but no facts
    assert result.missing_fields[0] == "shipment.status"
    state = await handle.query(TicketWorkflow.state)
    event = next(e for e in state.timeline if e.kind == "faq_no_answer")
    assert "needs shipment.status" in event.detail and event.data["missing_fields"] == result.missing_fields
