"""SystemActivities without any real system: how connector failures reach the workflow,
what an unconfigured system answers, and what a lookup returns."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from pydantic import SecretStr
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.testing import ActivityEnvironment

from activities.systems import SystemActivities, build_system_activities
from connectors import errors
from connectors.carrier_rest import RestLogisticsProvider
from connectors.helpdesk_rest import RestTicketSystem
from connectors.interfaces import LogisticsProvider, MessagingChannel, OrderSystem, TicketSystem
from models.returns import ReturnLabelRequest
from models.systems import (
    ExternalTicketsLookup,
    MirrorRequest,
    OrdersLookup,
    OutboundReply,
    RefundLookup,
    RefundRequest,
    ShipmentLookup,
    ShipmentsLookup,
)
from settings import Settings

run = ActivityEnvironment().run


class Broken:
    """A connector of any kind whose every call raises ``error``."""

    def __init__(self, error: errors.ConnectorError) -> None:
        self.error = error

    def __getattr__(self, name: str):
        def fail(*args, **kwargs):
            raise self.error
        return fail


ERRORS = [
    (errors.NotFound, False),
    (errors.InvalidRequest, False),
    (errors.Conflict, False),
    (errors.Unauthorized, False),
    (errors.Unavailable, True),
    (errors.Timeout, True),
    (errors.MalformedResponse, True),
]


CARRIER_CALLS = pytest.mark.parametrize(("call", "arg"), [
    ("track_shipment", ShipmentLookup(tracking_number="T-1")),
    ("find_shipments", ShipmentsLookup(reference="O-1")),
])


@CARRIER_CALLS
@pytest.mark.parametrize(("kind", "retryable"), ERRORS, ids=[k.__name__ for k, _ in ERRORS])
def test_a_connector_error_keeps_its_type_and_only_transient_ones_are_retried(kind, retryable, call, arg):
    acts = SystemActivities(logistics=Broken(kind("carrier", "it went wrong", status_code=599)))
    with pytest.raises(ApplicationError) as caught:
        run(getattr(acts, call), arg)
    assert caught.value.type == kind.__name__
    assert caught.value.non_retryable is not retryable
    assert "carrier: it went wrong" in caught.value.message


def _carrier(handler) -> RestLogisticsProvider:
    return RestLogisticsProvider("http://carrier.test", transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(("response", "error_type", "retryable"), [
    (httpx.Response(404, json={"error": "unknown tracking number"}), "NotFound", False),
    (httpx.Response(503, json={"error": "maintenance"}), "Unavailable", True),
    (httpx.Response(401, json={"error": "bad key"}), "Unauthorized", False),
    (httpx.Response(200, text='{"tracking_number": "T-1", "carr'), "MalformedResponse", True),
    (httpx.Response(200, json={"tracking_number": "T-1"}), "MalformedResponse", True),
])
def test_http_answers_become_typed_application_errors(response, error_type, retryable):
    acts = SystemActivities(logistics=_carrier(lambda request: response))
    with pytest.raises(ApplicationError) as caught:
        run(acts.track_shipment, ShipmentLookup(tracking_number="T-1"))
    assert (caught.value.type, caught.value.non_retryable) == (error_type, not retryable)


def test_find_shipments_returns_the_parcels_under_the_reference_and_none_is_no_error():
    def answer(request):
        parcels = [{"tracking_number": "T-1", "carrier": "Test Express", "status": "DELIVERED"}]
        return httpx.Response(200, json={"shipments": parcels if request.url.params["reference"] == "O-1" else []})

    acts = SystemActivities(logistics=_carrier(answer))
    [parcel] = run(acts.find_shipments, ShipmentsLookup(reference="O-1")).shipments
    assert parcel.tracking_number == "T-1"
    assert run(acts.find_shipments, ShipmentsLookup(reference="O-2")).shipments == []


def test_a_transport_failure_is_retryable_unavailable():
    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    acts = SystemActivities(tickets=RestTicketSystem("http://helpdesk.test", transport=httpx.MockTransport(refuse)))
    with pytest.raises(ApplicationError) as caught:
        run(acts.find_external_tickets, ExternalTicketsLookup(customer_id="C-1"))
    assert caught.value.type == "Unavailable" and not caught.value.non_retryable


REFUND = RefundRequest(ticket_id="TK-1", customer_id="C-1", order_id="O-new", amount=Decimal("5"), reason="late",
                       idempotency_key="TK-1:t1:refund", decided_by="ana", department="logistics")
CALLS = {
    "lookup_orders": (OrdersLookup(customer_id="C-1"), "TICKETFLOW_ORDERS_URL"),
    "track_shipment": (ShipmentLookup(tracking_number="T-1"), "TICKETFLOW_LOGISTICS_URL"),
    "find_shipments": (ShipmentsLookup(reference="O-1"), "TICKETFLOW_LOGISTICS_URL"),
    "create_return_label": (ReturnLabelRequest(ticket_id="TK-1", order_id="O-1", skus=["S-1"], idempotency_key="k"),
                            "TICKETFLOW_LOGISTICS_URL"),
    "find_external_tickets": (ExternalTicketsLookup(customer_id="C-1"), "TICKETFLOW_HELPDESK_URL"),
    "create_refund": (REFUND, "TICKETFLOW_ORDERS_URL"),
    "get_refund": (RefundLookup(refund_id="R-1"), "TICKETFLOW_ORDERS_URL"),
    "mirror_ticket": (MirrorRequest(ticket_id="TK-1", customer_id="C-1", subject="Late"), "TICKETFLOW_HELPDESK_URL"),
    "send_chat_reply": (OutboundReply(ticket_id="TK-1", conversation_id="conv-1", text="Hi", idempotency_key="k"),
                        "TICKETFLOW_MESSAGING_URL"),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_an_unconfigured_system_is_a_permanent_not_configured_that_names_the_setting(name, authorizer):
    acts = SystemActivities(authorizer=authorizer)
    arg, setting = CALLS[name]
    with pytest.raises(ApplicationError) as caught:
        run(getattr(acts, name), arg)
    assert caught.value.type == "NotConfigured" and caught.value.non_retryable
    assert caught.value.category is ApplicationErrorCategory.BENIGN  # logged at debug, not as a warning
    assert setting in caught.value.message


def test_every_activity_is_registered_under_its_documented_name():
    names = [fn.__temporal_activity_definition.name for fn in SystemActivities().activities()]
    assert sorted(names) == sorted(CALLS)


def test_lookup_orders_returns_the_customer_and_their_orders_newest_first(fake_erp):
    result = run(SystemActivities(orders=fake_erp).lookup_orders, OrdersLookup(customer_id="C-1", order_id="O-old"))
    assert result.customer is not None and result.customer.id == "C-1" and result.customer.name == "Ana Test"
    assert result.customer.email == ""  # results are stored in history: no contact details
    assert [o.id for o in result.orders] == ["O-new", "O-old"]
    assert result.unknown_order_id is None


def test_an_order_of_another_customer_is_flagged_and_not_shown(fake_erp):
    result = run(SystemActivities(orders=fake_erp).lookup_orders, OrdersLookup(customer_id="C-1", order_id="O-other"))
    assert result.unknown_order_id == "O-other"
    assert "O-other" not in [o.id for o in result.orders]


def test_a_customer_the_erp_does_not_know_is_an_empty_answer_not_an_error(fake_erp):
    result = run(SystemActivities(orders=fake_erp).lookup_orders, OrdersLookup(customer_id="C-404", order_id="O-1"))
    assert result.customer is None and result.orders == [] and result.unknown_order_id == "O-1"


def test_settings_decide_which_systems_exist():
    only_erp = build_system_activities(Settings(_env_file=None, orders_url="http://127.0.0.1:1/"))
    try:
        assert isinstance(only_erp.orders, OrderSystem)
        assert (only_erp.logistics, only_erp.tickets, only_erp.messaging) == (None, None, None)
    finally:
        only_erp.close()

    everything = build_system_activities(Settings(
        _env_file=None, orders_url="http://127.0.0.1:1/", orders_username="u", orders_password=SecretStr("p"),
        logistics_url="http://127.0.0.1:2", logistics_api_key=SecretStr("k"), helpdesk_url="http://127.0.0.1:3",
        messaging_url="http://127.0.0.1:4", connector_timeout=0.5,
    ))
    try:
        assert isinstance(everything.logistics, LogisticsProvider)
        assert isinstance(everything.tickets, TicketSystem)
        assert isinstance(everything.messaging, MessagingChannel)
        # Nothing listens on port 2: the configured timeout and no retries make this quick.
        with pytest.raises(ApplicationError) as caught:
            run(everything.track_shipment, ShipmentLookup(tracking_number="T-1"))
        assert caught.value.type == "Unavailable"
    finally:
        everything.close()


def test_an_unknown_connector_name_in_settings_fails_at_start_up():
    with pytest.raises(ValueError, match="no logistics connector named 'pigeon'"):
        build_system_activities(Settings(_env_file=None, logistics_system="pigeon", logistics_url="http://x"))
