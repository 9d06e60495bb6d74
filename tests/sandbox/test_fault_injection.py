import json
import threading
import time

import httpx
import pytest
from lxml import etree

from sandbox.data import DEMO_CUSTOMER_DELAYED, DEMO_ORDER_DELAYED, DEMO_TRACKING_DELAYED


@pytest.fixture
def carrier(sandbox):
    with httpx.Client(base_url=sandbox.urls["carrier"], timeout=5,
                      headers={"Authorization": f"Bearer {sandbox.api_key}"}) as client:
        yield client


TRACK = f"/shipments/{DEMO_TRACKING_DELAYED}"


def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_fail_next_fails_exactly_n_requests_then_heals(sandbox, carrier):
    sandbox.set_faults("carrier", fail_next=2)
    assert [carrier.get(TRACK).status_code for _ in range(3)] == [500, 500, 200]
    status = sandbox.fault_status("carrier")
    assert (status["requests_seen"], status["faults_injected"], status["faults"]["fail_next"]) == (3, 2, 0)


def test_faults_apply_to_the_reference_lookup_too(sandbox, carrier):
    by_reference = f"/shipments?reference={DEMO_ORDER_DELAYED}"
    sandbox.set_faults("carrier", fail_next=1, status_code=503)
    assert [carrier.get(by_reference).status_code for _ in range(2)] == [503, 200]
    sandbox.set_faults("carrier", malformed_rate=1)
    with pytest.raises(json.JSONDecodeError):
        json.loads(carrier.get(by_reference).content)


def test_injected_errors_use_the_configured_status(sandbox, carrier):
    sandbox.set_faults("carrier", error_rate=1, status_code=503)
    assert carrier.get(TRACK).status_code == 503
    assert carrier.get("/_admin/faults").status_code == 200  # the admin surface is never faulted


def test_error_rate_fails_some_requests(sandbox, carrier):
    sandbox.set_faults("carrier", error_rate=0.5)
    codes = {carrier.get(TRACK).status_code for _ in range(30)}
    assert codes == {200, 500}


def test_malformed_answers_200_with_a_truncated_body(sandbox, carrier):
    sandbox.set_faults("carrier", malformed_rate=1)
    response = carrier.get(TRACK)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


def test_erp_faults_look_like_soap(sandbox):
    auth = (sandbox.erp_username, sandbox.erp_password)
    sandbox.set_faults("erp", fail_next=1)
    failed = httpx.post(sandbox.urls["erp"] + "/", content=b"<x/>", auth=auth)
    assert failed.status_code == 500
    assert etree.fromstring(failed.content).findtext(".//faultcode") == "soap11env:Server.Unavailable"
    sandbox.set_faults("erp", malformed_rate=1)
    truncated = httpx.get(sandbox.urls["erp"] + "/?wsdl")
    assert truncated.status_code == 200
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(truncated.content)


def test_latency_is_added_to_every_request(sandbox, carrier):
    sandbox.set_faults("carrier", latency_ms=300)
    started = time.monotonic()
    assert carrier.get(TRACK).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_timeout_holds_the_request_past_the_client_timeout(sandbox, carrier):
    sandbox.set_faults("carrier", timeout_rate=1, timeout_seconds=30)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        carrier.get(TRACK, timeout=0.5)
    assert time.monotonic() - started < 5


def test_reset_ends_held_requests_without_touching_data(sandbox):
    sandbox.set_faults("messaging", timeout_rate=1, timeout_seconds=60)
    outcome = {}

    def send_reply():
        outcome["response"] = httpx.post(
            sandbox.urls["messaging"] + "/v1/messages", json={"conversation_id": "held", "text": "hi"},
            headers={"Authorization": f"Bearer {sandbox.api_key}", "Idempotency-Key": "held-1"}, timeout=30)

    sender = threading.Thread(target=send_reply)
    sender.start()
    wait_until(lambda: sandbox.fault_status("messaging")["requests_seen"] == 1)
    sandbox.reset("messaging")
    sender.join(10)
    assert outcome["response"].status_code == 503
    messages = httpx.get(sandbox.urls["messaging"] + "/v1/conversations/held/messages",
                         headers={"Authorization": f"Bearer {sandbox.api_key}"}).json()["messages"]
    assert messages == []


def test_reset_restores_seeded_data_and_clears_faults(sandbox):
    headers = {"Authorization": f"Bearer {sandbox.api_key}"}
    tickets = sandbox.urls["helpdesk"] + "/api/v2/tickets"
    params = {"requester_id": DEMO_CUSTOMER_DELAYED}
    seeded = httpx.get(tickets, params=params, headers=headers).json()["count"]
    httpx.post(tickets, headers=headers, json={"ticket": {"requester_id": DEMO_CUSTOMER_DELAYED, "subject": "x"}})
    sandbox.set_faults("helpdesk", error_rate=1)
    sandbox.reset("helpdesk")
    assert httpx.get(tickets, params=params, headers=headers).json()["count"] == seeded
    assert sandbox.fault_status("helpdesk")["faults"]["error_rate"] == 0


@pytest.mark.parametrize("faults", [
    {"error_rate": 0.6, "timeout_rate": 0.6},
    {"error_rate": 2},
    {"fail_next": -1},
    {"explode": True},
])
def test_impossible_fault_settings_are_refused(sandbox, faults):
    response = httpx.post(sandbox.urls["carrier"] + "/_admin/faults", json=faults)
    assert response.status_code == 422
