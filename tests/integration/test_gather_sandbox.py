"""The customer picture and the agent actions against the real sandbox systems, through a
real Temporal dev server and a worker running the real activities."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.common import RetryPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

with workflow.unsafe.imports_passed_through():
    from models.customer360 import (
        Customer360,
        ExternalTicket,
        OutboundMessageStatus,
        Refund,
        ShipmentStatus,
    )
    from models.systems import ChatReplyReceipt, MirrorRequest, OutboundReply, RefundRequest, SystemFailure
    from sandbox.data import (
        DEMO_CUSTOMER_DELAYED,
        DEMO_CUSTOMER_DELIVERED,
        DEMO_CUSTOMER_LOST,
        DEMO_ORDER_CANCELLED,
        DEMO_ORDER_DELAYED,
        DEMO_ORDER_DELIVERED_EARLIER,
        DEMO_ORDER_LOST,
        DEMO_ORDER_PROCESSING,
        DEMO_TRACKING_DELAYED,
        DEMO_TRACKING_DELIVERED,
        DEMO_TRACKING_LOST,
    )

# Workflow code, imported like a workflow module imports it (not passed through).
from workflows.context import (
    PERMANENT_ERRORS,
    CallPolicy,
    gather_customer_360,
    issue_refund,
    mirror_to_helpdesk,
    send_chat_reply,
)


# --- test-only workflows ---------------------------------------------------------------------


class GatherProbeInput(BaseModel):
    customer_id: str
    order_id: str | None = None
    known_tracking_numbers: list[str] = Field(default_factory=list)
    # Set: a quick policy instead of the production GATHER one, so failures finish fast.
    attempt_seconds: float | None = None
    max_attempts: int = 2
    budget_seconds: float = 30


@workflow.defn
class GatherProbe:
    @workflow.run
    async def run(self, inp: GatherProbeInput) -> Customer360:
        if inp.attempt_seconds is None:
            return await gather_customer_360(inp.customer_id, inp.order_id,
                                              known_tracking_numbers=inp.known_tracking_numbers)
        quick = CallPolicy(
            start_to_close=timedelta(seconds=inp.attempt_seconds),
            retry=RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_interval=timedelta(seconds=1),
                              maximum_attempts=inp.max_attempts, non_retryable_error_types=PERMANENT_ERRORS),
        )
        return await gather_customer_360(inp.customer_id, inp.order_id, policy=quick,
                                         known_tracking_numbers=inp.known_tracking_numbers,
                                         budget=timedelta(seconds=inp.budget_seconds))


class ActionsInput(BaseModel):
    refund: RefundRequest | None = None
    mirror: MirrorRequest | None = None
    reply: OutboundReply | None = None


class ActionsResult(BaseModel):
    refund: Refund | None = None
    mirror: ExternalTicket | None = None
    reply: ChatReplyReceipt | None = None
    failures: list[SystemFailure] = Field(default_factory=list)


@workflow.defn
class ActionsProbe:
    """Carries out the requested actions one after the other and reports each outcome."""

    @workflow.run
    async def run(self, inp: ActionsInput) -> ActionsResult:
        out = ActionsResult()
        for field, request, step in (("refund", inp.refund, issue_refund), ("mirror", inp.mirror, mirror_to_helpdesk),
                                     ("reply", inp.reply, send_chat_reply)):
            if request is None:
                continue
            result = await step(request)
            if isinstance(result, SystemFailure):
                out.failures.append(result)
            else:
                setattr(out, field, result)
        return out


PROBES = [GatherProbe, ActionsProbe]


@pytest.fixture
async def gather(systems_worker, dev_env, task_queue):
    """``await gather(customer_id, order_id, **probe_options)`` runs a GatherProbe on a worker
    configured by ``gather.configure(**settings_overrides)`` beforehand (default: every
    sandbox system); ``gather.handle`` is the last run's workflow handle."""
    overrides: dict = {}
    started = False

    async def run(customer_id: str, order_id: str | None = None, **options) -> Customer360:
        nonlocal started
        if not started:
            await systems_worker(PROBES, **overrides)
            started = True
        run.handle = await dev_env.client.start_workflow(
            GatherProbe.run, GatherProbeInput(customer_id=customer_id, order_id=order_id, **options),
            id=f"gather-{uuid.uuid4()}", task_queue=task_queue, execution_timeout=timedelta(minutes=2),
        )
        return await run.handle.result()

    run.configure = overrides.update
    return run


@dataclass
class ActivityCall:
    """An activity call as the workflow's history tells it: the event ids at which it was
    scheduled and completed, the workflow task that scheduled it, and when its last attempt
    started and completed on the server's clock."""

    scheduled_id: int
    scheduled_by: int
    completed_id: int = 0
    started: datetime | None = None
    completed: datetime | None = None


async def activity_calls(handle: WorkflowHandle) -> dict[str, ActivityCall]:
    """Per activity type: its last call."""
    by_id: dict[int, ActivityCall] = {}
    calls: dict[str, ActivityCall] = {}
    async for event in handle.fetch_history_events():
        when = event.event_time.ToDatetime(tzinfo=UTC)
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            calls[attrs.activity_type.name] = by_id[event.event_id] = ActivityCall(
                scheduled_id=event.event_id, scheduled_by=attrs.workflow_task_completed_event_id)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            by_id[event.activity_task_started_event_attributes.scheduled_event_id].started = when
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            call = by_id[event.activity_task_completed_event_attributes.scheduled_event_id]
            call.completed_id, call.completed = event.event_id, when
    return calls


QUICK = dict(attempt_seconds=3, max_attempts=2, budget_seconds=6)


# --- the customer picture ------------------------------------------------------------------------


async def test_late_parcel_customer_is_seen_across_all_three_systems(gather):
    picture = await gather(DEMO_CUSTOMER_DELAYED, DEMO_ORDER_DELAYED)

    assert picture.gaps == [] and picture.collected_at is not None
    assert picture.customer is not None and picture.customer.name == "Mia Keller"
    assert {DEMO_ORDER_DELAYED, DEMO_ORDER_DELIVERED_EARLIER} <= {o.id for o in picture.orders}
    [parcel] = picture.shipments  # only the ticket's order is tracked
    assert parcel.tracking_number == DEMO_TRACKING_DELAYED
    assert parcel.is_delayed and parcel.delay_days >= 1 and parcel.status == ShipmentStatus.in_transit
    assert any("Delayed" in e.description for e in parcel.events)
    assert [e.time for e in parcel.events] == sorted(e.time for e in parcel.events)
    assert any(DEMO_ORDER_DELIVERED_EARLIER in t.subject for t in picture.external_tickets)


async def test_without_an_order_on_the_ticket_the_recent_parcels_are_tracked(gather):
    picture = await gather(DEMO_CUSTOMER_DELAYED)
    assert [s.tracking_number for s in picture.shipments] == [DEMO_TRACKING_DELAYED, "SBX100000004"]  # newest first
    assert picture.gaps == []


async def test_orders_that_never_shipped_are_listed_but_not_tracked(gather):
    picture = await gather(DEMO_CUSTOMER_DELIVERED)
    assert {DEMO_ORDER_PROCESSING, DEMO_ORDER_CANCELLED} <= {o.id for o in picture.orders}
    assert [s.tracking_number for s in picture.shipments] == [DEMO_TRACKING_DELIVERED]


async def test_an_order_id_that_is_not_the_customers_is_a_gap_and_recent_parcels_are_shown(gather):
    picture = await gather(DEMO_CUSTOMER_DELAYED, DEMO_ORDER_LOST)  # another customer's order
    [gap] = picture.gaps
    assert (gap.system, gap.error_type) == ("erp", "NotFound") and DEMO_ORDER_LOST in gap.reason
    assert DEMO_ORDER_LOST not in {o.id for o in picture.orders}
    shown = {s.tracking_number for s in picture.shipments}
    assert DEMO_TRACKING_DELAYED in shown
    assert DEMO_TRACKING_LOST not in shown  # the carrier found it by reference; the ERP says it is not theirs


async def test_with_an_order_id_the_three_systems_are_asked_at_once(gather, sandbox):
    gather.configure(connector_timeout=10.0)  # a loaded machine must not turn 300 ms into a retry
    for service in ("erp", "carrier", "helpdesk"):
        sandbox.set_faults(service, latency_ms=300)
    picture = await gather(DEMO_CUSTOMER_DELAYED, DEMO_ORDER_DELAYED)
    assert picture.gaps == [] and [s.tracking_number for s in picture.shipments] == [DEMO_TRACKING_DELAYED]

    calls = await activity_calls(gather.handle)
    assert sorted(calls) == ["find_external_tickets", "find_shipments", "lookup_orders"]  # nothing tracked after
    # Scheduled by the same workflow task, so none waited for another's answer...
    assert len({c.scheduled_by for c in calls.values()}) == 1
    # ...and each had started before any of them finished: they ran side by side.
    assert max(c.started for c in calls.values()) < min(c.completed for c in calls.values())


async def test_without_an_order_id_a_refresh_tracks_known_parcels_alongside_the_erp(gather):
    first = await gather(DEMO_CUSTOMER_DELAYED)
    calls = await activity_calls(gather.handle)
    assert calls["track_shipment"].scheduled_id > calls["lookup_orders"].completed_id  # parcels wait for the orders

    known = [s.tracking_number for s in first.shipments]
    refreshed = await gather(DEMO_CUSTOMER_DELAYED, known_tracking_numbers=known)
    calls = await activity_calls(gather.handle)
    assert calls["track_shipment"].scheduled_by == calls["lookup_orders"].scheduled_by  # asked at once
    assert [s.tracking_number for s in refreshed.shipments] == known and refreshed.gaps == []


async def test_a_known_parcel_the_orders_no_longer_point_to_is_dropped(gather):
    picture = await gather(DEMO_CUSTOMER_DELIVERED, known_tracking_numbers=[DEMO_TRACKING_DELAYED])
    assert [s.tracking_number for s in picture.shipments] == [DEMO_TRACKING_DELIVERED]


async def test_with_an_order_id_known_parcels_are_not_asked_for_again(gather, sandbox):
    picture = await gather(DEMO_CUSTOMER_DELAYED, DEMO_ORDER_DELAYED, known_tracking_numbers=["SBX100000004"])
    assert [s.tracking_number for s in picture.shipments] == [DEMO_TRACKING_DELAYED]
    assert sandbox.fault_status("carrier")["requests_seen"] == 1  # the lookup by the order id


async def test_known_parcels_are_still_shown_when_the_erp_cannot_be_asked(gather, sandbox):
    sandbox.set_faults("erp", error_rate=1)
    picture = await gather(DEMO_CUSTOMER_DELAYED, known_tracking_numbers=[DEMO_TRACKING_DELAYED], **QUICK)
    assert [g.system for g in picture.gaps] == ["erp"] and picture.orders == []
    assert [s.tracking_number for s in picture.shipments] == [DEMO_TRACKING_DELAYED]


@pytest.mark.parametrize(("order_id", "known"), [
    (None, ["SBX100000004", "SBX-UNRELATED"]),  # early parcel lookups, one of them unused
    (DEMO_ORDER_DELAYED, []),  # the carrier asked by reference alongside the ERP
    (DEMO_ORDER_LOST, []),  # ...and its answer dropped: another customer's order
])
async def test_a_gather_replays_deterministically(gather, sandbox, order_id, known):
    """Concurrent branches, parcel lookups whose answer goes unused and a gap: replaying the
    recorded history must issue the same commands in the same order."""
    sandbox.set_faults("helpdesk", error_rate=1, status_code=503)
    await gather(DEMO_CUSTOMER_DELAYED, order_id, known_tracking_numbers=known, **QUICK)
    history = await gather.handle.fetch_history()
    await Replayer(workflows=[GatherProbe], data_converter=pydantic_data_converter).replay_workflow(history)


async def test_errors_that_heal_within_the_retries_leave_no_trace(gather, sandbox):
    for service in ("erp", "carrier", "helpdesk"):
        sandbox.set_faults(service, fail_next=2, status_code=500)
    picture = await gather(DEMO_CUSTOMER_DELAYED, DEMO_ORDER_DELAYED)
    assert picture.gaps == []
    assert picture.customer is not None and picture.shipments and picture.external_tickets
    for service in ("erp", "carrier", "helpdesk"):
        status = sandbox.fault_status(service)
        assert status["faults_injected"] == 2 and status["requests_seen"] > 2


async def test_a_permanent_not_found_is_recorded_without_retrying(gather, sandbox):
    sandbox.set_faults("carrier", error_rate=1, status_code=404)
    picture = await gather(DEMO_CUSTOMER_DELAYED, DEMO_ORDER_DELAYED)
    [gap] = picture.gaps
    assert (gap.system, gap.error_type) == ("carrier", "NotFound") and "404" in gap.reason
    assert sandbox.fault_status("carrier")["requests_seen"] == 1
    assert picture.orders and picture.external_tickets and picture.shipments == []


async def test_a_system_that_keeps_failing_is_a_gap_after_its_retries(gather, sandbox):
    sandbox.set_faults("erp", error_rate=1)  # every call a SOAP Server fault
    picture = await gather(DEMO_CUSTOMER_DELAYED, DEMO_ORDER_DELAYED, **QUICK)
    [gap] = picture.gaps
    assert (gap.system, gap.error_type) == ("erp", "Unavailable")
    assert "backend unavailable" in gap.reason and "gave up after 2 attempts" in gap.reason
    assert picture.customer is None and picture.orders == []
    assert picture.external_tickets  # the helpdesk still answered
    # The ticket's parcel, found by the order id on its label: with the ERP down, the best there is.
    assert [s.tracking_number for s in picture.shipments] == [DEMO_TRACKING_DELAYED]


async def test_without_the_erp_or_an_order_id_no_parcel_can_be_found(gather, sandbox):
    sandbox.set_faults("erp", error_rate=1)
    picture = await gather(DEMO_CUSTOMER_DELAYED, **QUICK)
    assert [g.system for g in picture.gaps] == ["erp"] and picture.shipments == []
    assert sandbox.fault_status("carrier")["requests_seen"] == 0


async def test_a_hanging_system_times_out_and_the_others_still_appear(gather, sandbox):
    sandbox.set_faults("carrier", timeout_rate=1, timeout_seconds=30)
    started = time.monotonic()
    picture = await gather(DEMO_CUSTOMER_DELAYED, DEMO_ORDER_DELAYED, **QUICK)
    assert time.monotonic() - started < 15
    [gap] = picture.gaps
    assert (gap.system, gap.error_type) == ("carrier", "Timeout")
    assert picture.customer is not None and picture.orders and picture.external_tickets


async def test_an_attempt_longer_than_its_timeout_is_cut_off_by_temporal(gather, sandbox):
    """The connector would wait 3 s; the policy allows 1 s per attempt. Temporal's timeout
    is the one that counts, and the gap says so."""
    gather.configure(connector_timeout=3.0)
    sandbox.set_faults("helpdesk", timeout_rate=1, timeout_seconds=30)
    picture = await gather(DEMO_CUSTOMER_DELAYED, DEMO_ORDER_DELAYED, **{**QUICK, "attempt_seconds": 1})
    [gap] = picture.gaps
    assert (gap.system, gap.error_type) == ("helpdesk", "Timeout") and "start-to-close" in gap.reason
    assert picture.shipments and picture.orders


async def test_a_garbled_answer_is_retried_then_recorded(gather, sandbox):
    sandbox.set_faults("helpdesk", malformed_rate=1)
    picture = await gather(DEMO_CUSTOMER_DELAYED, DEMO_ORDER_DELAYED, **QUICK)
    [gap] = picture.gaps
    assert (gap.system, gap.error_type) == ("helpdesk", "MalformedResponse")
    assert sandbox.fault_status("helpdesk")["requests_seen"] == QUICK["max_attempts"]
    assert picture.shipments and picture.external_tickets == []


async def test_a_system_that_is_down_is_a_gap_with_its_reason(gather, unused_port):
    gather.configure(logistics_url=f"http://127.0.0.1:{unused_port}")
    picture = await gather(DEMO_CUSTOMER_LOST, DEMO_ORDER_LOST, **QUICK)
    [gap] = picture.gaps
    assert (gap.system, gap.error_type) == ("carrier", "Unavailable") and "ConnectError" in gap.reason
    assert picture.customer is not None and picture.customer.is_vip
    assert any(DEMO_ORDER_LOST in t.subject for t in picture.external_tickets)


async def test_a_system_the_deployment_does_not_have_is_neither_data_nor_gap(gather):
    gather.configure(helpdesk_url=None)
    picture = await gather(DEMO_CUSTOMER_DELAYED, DEMO_ORDER_DELAYED)
    assert picture.gaps == [] and picture.external_tickets == []
    assert picture.orders and picture.shipments


# --- agent actions ---------------------------------------------------------------------------------


@pytest.fixture
async def act(systems_worker, dev_env, task_queue):
    await systems_worker(PROBES)

    async def run(**requests) -> ActionsResult:
        return await dev_env.client.execute_workflow(
            ActionsProbe.run, ActionsInput(**requests), id=f"actions-{uuid.uuid4()}", task_queue=task_queue,
            execution_timeout=timedelta(minutes=2),
        )

    return run


def refund_request(**overrides) -> RefundRequest:
    ticket = f"TK-{uuid.uuid4().hex[:8]}"
    data = dict(ticket_id=ticket, customer_id=DEMO_CUSTOMER_DELAYED, order_id=DEMO_ORDER_DELAYED,
                amount=Decimal("20.00"), reason="parcel four days late", idempotency_key=f"{ticket}:t1:refund",
                department="logistics", decided_by="ana", decided_by_role="agent", decided_by_department="logistics")
    data.update(overrides)
    return RefundRequest(**data)


async def test_a_refund_is_made_once_however_often_the_decision_is_carried_out(act, running_sandbox):
    request = refund_request()
    first, again = await act(refund=request), await act(refund=request)
    assert first.failures == [] and first.refund is not None and first.refund == again.refund
    assert first.refund.amount == Decimal("20.00") and first.refund.order_id == DEMO_ORDER_DELAYED


async def test_a_refund_the_erp_refuses_with_a_soap_fault_is_not_retried(act, sandbox):
    # more than the order is worth, by someone the policy lets refund any amount
    result = await act(refund=refund_request(amount=Decimal("100000"), decided_by="root"))
    [failure] = result.failures
    assert (failure.system, failure.error_type) == ("erp", "InvalidRequest") and "exceeds" in failure.message
    assert result.refund is None
    assert sandbox.fault_status("erp")["requests_seen"] == 2  # GetOrder, CreateRefund: once each


async def test_a_refund_by_an_agent_of_another_department_never_reaches_the_erp(act, sandbox):
    result = await act(refund=refund_request(decided_by="gil"))
    [failure] = result.failures
    assert failure.error_type == "Forbidden" and result.refund is None
    assert sandbox.fault_status("erp")["requests_seen"] == 0


async def test_mirroring_and_chat_replies_reach_their_systems_once(act, sandbox):
    ticket = f"TK-{uuid.uuid4().hex[:8]}"
    mirror = MirrorRequest(ticket_id=ticket, customer_id=DEMO_CUSTOMER_DELAYED, subject="Parcel late",
                           body="ORD-1001 is four days late.")
    reply = OutboundReply(ticket_id=ticket, conversation_id=f"conv-{ticket}", text="Sorry, it arrives Friday.",
                          idempotency_key=f"{ticket}:reply-1")
    first = await act(mirror=mirror, reply=reply)
    again = await act(mirror=mirror, reply=reply)
    assert first.failures == []
    assert first.mirror is not None and first.mirror.ticketflow_ticket_id == ticket
    assert again.mirror is not None and again.mirror.id == first.mirror.id
    assert first.reply is not None and first.reply.status == OutboundMessageStatus.delivered
    assert again.reply is not None and again.reply.message_id == first.reply.message_id


async def test_a_chat_reply_the_platform_refuses_is_reported_not_retried(act, sandbox):
    ticket = f"TK-{uuid.uuid4().hex[:8]}"
    sent = await act(reply=OutboundReply(ticket_id=ticket, conversation_id="conv-1", text="One",
                                         idempotency_key=f"{ticket}:r"))
    reused = await act(reply=OutboundReply(ticket_id=ticket, conversation_id="conv-1", text="Another text",
                                           idempotency_key=f"{ticket}:r"))
    assert sent.reply is not None
    [failure] = reused.failures
    assert (failure.system, failure.error_type) == ("messaging", "Conflict")
