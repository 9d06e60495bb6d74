"""What ticketflow needs from each kind of external system.

One protocol per domain; a deployment picks an implementation by name in settings
(``connectors.registry``). Every method is synchronous and blocking: connectors run in
sync activities on the worker's thread pool. Implementations are safe to share between
threads, return the contracts of ``models.customer360`` and raise only
``connectors.errors.ConnectorError`` subclasses.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol, runtime_checkable

from models.customer360 import (
    Customer,
    ExternalComment,
    ExternalTicket,
    Order,
    OutboundMessage,
    Refund,
    Shipment,
)
from models.returns import ReturnLabel


@runtime_checkable
class OrderSystem(Protocol):
    """The ERP: customers, orders and refunds."""

    def get_customer(self, customer_id: str) -> Customer: ...

    def get_order(self, order_id: str) -> Order: ...

    def list_orders(self, customer_id: str) -> list[Order]:
        """The customer's orders, newest first; empty for a customer without orders."""
        ...

    def create_refund(self, order_id: str, amount: Decimal, reason: str, idempotency_key: str) -> Refund:
        """Refund ``amount`` of the order.

        Calling again with the same ``idempotency_key`` returns the refund created the first
        time and never refunds twice, so an activity may retry after a timeout.
        """
        ...

    def get_refund(self, refund_id: str) -> Refund: ...

    def close(self) -> None: ...


@runtime_checkable
class LogisticsProvider(Protocol):
    """A carrier's tracking service."""

    def track_shipment(self, tracking_number: str) -> Shipment: ...

    def find_shipments(self, reference: str) -> list[Shipment]:
        """The parcels whose shipper's reference is ``reference`` (the shop's order id); empty
        when no parcel carries it yet. Needs no tracking number, so it can be asked before
        the ERP has answered."""
        ...

    def create_return_label(self, order_id: str, skus: list[str], idempotency_key: str) -> ReturnLabel:
        """A label for the customer to send items of ``order_id`` back; the same key gives the
        same label, so a retry never makes a second one."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class TicketSystem(Protocol):
    """Another helpdesk the organisation still uses."""

    def find_tickets(self, customer_id: str) -> list[ExternalTicket]: ...

    def mirror_ticket(self, ticket_id: str, customer_id: str, subject: str, body: str) -> ExternalTicket:
        """Create the helpdesk copy of ticketflow ticket ``ticket_id``; idempotent by that id."""
        ...

    def add_comment(self, external_ticket_id: str, text: str, idempotency_key: str) -> ExternalComment: ...

    def close(self) -> None: ...


@runtime_checkable
class MessagingChannel(Protocol):
    """A chat platform ticketflow answers customers through.

    Inbound messages arrive on ticketflow's webhook and are checked with
    ``connectors.signing.verify_signature``.
    """

    def send_reply(self, conversation_id: str, text: str, idempotency_key: str) -> OutboundMessage:
        """Post ``text`` into the conversation; the same key never posts twice."""
        ...

    def close(self) -> None: ...
