"""Inputs and outputs of the activities that talk to the systems around ticketflow (the
ERP, the carrier, the older helpdesk, the chat platform): see ``activities.systems``.

One input and one output model per activity. They cross Temporal and are stored in workflow
history, so they carry ids, amounts and text the ticket already holds, never credentials
or contact details: the activity looks those up on its side. Evolve them only by adding
fields with defaults.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import AwareDatetime, BaseModel, Field

from models.customer360 import Customer, ExternalTicket, Order, OutboundMessageStatus, Shipment

# --- ERP -------------------------------------------------------------------------------------


class OrdersLookup(BaseModel):
    """Input of ``lookup_orders``: the customer and, when the ticket names one, its order."""

    customer_id: str
    order_id: str | None = None


class OrdersResult(BaseModel):
    """Output of ``lookup_orders``."""

    customer: Customer | None = Field(
        default=None,
        description="None: the ERP does not know this customer. Without the email address: contact details "
        "stay out of workflow history.",
    )
    orders: list[Order] = Field(default_factory=list, description="The customer's orders, newest first.")
    unknown_order_id: str | None = Field(
        default=None,
        description="The order the lookup named that is not one of this customer's orders in the ERP "
        "(missing, or another customer's: then it is left out, not shown).",
    )


class RefundRequest(BaseModel):
    """Input of ``create_refund``: an agent's decision to give money back.

    ``decided_by_*`` name the agent who decided, as the API authenticated them; the activity
    checks the refund policy again for that agent before the ERP is called.
    """

    ticket_id: str
    customer_id: str = Field(description="The ticket's customer; the order must be theirs.")
    order_id: str
    amount: Decimal = Field(gt=0)
    reason: str
    idempotency_key: str = Field(
        description="Derived from the ticket and the decision (e.g. '<ticket>:<task>:refund'), never random: "
        "every retry of the same decision must carry the same key, so the ERP refunds once."
    )
    department: str = Field(default="", description="The department whose queue the deciding task was in: the "
                            "scope in which the API checked the refund, and the activity checks it again.")
    decided_by: str = Field(description="Name of the user who decided the refund; their roles come from the policy.")
    # Recorded by histories before roles came from the policy; never read for a decision.
    decided_by_role: str = Field(default="agent", description="Unused: kept so older histories still decode.")
    decided_by_department: str = Field(default="", description="Unused: kept so older histories still decode.")


class RefundLookup(BaseModel):
    """Input of ``get_refund``."""

    refund_id: str


# Output of ``create_refund`` and ``get_refund``: ``models.customer360.Refund``.

# --- Carrier ---------------------------------------------------------------------------------


class ShipmentLookup(BaseModel):
    """Input of ``track_shipment``. Output: ``models.customer360.Shipment``."""

    tracking_number: str


class ShipmentsLookup(BaseModel):
    """Input of ``find_shipments``: the parcels the carrier has under a shipper's reference."""

    reference: str = Field(description="The shipper's reference on the parcels: our order id.")


class ShipmentsResult(BaseModel):
    """Output of ``find_shipments``."""

    shipments: list[Shipment] = Field(
        default_factory=list, description="In the carrier's order; empty when no parcel carries the reference."
    )


# --- Older helpdesk ----------------------------------------------------------------------------


class ExternalTicketsLookup(BaseModel):
    """Input of ``find_external_tickets``."""

    customer_id: str


class ExternalTicketsResult(BaseModel):
    """Output of ``find_external_tickets``."""

    tickets: list[ExternalTicket] = Field(default_factory=list)


class MirrorRequest(BaseModel):
    """Input of ``mirror_ticket``: create (or find) the helpdesk's copy of a ticketflow
    ticket. Idempotent by ``ticket_id``. Output: ``models.customer360.ExternalTicket``."""

    ticket_id: str
    customer_id: str
    subject: str
    body: str = ""


# --- Chat platform -----------------------------------------------------------------------------


class OutboundReply(BaseModel):
    """Input of ``send_chat_reply``."""

    ticket_id: str
    conversation_id: str
    text: str
    idempotency_key: str = Field(description="Same key, same message: a retried send never posts twice.")


class ChatReplyReceipt(BaseModel):
    """Output of ``send_chat_reply``: what the platform made of the reply (not the text again,
    which is in the input)."""

    message_id: str
    conversation_id: str
    status: OutboundMessageStatus
    sent_at: AwareDatetime
    idempotency_key: str


# --- What a workflow records when a call did not take effect --------------------------------------


class SystemFailure(BaseModel):
    """Why a call to an external system did not take effect, after the retries its policy
    allows. ``error_type`` is the ``ApplicationError`` type: ``NotConfigured``, ``Forbidden``,
    a ``connectors.errors`` name (``NotFound``, ``InvalidRequest``, ``Unavailable``...) or
    ``Timeout``."""

    system: str
    error_type: str
    message: str

    @property
    def not_configured(self) -> bool:
        """The deployment has no such system: nothing to report to an agent."""
        return self.error_type == "NotConfigured"
