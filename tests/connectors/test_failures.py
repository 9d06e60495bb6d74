"""What every connector does when its system misbehaves, against the real sandbox."""

import time

import pytest

from connectors.errors import MalformedResponse, Timeout, Unauthorized, Unavailable
from sandbox.data import DEMO_CUSTOMER_DELAYED, DEMO_ORDER_DELAYED, DEMO_TRACKING_DELAYED

CALLS = {
    "erp": lambda c: c.get_order(DEMO_ORDER_DELAYED),
    "carrier": lambda c: c.track_shipment(DEMO_TRACKING_DELAYED),
    "helpdesk": lambda c: c.find_tickets(DEMO_CUSTOMER_DELAYED),
    "messaging": lambda c: c.send_reply("conv-1", "hello", "reply-key-1"),
}
services = pytest.mark.parametrize("service", list(CALLS))


@services
def test_errors_that_heal_are_retryable_and_nothing_retries_behind_our_back(service, connector, sandbox):
    client = connector(service)
    sandbox.set_faults(service, fail_next=1)
    with pytest.raises(Unavailable) as caught:
        CALLS[service](client)
    assert caught.value.retryable
    assert CALLS[service](client) is not None
    assert sandbox.fault_status(service)["requests_seen"] == 2


@services
def test_a_hanging_system_is_a_timeout_within_the_client_timeout(service, connector, sandbox):
    client = connector(service, timeout_seconds=0.5)
    sandbox.set_faults(service, timeout_rate=1, timeout_seconds=30)
    started = time.monotonic()
    with pytest.raises(Timeout) as caught:
        CALLS[service](client)
    assert caught.value.retryable
    assert time.monotonic() - started < 0.5 + 1.5


@services
def test_a_truncated_answer_is_malformed(service, connector, sandbox):
    sandbox.set_faults(service, malformed_rate=1)
    with pytest.raises(MalformedResponse) as caught:
        CALLS[service](connector(service))
    assert caught.value.retryable


@services
def test_a_system_that_is_down_is_unavailable(service, connector, unused_port):
    client = connector(service, base_url=f"http://127.0.0.1:{unused_port}")
    with pytest.raises(Unavailable) as caught:
        CALLS[service](client)
    assert caught.value.retryable


@services
def test_wrong_credentials_are_not_retried(service, connector):
    client = connector(service, **({"password": "wrong"} if service == "erp" else {"api_key": "wrong"}))
    with pytest.raises(Unauthorized) as caught:
        CALLS[service](client)
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
