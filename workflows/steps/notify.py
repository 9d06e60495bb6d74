"""Tell the customer something, through the channel they wrote from."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.steps.base import CaseBase

with workflow.unsafe.imports_passed_through():
    from models.steps import CustomerNotification, DeliveryReceipt
    from models.ticket import ConversationEntry

# Replies go to an outside system: retry for an hour, then tell the agents it did not arrive.
DELIVERY = dict(
    start_to_close_timeout=timedelta(seconds=30),
    schedule_to_close_timeout=timedelta(hours=1),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5)),
)


class Notify(CaseBase):
    async def notify_customer(self, text: str, *, author: str, key: str) -> DeliveryReceipt:
        """Send `text` to the customer through their channel and add it to the conversation.

        `key` makes the send idempotent: a retried activity never sends twice. When the
        channel stays unreachable past the retry window the message is kept on the case,
        marked undelivered, so an agent can follow up another way."""
        s = self.snapshot
        note = CustomerNotification(
            ticket_id=s.ticket_id, customer_id=s.customer_id, channel=s.channel, conversation_id=s.conversation_id,
            text=text, author=author,
            idempotency_key=f"{s.ticket_id}:{key}",
        )
        try:
            receipt: DeliveryReceipt = await workflow.execute_activity(
                "deliver_reply", note, result_type=DeliveryReceipt, **DELIVERY
            )
        except ActivityError as err:
            cause = err.cause
            reason = cause.message if isinstance(cause, ApplicationError) else str(cause or err)
            receipt = DeliveryReceipt(delivered=False, via="none", detail=reason)
        s.conversation.append(
            ConversationEntry(id=note.idempotency_key, direction="out", author=author, text=text, at=workflow.now())
        )
        self.record(
            "reply_sent" if receipt.delivered else "reply_undelivered",
            f"via {receipt.via}" + (f": {receipt.detail}" if receipt.detail else ""),
            key=note.idempotency_key,
        )
        return receipt
