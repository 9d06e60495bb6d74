"""Replies to customers."""

from __future__ import annotations

import logging

from temporalio import activity
from temporalio.exceptions import ApplicationError

from connectors.errors import ConnectorError
from connectors.interfaces import MessagingChannel
from models.steps import CustomerNotification, DeliveryReceipt

log = logging.getLogger(__name__)


class NotificationActivities:
    """Delivers agent replies: through the messaging platform when the ticket came from a chat
    conversation and a channel is configured; otherwise the reply lives on the ticket's
    conversation (``GET /tickets/{id}``), which is where customer portals read it."""

    def __init__(self, channel: MessagingChannel | None = None) -> None:
        self.channel = channel

    @activity.defn(name="deliver_reply")
    def deliver_reply(self, note: CustomerNotification) -> DeliveryReceipt:
        if self.channel is None or not note.conversation_id:
            log.info("reply %s kept on ticket %s", note.idempotency_key, note.ticket_id)
            return DeliveryReceipt(delivered=True, via="ticket")
        try:
            sent = self.channel.send_reply(note.conversation_id, note.text, note.idempotency_key)
        except ConnectorError as err:
            raise ApplicationError(str(err), type=err.error_type, non_retryable=not err.retryable) from err
        return DeliveryReceipt(delivered=True, via="chat", external_id=sent.id)
