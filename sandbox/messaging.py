"""A chat platform: takes ticketflow's replies and delivers customers' messages to
ticketflow's webhook.

Outbound (bearer API key)::

    POST /v1/messages  {"conversation_id", "text"}, header ``Idempotency-Key`` required
         201 {"message": {...}} new; 200 the same message on replay; 409 key reused for
         different content.
    GET  /v1/conversations/{conversation_id}/messages   {"messages": [...]}, oldest first

Inbound (the sandbox's control surface, not faulted)::

    POST /simulate/inbound {"conversation_id", "customer_id", "text", "channel"?,
                            "message_id"?, "target_url"?}
         builds a ``models.customer360.InboundChatMessage``, signs it
         (``connectors.signing``) and POSTs it to ``target_url`` or the configured webhook.
         Answers {"delivered", "status_code", "message"}; 502 when the target is down.
    GET/POST /_admin/webhook {"url", "secret"}   where inbound messages go

Webhook targets must be loopback addresses: the sandbox never calls out of the machine.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from ipaddress import ip_address
from typing import Annotated
from urllib.parse import urlsplit

import httpx
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from connectors.signing import SIGNATURE_HEADER, sign
from models.customer360 import InboundChatMessage
from sandbox.data import DEFAULT_WEBHOOK_SECRET, SANDBOX_API_KEY
from sandbox.service import require_bearer, service_app

WEBHOOK_TIMEOUT_SECONDS = 10.0


class NewMessage(BaseModel):
    conversation_id: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=20_000)


class SimulatedInbound(BaseModel):
    conversation_id: str = Field(min_length=1, max_length=200)
    customer_id: str = Field(min_length=1, max_length=100)
    text: str = Field(min_length=1, max_length=20_000)
    channel: str = "chat"
    message_id: str | None = Field(default=None, description="Reuse one to simulate a redelivery.")
    target_url: str | None = None


class WebhookConfig(BaseModel):
    url: str | None = None
    secret: str = Field(default=DEFAULT_WEBHOOK_SECRET, min_length=1)


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


class MessagingStore:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.messages: list[dict] = []
        self.by_key: dict[str, dict] = {}
        self.inbound_ids = itertools.count(1)


def create_app(
    *,
    api_key: str = SANDBOX_API_KEY,
    webhook_url: str | None = None,
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
    seed: int = 0,
) -> FastAPI:
    store = MessagingStore()
    initial_webhook = WebhookConfig(url=webhook_url, secret=webhook_secret)
    webhook = initial_webhook.model_copy()

    def reset() -> None:
        store.reset()
        webhook.url, webhook.secret = initial_webhook.url, initial_webhook.secret

    def authorized(request: Request) -> None:
        require_bearer(request, api_key)

    app = service_app("Sandbox chat platform", reset_state=reset, seed=seed)

    @app.post("/v1/messages", dependencies=[Depends(authorized)])
    async def send(new: NewMessage, idempotency_key: Annotated[str, Header(min_length=1)]) -> JSONResponse:
        replay = store.by_key.get(idempotency_key)
        if replay is not None:
            if (replay["conversation_id"], replay["text"]) != (new.conversation_id, new.text):
                raise HTTPException(409, f"Idempotency-Key {idempotency_key} was used for another message")
            return JSONResponse({"message": replay}, status_code=200)
        message = {
            "id": f"MSG-{len(store.messages) + 1:06d}", "conversation_id": new.conversation_id,
            "text": new.text, "status": "delivered", "idempotency_key": idempotency_key,
            "created_at": datetime.now(UTC).isoformat(),
        }
        store.messages.append(message)
        store.by_key[idempotency_key] = message
        return JSONResponse({"message": message}, status_code=201)

    @app.get("/v1/conversations/{conversation_id}/messages", dependencies=[Depends(authorized)])
    async def conversation(conversation_id: str) -> dict:
        return {"messages": [m for m in store.messages if m["conversation_id"] == conversation_id]}

    @app.get("/_admin/webhook")
    async def get_webhook() -> dict:
        return {"url": webhook.url}

    @app.post("/_admin/webhook")
    async def set_webhook(config: WebhookConfig) -> dict:
        if config.url and not _is_loopback(config.url):
            raise HTTPException(400, "webhook url must be a loopback address")
        webhook.url, webhook.secret = config.url, config.secret
        return {"url": webhook.url}

    @app.post("/simulate/inbound")
    async def simulate_inbound(sim: SimulatedInbound) -> dict:
        target = sim.target_url or webhook.url
        if not target:
            raise HTTPException(400, "no target_url given and no webhook configured (POST /_admin/webhook)")
        if not _is_loopback(target):
            raise HTTPException(400, "target_url must be a loopback address")
        message = InboundChatMessage(
            channel=sim.channel, conversation_id=sim.conversation_id, customer_id=sim.customer_id,
            text=sim.text, message_id=sim.message_id or f"IN-{next(store.inbound_ids):06d}",
            sent_at=datetime.now(UTC),
        )
        raw = message.model_dump_json().encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(webhook.secret, raw)}
        try:
            async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_SECONDS) as client:
                response = await client.post(target, content=raw, headers=headers)
        except httpx.HTTPError as exc:
            raise HTTPException(502, f"webhook {target} unreachable: {type(exc).__name__}") from exc
        return {"delivered": response.is_success, "status_code": response.status_code,
                "message": message.model_dump(mode="json")}

    return app
