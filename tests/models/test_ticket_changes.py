"""A ticket's workflow projects changes, not snapshots: the read model merges them, on every
backend, without duplicating, losing or rolling back an entry."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from models import readmodel
from models.db import Database
from models.ticket import ConversationEntry, TicketChanges, TicketSnapshot, TicketStatus, TimelineEvent

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def message(n: int) -> ConversationEntry:
    return ConversationEntry(id=f"m{n}", direction="in", author="cust-1", text=f"message {n}", at=NOW)


def event(n: int) -> TimelineEvent:
    return TimelineEvent(at=NOW, kind="customer_message", detail=f"message {n}")


def changes(ticket_id: str, revision: int, conversation: range, timeline: range, *,
            context: dict | None = None, status: TicketStatus = TicketStatus.awaiting_agent) -> TicketChanges:
    snap = TicketSnapshot(
        ticket_id=ticket_id, workflow_id=f"ticket-{ticket_id}", customer_id="cust-1", subject="Parcel",
        body="Where is it?", channel="web", order_id=None, priority="normal", department="logistics",
        external_ref=None, status=status, opened_at=NOW, updated_at=NOW, revision=revision,
        conversation=[message(n) for n in conversation], timeline=[event(n) for n in timeline],
        context=context or {},
    )
    return TicketChanges(ticket=snap, conversation_from=conversation.start, timeline_from=timeline.start,
                         context_changed=context is not None)


def stored(db: Database, ticket_id: str) -> TicketSnapshot:
    """The stored row, with its revision."""
    return db.call(lambda s: TicketSnapshot.model_validate(
        {**readmodel.get_ticket(s, ticket_id).model_dump(), "ticket_id": ticket_id}))


def test_changes_append_in_order_and_keep_the_context_until_it_changes(db: Database):
    tid = uuid.uuid4().hex
    assert db.call(readmodel.apply_ticket_changes, changes(tid, 1, range(0, 1), range(0, 2), context={"sla": 1}))
    assert db.call(readmodel.apply_ticket_changes, changes(tid, 2, range(1, 3), range(2, 3)))
    ticket = stored(db, tid)
    assert [m.id for m in ticket.conversation] == ["m0", "m1", "m2"]
    assert [e.detail for e in ticket.timeline] == ["message 0", "message 1", "message 2"]
    assert ticket.context == {"sla": 1} and ticket.revision == 2

    assert db.call(readmodel.apply_ticket_changes, changes(tid, 3, range(3, 3), range(3, 4), context={"sla": 2},
                                                           status=TicketStatus.resolved))
    ticket = stored(db, tid)
    assert ticket.context == {"sla": 2} and ticket.status == TicketStatus.resolved
    assert [e.detail for e in ticket.timeline][-1] == "message 3"


def test_a_retried_or_late_change_writes_nothing(db: Database):
    tid = uuid.uuid4().hex
    first = changes(tid, 1, range(0, 2), range(0, 2))
    second = changes(tid, 2, range(2, 3), range(2, 3))
    assert db.call(readmodel.apply_ticket_changes, first)
    assert db.call(readmodel.apply_ticket_changes, second)
    assert db.call(readmodel.apply_ticket_changes, second) is False  # retried after it committed
    assert db.call(readmodel.apply_ticket_changes, first) is False  # arrives late
    ticket = stored(db, tid)
    assert [m.id for m in ticket.conversation] == ["m0", "m1", "m2"] and ticket.revision == 2


def test_a_full_snapshot_then_changes_and_a_gap_keeps_what_is_there(db: Database):
    tid = uuid.uuid4().hex
    full = changes(tid, 1, range(0, 2), range(0, 2)).ticket
    assert db.call(readmodel.upsert_ticket, full)  # a ticket opened before changes were projected
    assert db.call(readmodel.apply_ticket_changes, changes(tid, 2, range(2, 3), range(2, 3)))
    # the read model lost entries 3 and 4 (say, restored from an older backup): what arrives follows
    assert db.call(readmodel.apply_ticket_changes, changes(tid, 3, range(5, 6), range(5, 6)))
    assert [m.id for m in stored(db, tid).conversation] == ["m0", "m1", "m2", "m5"]


def test_changes_applied_to_a_snapshot_match_the_database():
    tid = uuid.uuid4().hex
    merged = changes(tid, 1, range(0, 2), range(0, 1), context={"a": 1}).applied_to(None)
    merged = changes(tid, 2, range(2, 3), range(1, 2)).applied_to(merged)
    assert [m.id for m in merged.conversation] == ["m0", "m1", "m2"] and merged.context == {"a": 1}
    # the same change again rewrites the same positions
    assert changes(tid, 2, range(2, 3), range(1, 2)).applied_to(merged).conversation == merged.conversation
