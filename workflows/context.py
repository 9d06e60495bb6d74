"""Calls to the systems around ticketflow: the customer 360 from the ERP, the carrier and the
older helpdesk, and the actions taken in them (refund, return label, mirror, chat reply).
Activities are called by name (``activities.systems``), so no driver enters the sandbox.
Each kind of call has its own ``CallPolicy``, chosen for what a failure costs:

- looking things up (``GATHER``) must not hold a ticket up: a few quick attempts inside a
  30-second budget for the whole gather, then the picture goes ahead without that system
  and says so (``SystemGap``);
- a refund (``REFUND``) is money an agent promised: retried for a day with the same
  idempotency key, which makes the ERP refund at most once however often it is asked;
- a chat reply or a helpdesk mirror (``CHAT_REPLY``, ``MIRROR``) is retried for an hour,
  then reported so an agent can follow up another way.

Errors that asking again cannot fix are never retried: ``PERMANENT_ERRORS``. The helpers do
not raise for a failed call; they return a ``SystemFailure`` for the workflow to record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, RetryState, TimeoutError

with workflow.unsafe.imports_passed_through():
    from models.customer360 import Customer360, ExternalTicket, Order, Refund, Shipment, SystemGap
    from models.returns import ReturnLabel, ReturnLabelRequest
    from models.systems import (
        ChatReplyReceipt,
        ExternalTicketsLookup,
        ExternalTicketsResult,
        MirrorRequest,
        OrdersLookup,
        OrdersResult,
        OutboundReply,
        RefundRequest,
        ShipmentLookup,
        ShipmentsLookup,
        ShipmentsResult,
        SystemFailure,
    )

# The activity's ApplicationError types after which another attempt gets the same answer.
# The activities already mark these non-retryable; listing them here keeps that true for
# any implementation registered under the same activity names.
PERMANENT_ERRORS = ["NotConfigured", "Forbidden", "NotFound", "InvalidRequest", "Conflict", "Unauthorized"]


@dataclass(frozen=True)
class CallPolicy:
    """Timeouts and retries of one kind of call to an external system.

    ``start_to_close`` bounds one attempt; it should exceed the connector timeout setting
    (``TICKETFLOW_CONNECTOR_TIMEOUT``, 10 s by default) times the calls one attempt makes
    one after the other, so the connector reports its own ``Timeout`` first.
    ``schedule_to_close`` bounds all attempts together (``None``: ``retry.maximum_attempts``).
    """

    start_to_close: timedelta
    retry: RetryPolicy
    schedule_to_close: timedelta | None = None

    def options(self, schedule_to_close: timedelta | None = None) -> dict[str, Any]:
        return dict(
            start_to_close_timeout=self.start_to_close,
            schedule_to_close_timeout=schedule_to_close or self.schedule_to_close,
            retry_policy=self.retry,
        )


# Lookups: 4 attempts, 0.5 s, 1 s and 2 s apart. A system that refuses connections is given
# up on within ~4 s; one that hangs is cut off by the gather budget.
GATHER = CallPolicy(
    start_to_close=timedelta(seconds=12),
    retry=RetryPolicy(initial_interval=timedelta(milliseconds=500), backoff_coefficient=2.0,
                      maximum_interval=timedelta(seconds=4), maximum_attempts=4,
                      non_retryable_error_types=PERMANENT_ERRORS),
)
# How long a whole gather may take, including the shipment lookups that wait for the orders.
GATHER_BUDGET = timedelta(seconds=30)
# A refund is two ERP calls (check the order, refund it). Retried for a day: a refund that
# still fails after that is shown to the agents, who can retry it with the same key.
REFUND = CallPolicy(
    start_to_close=timedelta(seconds=30),
    schedule_to_close=timedelta(days=1),
    retry=RetryPolicy(initial_interval=timedelta(seconds=2), backoff_coefficient=2.0,
                      maximum_interval=timedelta(minutes=10), non_retryable_error_types=PERMANENT_ERRORS),
)
CHAT_REPLY = CallPolicy(
    start_to_close=timedelta(seconds=15),
    schedule_to_close=timedelta(hours=1),
    retry=RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                      maximum_interval=timedelta(minutes=5), non_retryable_error_types=PERMANENT_ERRORS),
)
MIRROR = CHAT_REPLY
# A return label: retried for an hour, then an agent sends one by hand.
LABEL = CHAT_REPLY


async def gather_customer_360(
    customer_id: str,
    order_id: str | None = None,
    *,
    known_tracking_numbers: Sequence[str] = (),
    max_shipments: int = 3,
    policy: CallPolicy = GATHER,
    budget: timedelta = GATHER_BUDGET,
) -> Customer360:
    """Everything the ERP, the carrier and the older helpdesk know about the customer.

    When the ticket names an order, the ERP, the helpdesk and the carrier are asked at once:
    the carrier for the parcels whose shipper's reference is that order id, so a gather costs
    the slowest system's time rather than ERP plus carrier. The ERP's answer still decides
    whether those parcels are shown: if the order is not this customer's, they are dropped
    (and the gather goes on as below, for the recent orders); if the ERP could not be asked,
    they are the best there is and are kept. A tracking number the ERP has for the order
    that the carrier did not list under its reference is tracked after the ERP answers.

    Without an order id, the ERP and the helpdesk are asked at once, and the parcels of the
    ``max_shipments`` most recent orders that shipped are tracked, all at once, as soon as
    the orders are known. A refresh can pass the tracking numbers of its previous picture as
    ``known_tracking_numbers``: those are tracked alongside the ERP call instead of after it.
    The picture is the same either way: a known number the orders no longer point to is
    dropped (unless the ERP could not be asked, when the known parcels are the best there
    is). With an order id the known numbers are not needed and not asked for.

    Never fails because a system does: what could be fetched is returned, and each system
    that could not be asked (down, slow, refusing) adds a ``SystemGap``; so does an order
    id on the ticket that is not this customer's. A system the deployment has not
    configured adds neither data nor a gap. Returns within ``budget`` plus at most one
    ``policy.start_to_close`` for the parcels.
    """
    deadline = workflow.now() + budget
    picture = Customer360(customer_id=customer_id)
    failures: list[SystemFailure] = []

    def track(number: str, within: timedelta) -> asyncio.Task[Any]:
        return asyncio.create_task(track_shipment(number, policy=policy, within=within))

    by_reference: asyncio.Task[Any] | None = None
    early: dict[str, asyncio.Task[Any]] = {}
    if order_id:
        by_reference = asyncio.create_task(_call("carrier", "find_shipments", ShipmentsLookup(reference=order_id),
                                                 ShipmentsResult, policy, budget))
    else:
        early = {n: track(n, budget) for n in dict.fromkeys(known_tracking_numbers)}

    async def orders_then_shipments() -> None:
        found = await lookup_orders(customer_id, order_id, policy=policy, within=budget)
        order_is_theirs = True  # if the ERP cannot say, the customer's word is all there is
        if isinstance(found, SystemFailure):
            failures.append(found)
            numbers = list(early)
        else:
            picture.customer, picture.orders = found.customer, found.orders
            if found.unknown_order_id:
                order_is_theirs = False
                failures.append(SystemFailure(
                    system="erp", error_type="NotFound",
                    message=f"order {found.unknown_order_id} named on the ticket is not an order of "
                            f"customer {customer_id} in the ERP",
                ))
            numbers = _tracking_numbers(found.orders, order_id, max_shipments)
        listed: list[Shipment] = []
        if by_reference is not None and order_is_theirs:
            by_ref = await by_reference
            if isinstance(by_ref, SystemFailure):
                # Tracking by number asks the same carrier again: the gap says it could not be asked.
                failures.append(by_ref)
                numbers = []
            else:
                listed = by_ref.shipments
                seen = {s.tracking_number for s in listed}
                numbers = [n for n in numbers if n not in seen]
        remaining = max(deadline - workflow.now(), policy.start_to_close)
        lookups = [early.get(n) or track(n, remaining) for n in numbers]
        if lookups:
            await workflow.wait(lookups)
        picture.shipments.extend(listed)
        for lookup in lookups:  # in order of the orders, whatever answered first
            tracked = lookup.result()
            if isinstance(tracked, SystemFailure):
                failures.append(tracked)
            else:
                picture.shipments.append(tracked)

    async def external_tickets() -> None:
        found = await _call("helpdesk", "find_external_tickets", ExternalTicketsLookup(customer_id=customer_id),
                            ExternalTicketsResult, policy, budget)
        if isinstance(found, SystemFailure):
            failures.append(found)
        else:
            picture.external_tickets = found.tickets

    branches = [asyncio.create_task(orders_then_shipments()), asyncio.create_task(external_tickets())]
    # Parcel lookups whose answer goes unused (known parcels the orders no longer point to,
    # another customer's order's parcels) are awaited too: no call outlives the gather.
    parcel_lookups = [*early.values(), *([by_reference] if by_reference else [])]
    await workflow.wait([*branches, *parcel_lookups])
    for branch in branches:
        branch.result()  # a bug or a cancellation is not a gap: let it surface
    picture.gaps = [SystemGap(system=f.system, reason=f.message, error_type=f.error_type)
                    for f in sorted(failures, key=lambda f: f.system) if not f.not_configured]
    picture.collected_at = workflow.now()
    return picture


def _tracking_numbers(orders: list[Order], order_id: str | None, limit: int) -> list[str]:
    ticket_order = [o for o in orders if o.id == order_id]
    relevant = ticket_order or [o for o in orders if o.tracking_number][:limit]  # orders are newest first
    return list(dict.fromkeys(o.tracking_number for o in relevant if o.tracking_number))


async def issue_refund(req: RefundRequest, *, policy: CallPolicy = REFUND) -> Refund | SystemFailure:
    """Refund ``req.amount`` of the order: the ``Refund`` the ERP made, or why it did not.

    Retried for a day (``REFUND``) with the same ``req.idempotency_key``, so a retry after a
    timeout or a crashed worker returns the first refund instead of paying twice. Returned as
    a failure at once: ``Forbidden`` (the agent may not refund this), ``InvalidRequest``
    (amount above what is left, cancelled order, another customer's order), ``Conflict``
    (the key was used for a different refund), ``NotFound``, ``Unauthorized`` (ERP
    credentials in settings) and ``NotConfigured``. Whatever the failure, no money moved
    unless a later call with the same key says otherwise.
    """
    return await _call("erp", "create_refund", req, Refund, policy)


async def mirror_to_helpdesk(req: MirrorRequest, *, policy: CallPolicy = MIRROR) -> ExternalTicket | SystemFailure:
    """The helpdesk's copy of the ticket (created, or found again: mirroring is idempotent
    by ticket id), or why there is none after an hour of retries. ``NotConfigured`` means
    the deployment has no older helpdesk: nothing to record."""
    return await _call("helpdesk", "mirror_ticket", req, ExternalTicket, policy)


async def send_chat_reply(req: OutboundReply, *, policy: CallPolicy = CHAT_REPLY) -> ChatReplyReceipt | SystemFailure:
    """Post the reply into the customer's chat conversation: the platform's receipt, or why
    it was not delivered after an hour of retries (record it as undelivered so an agent
    follows up another way). The idempotency key makes retries post at most once."""
    return await _call("messaging", "send_chat_reply", req, ChatReplyReceipt, policy)


async def _call(system: str, activity: str, arg: Any, result_type: type, policy: CallPolicy,
                schedule_to_close: timedelta | None = None) -> Any:
    try:
        return await workflow.execute_activity(activity, arg, result_type=result_type,
                                               **policy.options(schedule_to_close))
    except ActivityError as err:
        return failure_of(system, err, policy)


def failure_of(system: str, err: ActivityError, policy: CallPolicy | None = None) -> SystemFailure:
    """What a failed activity tells an agent: the last error the system gave, or that it
    did not answer in time."""
    cause: BaseException | None = err.cause
    timed_out: TimeoutError | None = None
    while cause is not None and not isinstance(cause, ApplicationError):
        if isinstance(cause, CancelledError):
            raise err  # the workflow is being cancelled; that is not the system's failure
        if isinstance(cause, TimeoutError) and timed_out is None:
            timed_out = cause
        cause = cause.__cause__
    if isinstance(cause, ApplicationError):
        error_type, message = cause.type or "Error", cause.message
        if timed_out is not None:
            message += " (still failing when the time for retries ran out)"
    elif timed_out is not None:
        kind = timed_out.type.name.lower().replace("_", "-") if timed_out.type else "activity"
        error_type, message = "Timeout", f"{system}: no answer in time ({kind} timeout)"
    else:
        error_type, message = type(err.cause).__name__ if err.cause else "Error", str(err.cause or err)
    if err.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED:
        attempts = policy.retry.maximum_attempts if policy else 0
        message += f" (gave up after {attempts} attempts)" if attempts else " (gave up after the last attempt)"
    return SystemFailure(system=system, error_type=error_type, message=message)


async def lookup_orders(customer_id: str, order_id: str | None = None, *, policy: CallPolicy = GATHER,
                        within: timedelta | None = None) -> OrdersResult | SystemFailure:
    """The customer's orders from the ERP (newest first), or why the ERP could not say
    (`within`: all attempts together, instead of the policy's bound)."""
    return await _call("erp", "lookup_orders", OrdersLookup(customer_id=customer_id, order_id=order_id),
                       OrdersResult, policy, within)


async def track_shipment(tracking_number: str, *, policy: CallPolicy = GATHER,
                         within: timedelta | None = None) -> Shipment | SystemFailure:
    """Where the carrier says the parcel is, or why it could not say."""
    return await _call("carrier", "track_shipment", ShipmentLookup(tracking_number=tracking_number), Shipment,
                       policy, within)


async def create_return_label(req: ReturnLabelRequest, *, policy: CallPolicy = LABEL) -> ReturnLabel | SystemFailure:
    """A return label from the carrier, once per ``req.idempotency_key`` however often it is
    retried, or why there is none after an hour of retries."""
    return await _call("carrier", "create_return_label", req, ReturnLabel, policy)
