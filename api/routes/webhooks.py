"""Inbound webhooks from other systems. They carry no bearer token: the sender proves itself
with an HMAC signature over the exact body (see `connectors.signing`)."""

from __future__ import annotations

import hashlib
import re

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, ValidationError
from api.deps import REJECTED, DbDep, ErrorDetail, SettingsDep, TemporalDep
from api import intake
from connectors.signing import SIGNATURE_HEADER, verify_signature
from models.customer360 import InboundChatMessage
from models.ticket import Channel, CustomerMessage, TicketCreate
from policies.intake import load_intake_rules

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

# Order numbers customers type into chats ("where is ORD-1001?"), so the ticket can look
# the order up in the ERP. A ticket's order_id holds 100 characters: a longer "number" is
# no order of ours.
ORDER_ID = re.compile(r"\bORD-\d{3,96}\b", re.IGNORECASE)
# A ticket's external_ref holds 200 characters; a conversation id and a message id up to 200 each.
EXTERNAL_REF_LENGTH = 200


def _external_ref(conversation_id: str, message_id: str) -> str:
    """`conversation:message`, or a digest of it when that is too long to keep whole."""
    ref = f"{conversation_id}:{message_id}"
    if len(ref) <= EXTERNAL_REF_LENGTH:
        return ref
    return "chat-sha256:" + hashlib.sha256(ref.encode()).hexdigest()


class ChatWebhookAccepted(BaseModel):
    ticket_id: str
    action: str  # "opened" a new ticket, or "appended" to the open one


# The body is read raw (the signature covers its exact bytes), so FastAPI would not document it.
_CHAT_BODY = {
    "required": True,
    "description": f"Signed: the `{SIGNATURE_HEADER}` header carries an HMAC of these exact bytes.",
    "content": {"application/json": {"schema": InboundChatMessage.model_json_schema()}},
}


@router.post("/chat", status_code=status.HTTP_202_ACCEPTED, response_model=ChatWebhookAccepted,
             openapi_extra={"requestBody": _CHAT_BODY},
             responses={401: {"model": ErrorDetail,
                              "description": "The signature is missing, does not match the body, or is too old."},
                        404: {"model": ErrorDetail,
                              "description": "The chat webhook is disabled (no shared secret is configured)."},
                        409: {"model": ErrorDetail,
                              "description": "The conversation's ticket was closing; deliver the message again."},
                        **REJECTED},
             summary="A chat message: a new ticket, or a message on the customer's open ticket in that conversation")
async def chat_message(request: Request, db: DbDep, client: TemporalDep, settings: SettingsDep) -> ChatWebhookAccepted:
    secret = settings.messaging_webhook_secret
    if secret is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            "the chat webhook is disabled: set TICKETFLOW_MESSAGING_WEBHOOK_SECRET to enable it")
    raw = await request.body()
    if not verify_signature(secret.get_secret_value(), raw, request.headers.get(SIGNATURE_HEADER, "")):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            f"{SIGNATURE_HEADER} is missing, does not match the body, or is too old")
    try:
        msg = InboundChatMessage.model_validate_json(raw)
    except ValidationError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            [{"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in err.errors()])

    order = ORDER_ID.search(msg.text)
    first_line = (msg.text.strip().splitlines() or [""])[0]
    body = TicketCreate(
        customer_id=msg.customer_id,
        subject=first_line[:120] or "Chat message",
        body=msg.text,
        channel=Channel.chat,
        order_id=order.group(0).upper() if order else None,
        external_ref=_external_ref(msg.conversation_id, msg.message_id),
    )
    # A redelivered webhook carries the same message id: the workflow keeps it once.
    ticket_id, opened = await intake.chat_message(
        body, CustomerMessage(message_id=msg.message_id, text=msg.text, sent_at=msg.sent_at),
        conversation_id=msg.conversation_id, db=db, client=client, settings=settings,
        route=load_intake_rules(settings.intake_rules_file).route(msg.text))
    return ChatWebhookAccepted(ticket_id=ticket_id, action="opened" if opened else "appended")
