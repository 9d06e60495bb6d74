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
def test_status_codes(status, error, retryable):
    client = carrier(lambda request: httpx.Response(status, json={"detail": "nope"}))
    with pytest.raises(error) as caught:
        client.track_shipment("SBX1")
    assert type(caught.value) is error
    assert (caught.value.retryable, caught.value.status_code, caught.value.system) == (retryable, status, "carrier")
    assert "nope" in str(caught.value)


@pytest.mark.parametrize(("raised", "error"), [
    (httpx.ConnectError("refused"), Unavailable),
    (httpx.RemoteProtocolError("peer closed"), Unavailable),
    (httpx.ReadTimeout("slow"), Timeout),
    (httpx.ConnectTimeout("slow"), Timeout),
])
def test_transport_failures(raised, error):
    def handler(request):
        raise raised

    with pytest.raises(error) as caught:
        carrier(handler).track_shipment("SBX1")
    assert caught.value.retryable


@pytest.mark.parametrize("body", [b'{"tracking_number": "SBX1", "carr', b"<html>Bad gateway</html>", b""])
def test_unparseable_success_is_malformed(body):
    with pytest.raises(MalformedResponse):
        carrier(lambda request: httpx.Response(200, content=body)).track_shipment("SBX1")


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
