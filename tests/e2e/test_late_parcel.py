"""The scenario ticketflow exists for, end to end over real sockets: a customer writes in
the chat that their delivery is late; the ticket gathers the order (SOAP ERP), the delayed
shipment (carrier) and earlier tickets (helpdesk); it lands in the logistics queue with all
of that on the task; the agent's reply goes out through the messaging platform, and the
refund the agent decides is created exactly once in the ERP."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from api.main import create_app
from connectors.erp_soap import SoapOrderSystem
from connectors.signing import SIGNATURE_HEADER, sign
from harness import eventually
from sandbox.testing import running_sandbox, sandbox  # noqa: F401 (fixtures)
from settings import Settings
from worker import build_worker

CUSTOMER, ORDER = "CUST-0001", "ORD-1001"


def chat_payload(conversation: str, message_id: str, text: str) -> bytes:
    return json.dumps({"channel": "chat", "conversation_id": conversation, "customer_id": CUSTOMER,
                       "message_id": message_id, "text": text,
                       "sent_at": datetime.now(UTC).isoformat()}).encode()


@pytest.mark.slow
async def test_late_parcel_from_chat_to_refund(dev_env, db, tokens, task_queue, sandbox):  # noqa: F811
    conversation = f"conv-{uuid.uuid4().hex}"  # one Temporal server serves both database runs
    settings = Settings(
        database_url=db.url, task_queue=task_queue, faq_enabled=False,
        **sandbox.connector_settings(),
    )
    app = create_app(settings, db=db, temporal=dev_env.client)
    ana = {"Authorization": f"Bearer {tokens['ana']}"}
    secret = sandbox.webhook_secret

    with ThreadPoolExecutor(max_workers=settings.activity_threads) as executor:
        async with build_worker(dev_env.client, settings, db, executor):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
                first = chat_payload(conversation, "m-1", f"Hi, my delivery for {ORDER} is late. Where is it?")
                r = await http.post("/webhooks/chat", content=first, headers={SIGNATURE_HEADER: sign(secret, first)})
                assert r.status_code == 202 and r.json()["action"] == "opened", r.text
                ticket_id = r.json()["ticket_id"]

                # the platform delivers the same webhook again: same ticket, nothing new
                again = await http.post("/webhooks/chat", content=first, headers={SIGNATURE_HEADER: sign(secret, first)})
                assert again.json()["ticket_id"] == ticket_id
                forged = await http.post("/webhooks/chat", content=first, headers={SIGNATURE_HEADER: sign("wrong", first)})
                assert forged.status_code == 401

                async def logistics_task():
                    items = (await http.get("/tasks", params={"queue": "logistics", "limit": 200},
                                            headers=ana)).json()["items"]
                    return next((t for t in items if t["ticket_id"] == ticket_id), None)

                task = await eventually(logistics_task, timeout=60)
                picture = task["context"]["customer360"]
                assert ORDER in [o["id"] for o in picture["orders"]]
                late = [s for s in picture["shipments"] if s["is_delayed"]]
                assert late and late[0]["events"], "the delayed shipment and its tracking events are on the task"
                assert picture["external_tickets"], "earlier helpdesk tickets are on the task"
                assert picture["gaps"] == []

                follow_up = chat_payload(conversation, "m-2", "Any news? I need it for the weekend.")
                r = await http.post("/webhooks/chat", content=follow_up,
                                    headers={SIGNATURE_HEADER: sign(secret, follow_up)})
                assert r.json() == {"ticket_id": ticket_id, "action": "appended"}

                assert (await http.post(f"/tasks/{task['id']}/claim", headers=ana)).status_code == 200
                reply = "Sorry for the wait: the carrier delivers tomorrow. We refunded the shipping cost."
                r = await http.post(f"/tasks/{task['id']}/complete", headers=ana, json={
                    "outcome": "resolve", "reply": reply, "refund": {"amount": "4.99", "reason": "late delivery"}})
                assert r.status_code == 200, r.text

                async def resolved():
                    t = (await http.get(f"/tickets/{ticket_id}", headers=ana)).json()
                    return t if t["status"] == "resolved" else None

                ticket = await eventually(resolved, timeout=60)

    kinds = [e["kind"] for e in ticket["timeline"]]
    assert "triaged" in kinds and "refund_created" in kinds and "reply_sent" in kinds
    incoming = [c["text"] for c in ticket["conversation"] if c["direction"] == "in"]
    assert len(incoming) == 2 and incoming[-1].startswith("Any news")  # the redelivery added nothing

    # the reply went out through the messaging platform, once
    async with httpx.AsyncClient(base_url=sandbox.urls["messaging"],
                                 headers={"Authorization": f"Bearer {sandbox.api_key}"}) as chat:
        sent = (await chat.get(f"/v1/conversations/{conversation}/messages")).json()["messages"]
    assert [m["text"] for m in sent] == [reply]

    # and the ERP holds exactly one refund for the order
    erp = SoapOrderSystem(sandbox.urls["erp"] + "/", timeout=10, username=sandbox.erp_username,
                          password=sandbox.erp_password)
    try:
        assert erp.get_order(ORDER).refunded_total == Decimal("4.99")
    finally:
        erp.close()
