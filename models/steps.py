"""Inputs and outputs of the activities behind the reusable workflow steps."""

from __future__ import annotations

from pydantic import BaseModel, Field

from models.ticket import Channel


class CustomerNotification(BaseModel):
    """A reply to send to the customer. Carries the ids needed to route it, not contact
    details: those are looked up by the activity so they never land in workflow history."""

    ticket_id: str
    customer_id: str
    channel: Channel
    conversation_id: str | None = Field(default=None, description="Chat conversation to answer in, if any.")
    text: str
    author: str
    idempotency_key: str = Field(description="Same key, same message: retries never send twice.")


class DeliveryReceipt(BaseModel):
    delivered: bool
    via: str = Field(description="Which outbound channel carried the reply, or 'ticket' when none is configured.")
    external_id: str | None = None
    detail: str = ""
