"""A templated FAQ answer end to end over real sockets: a customer asks in the chat where
their parcel is; the ticket gathers the order (SOAP ERP) and the parcel (carrier REST) from
the sandbox; the FAQ worker (real embedding model, demo knowledge base) renders the
"track-parcel" answer with the parcel's real status, and the messaging platform carries it.
When the carrier cannot be reached the bot says nothing and an agent gets the suggestion."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest

import faq.knowledge_base as kb
from activities.faq import build_faq_worker
from api.main import create_app
from connectors.signing import SIGNATURE_HEADER, sign
from harness import eventually
from models.db import Database
from models.customer360 import Customer360
from sandbox.data import (
    DEMO_CUSTOMER_DELAYED,
    DEMO_CUSTOMER_WITHOUT_ORDERS,
    DEMO_ORDER_DELAYED,
    DEMO_TRACKING_DELAYED,
)
from settings import Settings
from tests.faq.knowledge_base_helpers import reset_knowledge_base
from worker import build_worker

pytestmark = pytest.mark.slow  # a Temporal dev server, the sandbox and the embedding model

# The demo knowledge base matches this to "track-parcel" well above its threshold. It names
# no order: the answer speaks of the customer's newest one, the delayed ORD-1001.
QUESTION = "Where is my package right now?"


@pytest.fixture
async def stack(dev_env, db: Database, tokens, task_queue, sandbox):
    reset_knowledge_base(db)
    kb.seed_demo_kb(db)
    settings = Settings(
        database_url=db.url, task_queue=task_queue, faq_task_queue=f"faq-{task_queue}",
        **sandbox.connector_settings(),
    )
    app = create_app(settings, db=db, temporal=dev_env.client)
    with ThreadPoolExecutor(max_workers=settings.activity_threads) as executor:
        async with (
            build_worker(dev_env.client, settings, db, executor),
            build_faq_worker(dev_env.client, settings, db, executor),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
        ):
            async def ask(text: str, customer: str = DEMO_CUSTOMER_DELAYED) -> tuple[str, str]:
                """The customer writes `text` in a new chat: (ticket id, conversation id)."""
                conversation = f"conv-{uuid.uuid4().hex}"  # one Temporal server serves both database runs
                body = json.dumps({"channel": "chat", "conversation_id": conversation,
                                   "customer_id": customer, "message_id": "m-1", "text": text,
                                   "sent_at": datetime.now(UTC).isoformat()}).encode()
                r = await http.post("/webhooks/chat", content=body,
                                    headers={SIGNATURE_HEADER: sign(sandbox.webhook_secret, body)})
                assert r.status_code == 202, r.text
                return r.json()["ticket_id"], conversation

            async def ticket(ticket_id: str, status: str) -> dict:
                async def in_status():
                    t = (await http.get(f"/tickets/{ticket_id}", headers=sam)).json()
                    return t if t.get("status") == status else None
                return await eventually(in_status, timeout=90)

            sam = {"Authorization": f"Bearer {tokens['sam']}"}
            yield ask, ticket, http, sam


async def sent_messages(sandbox, conversation: str) -> list[str]:
    async with httpx.AsyncClient(base_url=sandbox.urls["messaging"],
                                 headers={"Authorization": f"Bearer {sandbox.api_key}"}) as chat:
        return [m["text"] for m in (await chat.get(f"/v1/conversations/{conversation}/messages")).json()["messages"]]


async def test_a_delayed_parcel_is_answered_in_the_chat_with_its_real_status(stack, sandbox):
    ask, ticket, _, _ = stack
    ticket_id, conversation = await ask(QUESTION)

    answered = await ticket(ticket_id, "bot_answered")

    picture = Customer360.model_validate(answered["context"]["customer360"])
    [parcel] = [s for s in picture.shipments if s.tracking_number == DEMO_TRACKING_DELAYED]
    assert parcel.is_delayed and parcel.status.value == "in_transit"  # the sandbox's delayed parcel
    text = answered["context"]["faq"]["answer"]
    eta = parcel.estimated_delivery.astimezone(UTC)
    assert text.startswith(f"Your parcel for order {DEMO_ORDER_DELAYED} is in transit with {parcel.carrier}, "
                           f"expected on {eta.day} {eta:%B %Y}.")
    assert "Arrived at delivery station at Berlin delivery station" in text and DEMO_TRACKING_DELAYED in text
    assert "{{" not in text
    assert await sent_messages(sandbox, conversation) == [text]  # what the customer read in the chat


async def test_when_the_carrier_cannot_be_reached_an_agent_gets_the_suggestion_and_the_reason(stack, sandbox):
    ask, ticket, http, sam = stack
    sandbox.set_faults("carrier", error_rate=1.0, status_code=503)
    ticket_id, conversation = await ask(QUESTION)

    waiting = await ticket(ticket_id, "awaiting_agent")

    assert await sent_messages(sandbox, conversation) == []  # the bot said nothing
    faq = waiting["context"]["faq"]
    assert faq["decision"] == "escalate" and faq["suggestions"][0]["entry_id"] == "track-parcel"
    assert faq["answer"].startswith("Your parcel for order {{ order.id }}")
    assert faq["reason"].startswith("needs shipment.status")
    assert {g["system"] for g in waiting["context"]["customer360"]["gaps"]} == {"carrier"}  # one per parcel
    tasks = (await http.get("/tasks", params={"queue": "general", "limit": 200}, headers=sam)).json()["items"]
    [task] = [t for t in tasks if t["ticket_id"] == ticket_id]
    assert task["context"]["faq"]["reason"] == faq["reason"]
    event = next(e for e in waiting["timeline"] if e["kind"] == "faq_no_answer")
    assert "needs shipment.status" in event["detail"]


async def test_a_customer_without_a_known_parcel_gets_an_agent_with_the_suggestion(stack, sandbox):
    ask, ticket, _, _ = stack
    ticket_id, conversation = await ask(QUESTION, customer=DEMO_CUSTOMER_WITHOUT_ORDERS)

    waiting = await ticket(ticket_id, "awaiting_agent")

    assert await sent_messages(sandbox, conversation) == []  # the bot said nothing
    faq = waiting["context"]["faq"]
    assert faq["decision"] == "escalate" and faq["suggestions"][0]["entry_id"] == "track-parcel"
    assert faq["reason"].startswith("needs order.id, shipment.status") and "which this ticket does not have" in faq["reason"]
    assert waiting["context"]["customer360"]["orders"] == [] and waiting["context"]["customer360"]["gaps"] == []
