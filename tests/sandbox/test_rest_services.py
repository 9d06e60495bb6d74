from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from connectors.signing import SIGNATURE_HEADER, verify_signature
from models.customer360 import InboundChatMessage
from sandbox.data import (
    DEMO_CUSTOMER_DELAYED,
    DEMO_CUSTOMER_LOST,
    DEMO_ORDER_DELAYED,
    DEMO_ORDER_PROCESSING,
    DEMO_TRACKING_DELAYED,
    DEMO_TRACKING_DELIVERED,
    DEMO_TRACKING_LOST,
)
from sandbox.run import serve_in_thread


@pytest.fixture
def api(sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(headers={"Authorization": f"Bearer {sandbox.api_key}"}, timeout=5) as client:
        yield client


# --- carrier -------------------------------------------------------------------------------


def test_carrier_reports_a_delayed_parcel(sandbox, api):
    body = api.get(f"{sandbox.urls['carrier']}/shipments/{DEMO_TRACKING_DELAYED}").json()
    assert body["status"] == "IN_TRANSIT"
    assert body["estimated_delivery"] > body["promised_delivery_date"]
    assert body["delay_hours"] == 96.0
    assert any(c["status"] == "EXCEPTION" for c in body["checkpoints"])


def test_carrier_reports_lost_and_delivered_parcels(sandbox, api):
    lost = api.get(f"{sandbox.urls['carrier']}/shipments/{DEMO_TRACKING_LOST}").json()
    assert (lost["status"], lost["estimated_delivery"]) == ("LOST", None)
    delivered = api.get(f"{sandbox.urls['carrier']}/shipments/{DEMO_TRACKING_DELIVERED}").json()
    assert delivered["status"] == "DELIVERED" and delivered["delivered_at"] and delivered["delay_hours"] == 0


def test_carrier_unknown_parcel_and_missing_key(sandbox, api):
    assert api.get(f"{sandbox.urls['carrier']}/shipments/SBX0").status_code == 404
    assert httpx.get(f"{sandbox.urls['carrier']}/shipments/{DEMO_TRACKING_LOST}").status_code == 401


def test_carrier_finds_parcels_by_the_shippers_reference(sandbox, api):
    url = f"{sandbox.urls['carrier']}/shipments"
    found = api.get(url, params={"reference": DEMO_ORDER_DELAYED})
    assert found.status_code == 200
    [parcel] = found.json()["shipments"]
    assert parcel == api.get(f"{url}/{DEMO_TRACKING_DELAYED}").json()
    assert (parcel["tracking_number"], parcel["reference"]) == (DEMO_TRACKING_DELAYED, DEMO_ORDER_DELAYED)


def test_carrier_reference_nobody_shipped_under_is_an_empty_list(sandbox, api):
    url = f"{sandbox.urls['carrier']}/shipments"
    for reference in (DEMO_ORDER_PROCESSING, "ORD-10", DEMO_ORDER_DELAYED.lower()):  # exact matches only
        answer = api.get(url, params={"reference": reference})
        assert (answer.status_code, answer.json()) == (200, {"shipments": []})
    assert api.get(url).status_code == 422  # the reference is required
    assert httpx.get(url, params={"reference": DEMO_ORDER_DELAYED}).status_code == 401


# --- helpdesk ------------------------------------------------------------------------------


def test_helpdesk_finds_historic_tickets_by_customer(sandbox, api):
    tickets = api.get(f"{sandbox.urls['helpdesk']}/api/v2/tickets", params={"requester_id": DEMO_CUSTOMER_LOST}).json()
    assert [t["status"] for t in tickets["tickets"]] == ["open"]
    assert tickets["tickets"][0]["requester_id"] == DEMO_CUSTOMER_LOST


def test_helpdesk_creates_one_ticket_per_external_ref(sandbox, api):
    url = f"{sandbox.urls['helpdesk']}/api/v2/tickets"
    new = {"ticket": {"requester_id": DEMO_CUSTOMER_DELAYED, "subject": "Late parcel", "external_ref": "ticketflow:42"}}
    first, again = api.post(url, json=new), api.post(url, json=new)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["ticket"]["id"] == first.json()["ticket"]["id"]
    found = api.get(url, params={"requester_id": DEMO_CUSTOMER_DELAYED}).json()["tickets"]
    assert [t["external_ref"] for t in found].count("ticketflow:42") == 1


def test_helpdesk_comment_is_idempotent_by_key(sandbox, api):
    ticket = api.get(f"{sandbox.urls['helpdesk']}/api/v2/tickets", params={"requester_id": DEMO_CUSTOMER_LOST}).json()
    url = f"{sandbox.urls['helpdesk']}/api/v2/tickets/{ticket['tickets'][0]['id']}"
    comment = {"comment": {"body": "Refund issued."}}
    first = api.post(url + "/comments", json=comment, headers={"Idempotency-Key": "c-1"})
    again = api.post(url + "/comments", json=comment, headers={"Idempotency-Key": "c-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert len(api.get(url).json()["ticket"]["comments"]) == 1
    other = api.post(url + "/comments", json={"comment": {"body": "Different"}}, headers={"Idempotency-Key": "c-1"})
    assert other.status_code == 409
    assert api.post(url + "/comments", json=comment).status_code == 422  # no key


# --- messaging -----------------------------------------------------------------------------


def test_outbound_reply_is_recorded_once_per_key(sandbox, api):
    url = sandbox.urls["messaging"]
    reply = {"conversation_id": "conv-9", "text": "Your refund is on its way."}
    first = api.post(f"{url}/v1/messages", json=reply, headers={"Idempotency-Key": "r-1"})
    again = api.post(f"{url}/v1/messages", json=reply, headers={"Idempotency-Key": "r-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    messages = api.get(f"{url}/v1/conversations/conv-9/messages").json()["messages"]
    assert [m["text"] for m in messages] == [reply["text"]]
    conflict = api.post(f"{url}/v1/messages", json={**reply, "text": "other"}, headers={"Idempotency-Key": "r-1"})
    assert conflict.status_code == 409


@pytest.fixture
def webhook_receiver():
    """A stand-in for ticketflow's inbound webhook that keeps what it verified."""
    received: list[tuple[bool, InboundChatMessage]] = []
    app = FastAPI()

    @app.post("/webhooks/chat")
    async def inbound(request: Request) -> Response:
        raw = await request.body()
        valid = verify_signature("hook-secret", raw, request.headers.get(SIGNATURE_HEADER))
        received.append((valid, InboundChatMessage.model_validate_json(raw)))
        return Response(status_code=204 if valid else 401)

    server = serve_in_thread(app, name="webhook-receiver")
    yield f"{server.url}/webhooks/chat", received
    server.stop()


def test_simulated_inbound_message_arrives_signed(sandbox, webhook_receiver):
    target, received = webhook_receiver
    admin = httpx.Client(base_url=sandbox.urls["messaging"], timeout=5)
    admin.post("/_admin/webhook", json={"url": target, "secret": "hook-secret"}).raise_for_status()
    result = admin.post("/simulate/inbound", json={
        "conversation_id": "conv-1", "customer_id": DEMO_CUSTOMER_DELAYED, "text": "Where is my parcel?"}).json()
    assert (result["delivered"], result["status_code"]) == (True, 204)
    [(valid, message)] = received
    assert valid and message.customer_id == DEMO_CUSTOMER_DELAYED and message.text == "Where is my parcel?"
    assert message.message_id == result["message"]["message_id"]

    admin.post("/_admin/webhook", json={"url": target, "secret": "not-the-shared-secret"}).raise_for_status()
    refused = admin.post("/simulate/inbound", json={"conversation_id": "c", "customer_id": "C", "text": "hi"}).json()
    assert (refused["delivered"], refused["status_code"]) == (False, 401)
    admin.close()


def test_simulated_inbound_only_goes_to_loopback_targets(sandbox, unused_port):
    url = sandbox.urls["messaging"] + "/simulate/inbound"
    message = {"conversation_id": "c", "customer_id": "C", "text": "hi"}
    assert httpx.post(url, json=message).status_code == 400  # no webhook configured
    assert httpx.post(url, json={**message, "target_url": "http://192.0.2.1/hook"}).status_code == 400
    down = httpx.post(url, json={**message, "target_url": f"http://127.0.0.1:{unused_port}/hook"})
    assert down.status_code == 502
