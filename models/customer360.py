"""What ticketflow knows about a customer from the systems around it: orders and refunds
from the ERP, shipment tracking from the carrier, tickets in another helpdesk, chat
messages.

These are contracts: pure pydantic, safe to pass through Temporal with the pydantic data
converter. Connectors translate each external system's own wire format into them, so a
workflow never sees which ERP or carrier a deployment uses. Evolve them only by adding
fields with defaults; an old workflow history must still deserialize.

Money is ``Decimal`` (serialized as a string, never a float); times are timezone-aware.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field, computed_field

from models.enums import CustomerTier

# --- ERP: customers, orders, refunds -----------------------------------------------------


class Customer(BaseModel):
    id: str
    name: str
    email: str
    tier: CustomerTier = CustomerTier.standard
    customer_since: AwareDatetime | None = None

    @property
    def is_vip(self) -> bool:
        return self.tier == CustomerTier.vip


class OrderStatus(StrEnum):
    processing = "processing"
    shipped = "shipped"
    delivered = "delivered"
    cancelled = "cancelled"
    refunded = "refunded"
    # A status this version of ticketflow does not know yet; the connector keeps the raw
    # value in ``Order.external_status``.
    unknown = "unknown"


class OrderLine(BaseModel):
    sku: str
    description: str
    quantity: int = Field(ge=0)
    unit_price: Decimal


class Order(BaseModel):
    id: str
    customer_id: str
    status: OrderStatus
    external_status: str = ""
    placed_at: AwareDatetime
    currency: str
    total: Decimal
    refunded_total: Decimal = Decimal("0")
    lines: list[OrderLine] = Field(default_factory=list)
    tracking_number: str | None = None
    carrier: str | None = None

    @property
    def refundable_amount(self) -> Decimal:
        return max(self.total - self.refunded_total, Decimal("0"))


class RefundStatus(StrEnum):
    pending = "pending"
    completed = "completed"
    rejected = "rejected"
    unknown = "unknown"


class Refund(BaseModel):
    id: str
    order_id: str
    amount: Decimal
    currency: str
    reason: str
    idempotency_key: str
    status: RefundStatus
    created_at: AwareDatetime


# --- Carrier: shipment tracking ----------------------------------------------------------


class ShipmentStatus(StrEnum):
    label_created = "label_created"
    in_transit = "in_transit"
    out_for_delivery = "out_for_delivery"
    delivered = "delivered"
    exception = "exception"
    lost = "lost"
    unknown = "unknown"


class TrackingEvent(BaseModel):
    time: AwareDatetime
    location: str
    description: str
    status: ShipmentStatus = ShipmentStatus.unknown


class Shipment(BaseModel):
    """The carrier's view of one parcel (what a tracking page shows)."""

    tracking_number: str
    carrier: str
    status: ShipmentStatus
    events: list[TrackingEvent] = Field(default_factory=list)
    promised_delivery: AwareDatetime | None = None
    estimated_delivery: AwareDatetime | None = None
    delivered_at: AwareDatetime | None = None
    # How late the parcel is (or was, once delivered) against the promised date; 0 when on
    # time. For a lost parcel: how long past the promise the carrier reported it lost.
    delay_hours: float = Field(default=0.0, ge=0)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def is_delayed(self) -> bool:
        return self.status == ShipmentStatus.lost or self.delay_hours > 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def delay_days(self) -> int:
        """Whole days late, rounded up: 1 hour late is "1 day late" to a customer."""
        return int(-(-self.delay_hours // 24))


# --- Another helpdesk ------------------------------------------------------------------------


class ExternalTicketStatus(StrEnum):
    open = "open"
    pending = "pending"
    solved = "solved"
    closed = "closed"
    unknown = "unknown"


class ExternalTicket(BaseModel):
    id: str
    customer_id: str
    subject: str
    status: ExternalTicketStatus
    created_at: AwareDatetime
    url: str = ""
    # Set on tickets that ticketflow mirrored into the helpdesk: the ticketflow ticket id.
    ticketflow_ticket_id: str | None = None


class ExternalComment(BaseModel):
    id: str
    ticket_id: str
    text: str
    created_at: AwareDatetime


# --- Chat platform ---------------------------------------------------------------------------


class OutboundMessageStatus(StrEnum):
    accepted = "accepted"
    delivered = "delivered"
    failed = "failed"
    unknown = "unknown"


class OutboundMessage(BaseModel):
    """A reply ticketflow sent to a customer through the chat platform."""

    id: str
    conversation_id: str
    text: str
    idempotency_key: str
    status: OutboundMessageStatus
    sent_at: AwareDatetime


class InboundChatMessage(BaseModel):
    """The JSON body the chat platform POSTs to ticketflow's inbound webhook.

    The request carries a signature header; see ``connectors.signing`` for its format.
    """

    channel: str = "chat"
    conversation_id: str = Field(min_length=1, max_length=200)
    customer_id: str = Field(min_length=1, max_length=100)
    text: str = Field(min_length=1, max_length=20_000)
    # The platform's id of this message; a redelivered webhook carries the same id.
    message_id: str = Field(min_length=1, max_length=200)
    sent_at: AwareDatetime


# --- Everything together -------------------------------------------------------------------


class SystemGap(BaseModel):
    """A system that could not be asked, so the picture is incomplete."""

    system: str
    reason: str
    # The connector error type (NotFound, Unavailable, ...), for UI and metrics.
    error_type: str = ""


class Customer360(BaseModel):
    customer_id: str
    customer: Customer | None = None
    orders: list[Order] = Field(default_factory=list)
    shipments: list[Shipment] = Field(default_factory=list)
    external_tickets: list[ExternalTicket] = Field(default_factory=list)
    gaps: list[SystemGap] = Field(default_factory=list)
    collected_at: AwareDatetime | None = None

    @property
    def is_complete(self) -> bool:
        return not self.gaps

    @property
    def delayed_shipments(self) -> list[Shipment]:
        return [s for s in self.shipments if s.is_delayed]


def left_to_refund(picture: dict[str, Any] | None, order_id: str | None) -> tuple[Decimal, str] | None:
    """What is left to refund on `order_id`, and its currency, by a customer 360 a case
    gathered (kept as JSON in its context): as the order system said then. None when the
    gather did not see that order or its total."""
    for order in (picture or {}).get("orders") or []:
        if order.get("id") == order_id:
            try:
                left = Decimal(str(order["total"])) - Decimal(str(order.get("refunded_total") or 0))
            except (KeyError, ArithmeticError):
                return None
            return max(left, Decimal(0)), str(order.get("currency") or "")
    return None
