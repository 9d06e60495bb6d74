"""What every connector does when its system misbehaves, against the real sandbox."""

import time

import pytest

from connectors.errors import MalformedResponse, Timeout, Unauthorized, Unavailable
from sandbox.data import DEMO_CUSTOMER_DELAYED, DEMO_ORDER_DELAYED, DEMO_TRACKING_DELAYED

CALLS = {  # a call per endpoint, named "<service>" or "<service>:<what>"
    "erp": lambda c: c.get_order(DEMO_ORDER_DELAYED),
    "carrier": lambda c: c.track_shipment(DEMO_TRACKING_DELAYED),
    "carrier:by-reference": lambda c: c.find_shipments(DEMO_ORDER_DELAYED),
    "helpdesk": lambda c: c.find_tickets(DEMO_CUSTOMER_DELAYED),
    "messaging": lambda c: c.send_reply("conv-1", "hello", "reply-key-1"),
}
calls = pytest.mark.parametrize("call", list(CALLS))


def service_of(call: str) -> str:
    return call.partition(":")[0]


@calls
def test_errors_that_heal_are_retryable_and_nothing_retries_behind_our_back(call, connector, sandbox):
    service = service_of(call)
    client = connector(service)
    sandbox.set_faults(service, fail_next=1)
    with pytest.raises(Unavailable) as caught:
        CALLS[call](client)
    assert caught.value.retryable
    assert CALLS[call](client) is not None
    assert sandbox.fault_status(service)["requests_seen"] == 2


@calls
def test_a_hanging_system_is_a_timeout_within_the_client_timeout(call, connector, sandbox):
    service = service_of(call)
    client = connector(service, timeout_seconds=0.5)
    sandbox.set_faults(service, timeout_rate=1, timeout_seconds=30)
    started = time.monotonic()
    with pytest.raises(Timeout) as caught:
        CALLS[call](client)
    assert caught.value.retryable
    assert time.monotonic() - started < 0.5 + 1.5


@calls
def test_a_truncated_answer_is_malformed(call, connector, sandbox):
    service = service_of(call)
    sandbox.set_faults(service, malformed_rate=1)
    with pytest.raises(MalformedResponse) as caught:
        CALLS[call](connector(service))
    assert caught.value.retryable


@calls
def test_a_system_that_is_down_is_unavailable(call, connector, unused_port):
    service = service_of(call)
    client = connector(service, base_url=f"http://127.0.0.1:{unused_port}")
    with pytest.raises(Unavailable) as caught:
        CALLS[call](client)
    assert caught.value.retryable


@calls
def test_wrong_credentials_are_not_retried(call, connector):
    service = service_of(call)
    client = connector(service, **({"password": "wrong"} if service == "erp" else {"api_key": "wrong"}))
    with pytest.raises(Unauthorized) as caught:
        CALLS[call](client)
    assert not caught.value.retryable


def test_a_stopped_service_is_unavailable(connector, sandbox):
    from sandbox.carrier import create_app
    from sandbox.data import build_demo_data
    from sandbox.run import serve_in_thread

    server = serve_in_thread(create_app(build_demo_data), name="carrier-to-stop")
    client = connector("carrier", base_url=server.url)
    assert client.track_shipment(DEMO_TRACKING_DELAYED).is_delayed
    server.stop()
    with pytest.raises(Unavailable):
        client.track_shipment(DEMO_TRACKING_DELAYED)
