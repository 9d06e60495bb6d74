"""Replies to customers."""

from __future__ import annotations

import logging

from temporalio import activity

from activities.systems import SystemActivities
from models.steps import CustomerNotification, DeliveryReceipt
from models.systems import OutboundReply

log = logging.getLogger(__name__)


class NotificationActivities:
    """Delivers replies: through the messaging platform when the ticket came from a chat
    conversation and a channel is configured; otherwise the reply lives on the ticket's
    conversation (``GET /tickets/{id}``), which is where customer portals read it."""

    def __init__(self, systems: SystemActivities) -> None:
        self.systems = systems

    @activity.defn(name="deliver_reply")
    def deliver_reply(self, note: CustomerNotification) -> DeliveryReceipt:
        if self.systems.messaging is None or not note.conversation_id:
            log.info("reply %s kept on ticket %s", note.idempotency_key, note.ticket_id)
            return DeliveryReceipt(delivered=True, via="ticket")
        # Connector failures surface as typed ApplicationErrors; the workflow's retry policy
        # decides, and the idempotency key makes every retry the same message.
        sent = self.systems.send_chat_reply(OutboundReply(
            ticket_id=note.ticket_id, conversation_id=note.conversation_id, text=note.text,
            idempotency_key=note.idempotency_key,
        ))
        return DeliveryReceipt(delivered=True, via="chat", external_id=sent.message_id)
