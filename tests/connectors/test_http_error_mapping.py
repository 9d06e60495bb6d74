"""Unit tests of the REST connectors' error mapping, one ``httpx.MockTransport`` each."""

import httpx
import pytest

from connectors.carrier_rest import RestLogisticsProvider
from connectors.errors import (
    Conflict,
    InvalidRequest,
    MalformedResponse,
    NotFound,
    Timeout,
    Unauthorized,
    Unavailable,
)
from models.customer360 import ShipmentStatus

TRACKING = {
    "tracking_number": "SBX1", "carrier": "Sandbox Express", "status": "IN_TRANSIT",
    "promised_delivery_date": "2026-03-01T18:00:00+00:00", "estimated_delivery": "2026-03-03T18:00:00+00:00",
    "delivered_at": None, "delay_hours": 48.0,
    "checkpoints": [{"timestamp": "2026-02-27T08:00:00+00:00", "location": "Leipzig hub",
                     "description": "Arrived at sorting facility", "status": "IN_TRANSIT"}],
}


def carrier(handler) -> RestLogisticsProvider:
    return RestLogisticsProvider("http://carrier.test", api_key="k", timeout=1, transport=httpx.MockTransport(handler))


# The same error mapping whichever way a parcel is asked for.
LOOKUPS = pytest.mark.parametrize("lookup", [
    pytest.param(lambda client: client.track_shipment("SBX1"), id="by-tracking-number"),
    pytest.param(lambda client: client.find_shipments("ORD-1"), id="by-reference"),
])


@LOOKUPS
@pytest.mark.parametrize(("status", "error", "retryable"), [
    (400, InvalidRequest, False),
    (401, Unauthorized, False),
    (403, Unauthorized, False),
    (404, NotFound, False),
    (408, Timeout, True),
    (409, Conflict, False),
    (422, InvalidRequest, False),
    (429, Unavailable, True),
    (500, Unavailable, True),
    (502, Unavailable, True),
    (503, Unavailable, True),
    (302, MalformedResponse, True),
])
def test_status_codes(status, error, retryable, lookup):
    client = carrier(lambda request: httpx.Response(status, json={"detail": "nope"}))
    with pytest.raises(error) as caught:
        lookup(client)
    assert type(caught.value) is error
    assert (caught.value.retryable, caught.value.status_code, caught.value.system) == (retryable, status, "carrier")
    assert "nope" in str(caught.value)


@LOOKUPS
@pytest.mark.parametrize(("raised", "error"), [
    (httpx.ConnectError("refused"), Unavailable),
    (httpx.RemoteProtocolError("peer closed"), Unavailable),
    (httpx.ReadTimeout("slow"), Timeout),
    (httpx.ConnectTimeout("slow"), Timeout),
])
def test_transport_failures(raised, error, lookup):
    def handler(request):
        raise raised

    with pytest.raises(error) as caught:
        lookup(carrier(handler))
    assert caught.value.retryable


@LOOKUPS
@pytest.mark.parametrize("body", [b'{"tracking_number": "SBX1", "carr', b"<html>Bad gateway</html>", b""])
def test_unparseable_success_is_malformed(body, lookup):
    with pytest.raises(MalformedResponse):
        lookup(carrier(lambda request: httpx.Response(200, content=body)))


@pytest.mark.parametrize("broken", [
    {"status": None},
    {"checkpoints": [{"timestamp": "yesterday"}]},
    {"promised_delivery_date": "2026-03-01T18:00:00"},  # no timezone: which 18:00?
])
def test_schema_mismatch_is_malformed(broken):
    client = carrier(lambda request: httpx.Response(200, json={**TRACKING, **broken}))
    with pytest.raises(MalformedResponse, match="does not match"):
        client.track_shipment("SBX1")


def test_request_carries_key_and_escaped_path_and_maps_statuses():
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json={**TRACKING, "status": "RETURNED_TO_SENDER"})

    shipment = carrier(handler).track_shipment("SBX 1/2")
    assert seen[0].headers["authorization"] == "Bearer k"
    assert seen[0].url.raw_path == b"/shipments/SBX%201%2F2"
    assert shipment.status is ShipmentStatus.unknown  # a new carrier status must not break tracking
    assert shipment.delay_days == 2 and shipment.is_delayed


def test_reference_lookup_sends_the_reference_as_one_query_value_and_maps_each_parcel():
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json={"shipments": [TRACKING, {**TRACKING, "tracking_number": "SBX2",
                                                                  "status": "DELIVERED", "delay_hours": 0}]})

    found = carrier(handler).find_shipments("ORD 1&x=2")
    assert seen[0].headers["authorization"] == "Bearer k"
    assert (seen[0].url.path, dict(seen[0].url.params)) == ("/shipments", {"reference": "ORD 1&x=2"})
    assert [(s.tracking_number, s.status, s.delay_days) for s in found] == [
        ("SBX1", ShipmentStatus.in_transit, 2), ("SBX2", ShipmentStatus.delivered, 0)]


def test_no_parcel_under_the_reference_is_an_empty_list_not_an_error():
    assert carrier(lambda request: httpx.Response(200, json={"shipments": []})).find_shipments("ORD-1") == []


@pytest.mark.parametrize("body", [
    {"shipments": [{**TRACKING, "status": None}]},
    {"shipments": None},
    [TRACKING],  # a bare list instead of the envelope
    TRACKING,  # one parcel instead of the list
])
def test_a_reference_answer_of_the_wrong_shape_is_malformed(body):
    with pytest.raises(MalformedResponse, match="does not match"):
        carrier(lambda request: httpx.Response(200, json=body)).find_shipments("ORD-1")


def test_an_empty_reference_is_refused_before_calling():
    def handler(request):
        raise AssertionError("no request expected")

    with pytest.raises(InvalidRequest):
        carrier(handler).find_shipments("")
