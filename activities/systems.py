"""The calls ticketflow makes to the systems around it: orders and refunds in the ERP,
parcel tracking at the carrier, tickets in the older helpdesk, replies on the chat platform.

Every method is a sync activity: the connectors block (zeep, httpx), so the worker runs them
on its thread pool. Connectors never retry; a failure becomes an ``ApplicationError`` whose
``type`` is the connector error's name and which is non-retryable exactly when asking again
cannot help, so the workflow's ``RetryPolicy`` decides everything else. A system the
deployment has not configured (its URL setting unset) fails every call with the
non-retryable type ``NotConfigured``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import SecretStr
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from connectors.errors import ConnectorError, NotFound
from connectors.interfaces import LogisticsProvider, MessagingChannel, OrderSystem, TicketSystem
from connectors.registry import (
    ConnectorConfig,
    build_logistics_provider,
    build_messaging_channel,
    build_order_system,
    build_ticket_system,
)
from models.auth import Principal
from models.customer360 import Customer, ExternalTicket, Refund, Shipment
from models.returns import ReturnLabel, ReturnLabelRequest
from models.systems import (
    ChatReplyReceipt,
    ExternalTicketsLookup,
    ExternalTicketsResult,
    MirrorRequest,
    OrdersLookup,
    OrdersResult,
    OutboundReply,
    RefundLookup,
    RefundRequest,
    ShipmentLookup,
    ShipmentsLookup,
    ShipmentsResult,
)
from policies import Authorizer, Resource

if TYPE_CHECKING:
    from settings import Settings

T = TypeVar("T")

NOT_CONFIGURED = "NotConfigured"
FORBIDDEN = "Forbidden"


def application_error(err: ConnectorError) -> ApplicationError:
    """The ``ApplicationError`` a workflow sees for a connector failure."""
    return ApplicationError(str(err), type=err.error_type, non_retryable=not err.retryable)


@contextmanager
def connector_errors(system: str) -> Iterator[None]:
    """Turn a connector failure into the workflow's ``ApplicationError``, and count the call:
    ``ticketflow_connector_calls_total`` and ``ticketflow_connector_call_duration_seconds`` by
    system and result (``ok`` or the error type) on the worker's metrics; the activity's
    meter adds its ``activity_type``."""
    started = time.monotonic()
    result = "ok"
    try:
        yield
    except ConnectorError as err:
        result = err.error_type
        raise application_error(err) from err
    except BaseException as err:
        result = type(err).__name__
        raise
    finally:
        if activity.in_activity():
            labels = {"system": system, "result": result}
            meter = activity.metric_meter()
            meter.create_counter("ticketflow_connector_calls", "Calls to an external system").add(1, labels)
            meter.create_histogram_timedelta(
                "ticketflow_connector_call_duration_seconds", "Time a call to an external system took",
            ).record(timedelta(seconds=time.monotonic() - started), labels)


class SystemActivities:
    """Holds one connector per external system, or ``None`` where the deployment has none.

    Connectors are thread-safe, so one instance serves the whole activity thread pool.
    """

    def __init__(
        self,
        *,
        orders: OrderSystem | None = None,
        logistics: LogisticsProvider | None = None,
        tickets: TicketSystem | None = None,
        messaging: MessagingChannel | None = None,
        authorizer: Authorizer | None = None,
        fanout_threads: int = 8,
    ) -> None:
        self.orders = orders
        self.logistics = logistics
        self.tickets = tickets
        self.messaging = messaging
        self._authorizer = authorizer or Authorizer.from_files()
        # The customer and their orders are two ERP calls; asking both at once keeps a
        # lookup at one ERP round trip.
        self._fanout = ThreadPoolExecutor(max_workers=fanout_threads, thread_name_prefix="erp-lookup")

    def activities(self) -> list[Callable[..., Any]]:
        """The activity callables, for ``Worker(activities=...)``."""
        return [
            self.lookup_orders,
            self.track_shipment,
            self.find_shipments,
            self.create_return_label,
            self.find_external_tickets,
            self.create_refund,
            self.get_refund,
            self.mirror_ticket,
            self.send_chat_reply,
        ]

    def close(self) -> None:
        self._fanout.shutdown(wait=False, cancel_futures=True)
        for connector in (self.orders, self.logistics, self.tickets, self.messaging):
            if connector is not None:
                connector.close()

    # --- ERP -----------------------------------------------------------------------------

    @activity.defn(name="lookup_orders")
    def lookup_orders(self, req: OrdersLookup) -> OrdersResult:
        erp = _configured(self.orders, "erp", "TICKETFLOW_ORDERS_URL")
        with connector_errors("erp"):
            customer = self._fanout.submit(_customer_or_none, erp, req.customer_id)
            listed = self._fanout.submit(erp.list_orders, req.customer_id)
            orders = sorted(listed.result(), key=lambda o: o.placed_at, reverse=True)
            result = OrdersResult(customer=customer.result(), orders=orders)
        if req.order_id and all(o.id != req.order_id for o in orders):
            # Missing, or another customer's: a ticket's order id is what the customer typed.
            result.unknown_order_id = req.order_id
        return result

    @activity.defn(name="create_refund")
    def create_refund(self, req: RefundRequest) -> Refund:
        """Refund part of an order, once per idempotency key however often it is retried.

        The agent's permission is checked again here (the API checked it before the
        workflow saw the decision), and the order must belong to the ticket's customer:
        the order id on a ticket is whatever the customer typed.
        """
        self._authorize_refund(req)
        erp = _configured(self.orders, "erp", "TICKETFLOW_ORDERS_URL")
        with connector_errors("erp"):
            order = erp.get_order(req.order_id)
            if order.customer_id != req.customer_id:
                raise ApplicationError(
                    f"order {req.order_id} is not an order of customer {req.customer_id}; nothing was refunded",
                    type="InvalidRequest", non_retryable=True,
                )
            refund = erp.create_refund(req.order_id, req.amount, req.reason, req.idempotency_key)
        activity.logger.info("refund %s of %s %s on order %s for ticket %s (decided by %s)",
                             refund.id, refund.amount, refund.currency, refund.order_id, req.ticket_id,
                             req.decided_by)
        return refund

    @activity.defn(name="get_refund")
    def get_refund(self, req: RefundLookup) -> Refund:
        erp = _configured(self.orders, "erp", "TICKETFLOW_ORDERS_URL")
        with connector_errors("erp"):
            return erp.get_refund(req.refund_id)

    def _authorize_refund(self, req: RefundRequest) -> None:
        """Ask the policy as it stands now, for the user named in the decision: their roles
        come from the memberships, never from the request (the role fields in it are kept
        only for old histories)."""
        who = Principal(name=req.decided_by)
        target = Resource("order", department=req.department, amount=float(req.amount))
        self._authorizer.refresh()  # the authorizer is safe to share between threads
        decision = self._authorizer.decide(who, "refund", target)
        if not decision.allowed:
            where = f"department {req.department!r}" if req.department else "this ticket"
            raise ApplicationError(f"{who.name} may not refund {req.amount} on orders of {where} under policy "
                                   f"v{decision.policy_version}; nothing was refunded", type=FORBIDDEN,
                                   non_retryable=True)

    # --- Carrier -------------------------------------------------------------------------

    @activity.defn(name="track_shipment")
    def track_shipment(self, req: ShipmentLookup) -> Shipment:
        carrier = _configured(self.logistics, "carrier", "TICKETFLOW_LOGISTICS_URL")
        with connector_errors("carrier"):
            return carrier.track_shipment(req.tracking_number)

    @activity.defn(name="create_return_label")
    def create_return_label(self, req: ReturnLabelRequest) -> ReturnLabel:
        carrier = _configured(self.logistics, "carrier", "TICKETFLOW_LOGISTICS_URL")
        with connector_errors("carrier"):
            label = carrier.create_return_label(req.order_id, req.skus, req.idempotency_key)
        activity.logger.info("return label %s for order %s of case %s", label.tracking_number, req.order_id,
                             req.ticket_id)
        return label

    @activity.defn(name="find_shipments")
    def find_shipments(self, req: ShipmentsLookup) -> ShipmentsResult:
        """The order's parcels by the shipper's reference: no tracking number needed, so the
        workflow can ask while the ERP is still looking the order up."""
        carrier = _configured(self.logistics, "carrier", "TICKETFLOW_LOGISTICS_URL")
        with connector_errors("carrier"):
            return ShipmentsResult(shipments=carrier.find_shipments(req.reference))

    # --- Older helpdesk ------------------------------------------------------------------

    @activity.defn(name="find_external_tickets")
    def find_external_tickets(self, req: ExternalTicketsLookup) -> ExternalTicketsResult:
        helpdesk = _configured(self.tickets, "helpdesk", "TICKETFLOW_HELPDESK_URL")
        with connector_errors("helpdesk"):
            tickets = helpdesk.find_tickets(req.customer_id)
        return ExternalTicketsResult(tickets=sorted(tickets, key=lambda t: t.created_at, reverse=True))

    @activity.defn(name="mirror_ticket")
    def mirror_ticket(self, req: MirrorRequest) -> ExternalTicket:
        helpdesk = _configured(self.tickets, "helpdesk", "TICKETFLOW_HELPDESK_URL")
        with connector_errors("helpdesk"):
            return helpdesk.mirror_ticket(req.ticket_id, req.customer_id, req.subject, req.body)

    # --- Chat platform -------------------------------------------------------------------

    @activity.defn(name="send_chat_reply")
    def send_chat_reply(self, req: OutboundReply) -> ChatReplyReceipt:
        chat = _configured(self.messaging, "messaging", "TICKETFLOW_MESSAGING_URL")
        with connector_errors("messaging"):
            sent = chat.send_reply(req.conversation_id, req.text, req.idempotency_key)
        return ChatReplyReceipt(message_id=sent.id, conversation_id=sent.conversation_id, status=sent.status,
                                sent_at=sent.sent_at, idempotency_key=sent.idempotency_key)


def _configured(connector: T | None, system: str, setting: str) -> T:
    if connector is None:
        # Benign: a deployment without this system is normal, not worth a warning per ticket.
        raise ApplicationError(f"no {system} is configured (set {setting})", type=NOT_CONFIGURED,
                               non_retryable=True, category=ApplicationErrorCategory.BENIGN)
    return connector


def _customer_or_none(erp: OrderSystem, customer_id: str) -> Customer | None:
    """A customer the ERP does not know (a prospect, a chat visitor) is an answer, not a
    failure: the picture just has no customer record.

    The email address is left out: this result is stored in workflow history, and contact
    details are looked up by the activity that needs them (see ``CustomerNotification``)."""
    try:
        customer = erp.get_customer(customer_id)
    except NotFound:
        return None
    return customer.model_copy(update={"email": ""})


# --- composition ---------------------------------------------------------------------------------


def _config(implementation: str, url: str | None, timeout: float, *, api_key: SecretStr | None = None,
            username: str | None = None, password: SecretStr | None = None) -> ConnectorConfig | None:
    if not url:
        return None
    return ConnectorConfig(implementation=implementation, base_url=url, timeout_seconds=timeout,
                           api_key=api_key, username=username, password=password)


def build_system_activities(settings: Settings, *, authorizer: Authorizer | None = None) -> SystemActivities:
    """Connectors for every system whose URL is set in ``settings``; the others stay ``None``."""
    timeout = settings.connector_timeout
    orders = _config(settings.orders_system, settings.orders_url, timeout,
                     username=settings.orders_username, password=settings.orders_password)
    logistics = _config(settings.logistics_system, settings.logistics_url, timeout,
                        api_key=settings.logistics_api_key)
    tickets = _config(settings.helpdesk_system, settings.helpdesk_url, timeout, api_key=settings.helpdesk_api_key)
    messaging = _config(settings.messaging_system, settings.messaging_url, timeout,
                        api_key=settings.messaging_api_key)
    return SystemActivities(
        orders=build_order_system(orders) if orders else None,
        logistics=build_logistics_provider(logistics) if logistics else None,
        tickets=build_ticket_system(tickets) if tickets else None,
        messaging=build_messaging_channel(messaging) if messaging else None,
        authorizer=authorizer,
    )
