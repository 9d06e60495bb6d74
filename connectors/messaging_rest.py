"""``MessagingChannel`` over the chat platform's REST API (see ``sandbox.messaging`` for
the wire format). Inbound messages are verified with ``connectors.signing``."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel

from connectors.errors import require_text
from connectors.http import RestConnector
from models.customer360 import OutboundMessage, OutboundMessageStatus

_STATUS = {s.value: s for s in OutboundMessageStatus}


class _Message(BaseModel):
    id: str
    conversation_id: str
    text: str
    status: str
    idempotency_key: str
    created_at: AwareDatetime


class _MessageEnvelope(BaseModel):
    message: _Message


class RestMessagingChannel(RestConnector):
    """``MessagingChannel`` for the chat platform's REST API. Thread-safe."""

    system = "messaging"

    def send_reply(self, conversation_id: str, text: str, idempotency_key: str) -> OutboundMessage:
        require_text(self.system, conversation_id=conversation_id, text=text, idempotency_key=idempotency_key)
        raw = self._parse(_MessageEnvelope, self._call(
            "POST", "/v1/messages", json={"conversation_id": conversation_id, "text": text},
            headers={"Idempotency-Key": idempotency_key},
        )).message
        return OutboundMessage(
            id=raw.id, conversation_id=raw.conversation_id, text=raw.text, idempotency_key=raw.idempotency_key,
            status=_STATUS.get(raw.status.lower(), OutboundMessageStatus.unknown), sent_at=raw.created_at,
        )
