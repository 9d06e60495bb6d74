"""Tickets the FAQ bot answered or suggested for, as their projections reach the learning
loop (not a test module)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from activities.readmodel import ReadModelActivities
from models.case import FaqContext, FaqSuggestion
from models.ticket import TicketChanges, TicketSnapshot, TicketStatus, TimelineEvent

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)


def bot(decision: str, *entry_ids: str) -> dict:
    return {"faq": FaqContext(
        index_version="v1", decision=decision, confidence=0.9,
        suggestions=[FaqSuggestion(entry_id=e, question="?", score=0.8) for e in entry_ids],
    ).model_dump(mode="json")}


def ticket(subject: str, body: str, revision: int, events: list[TimelineEvent], *, context: dict | None = None,
           ticket_id: str | None = None, start: int = 0) -> TicketChanges:
    snap = TicketSnapshot(
        ticket_id=ticket_id or uuid.uuid4().hex, workflow_id="ticket-x", customer_id="cust-1", subject=subject,
        body=body, channel="web", order_id=None, priority="normal", department="cards", external_ref=None,
        status=TicketStatus.bot_answered, opened_at=NOW, updated_at=NOW, revision=revision, timeline=events,
        context=context or {},
    )
    return TicketChanges(ticket=snap, conversation_from=0, timeline_from=start, context_changed=context is not None)


def verdict(detail: str) -> TimelineEvent:
    return TimelineEvent(at=NOW, kind="faq_feedback", detail=detail)


def judged(projection: ReadModelActivities, subject: str, body: str, detail: str, entry_id: str = "card-lost") -> str:
    """A ticket the bot answered with `entry_id`, then the customer's verdict; returns its id."""
    first = ticket(subject, body, 1, [TimelineEvent(at=NOW, kind="faq_answer")], context=bot("answer", entry_id))
    projection.project_ticket_changes(first)
    projection.project_ticket_changes(ticket(subject, body, 2, [verdict(detail)], ticket_id=first.ticket.ticket_id,
                                             start=1))
    return first.ticket.ticket_id
