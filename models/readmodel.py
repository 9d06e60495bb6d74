"""Reads and writes of the read model.

Writes are idempotent upserts guarded by the workflow's revision number: a retried or
replayed projection activity, or one that arrives late, never duplicates a row or rolls a
row back to an older state.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel

from models.db import utcnow
from models.events import ChangeEvent
from models.task import Task, TaskPublic, TaskSnapshot
from models.ticket import Ticket, TicketPublic, TicketSnapshot, TicketSummary


class InvalidCursor(ValueError):
    pass


def _insert(session: Session, table: type[SQLModel]):
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"upserts are not implemented for {dialect}")


def _upsert(session: Session, table: type[SQLModel], values: dict[str, Any]) -> bool:
    """Insert, or update if the stored revision is older. Returns whether a row changed."""
    stmt = _insert(session, table).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["id"],
        set_={k: stmt.excluded[k] for k in values if k != "id"},
        where=table.__table__.c.revision < stmt.excluded.revision,
    )
    return session.exec(stmt).rowcount > 0  # type: ignore[call-overload]


def ticket_row_values(snap: TicketSnapshot) -> dict[str, Any]:
    data = snap.model_dump(mode="json")
    return {
        "id": snap.ticket_id,
        "workflow_id": snap.workflow_id,
        "customer_id": snap.customer_id,
        "subject": snap.subject,
        "body": snap.body,
        "channel": snap.channel.value,
        "order_id": snap.order_id,
        "priority": snap.priority.value,
        "department": snap.department,
        "external_ref": snap.external_ref,
        "status": snap.status.value,
        "opened_at": snap.opened_at,
        "updated_at": snap.updated_at,
        "revision": snap.revision,
        "resolution": snap.resolution,
        "conversation": data["conversation"],
        "timeline": data["timeline"],
        "context": data["context"],
    }


def upsert_ticket(session: Session, snap: TicketSnapshot) -> bool:
    changed = _upsert(session, Ticket, ticket_row_values(snap))
    if changed:
        _record_change(session, kind="ticket", ticket_id=snap.ticket_id, task_id=None, queue=snap.department,
                       customer_id=snap.customer_id, status=snap.status.value, revision=snap.revision,
                       payload={"priority": snap.priority.value, "subject": snap.subject})
    return changed


def _record_change(session: Session, **values: Any) -> None:
    """Outbox row in the same transaction as the change it describes."""
    session.add(ChangeEvent(at=utcnow(), **values))


def upsert_task(session: Session, snap: TaskSnapshot) -> bool:
    data = snap.model_dump(mode="json")
    values = {
        "id": snap.task_id,
        "ticket_id": snap.ticket_id,
        "workflow_id": snap.workflow_id,
        "kind": snap.kind,
        "queue": snap.queue,
        "priority": snap.priority.value,
        "status": snap.status.value,
        "assignee": snap.assignee,
        "created_at": snap.created_at,
        "claimed_at": snap.claimed_at,
        "completed_at": snap.completed_at,
        "outcome": snap.outcome.value if snap.outcome else None,
        "reply": snap.reply,
        "allowed_outcomes": data["allowed_outcomes"],
        "revision": snap.revision,
        "context": data["context"],
        "skills": data["skills"],
        "language": snap.language,
        "customer_tier": snap.customer_tier,
        "priority_rank": snap.priority.rank,
        "due_at": snap.due_at,
        "notes": data["notes"],
        "routing": snap.routing,
    }
    changed = _upsert(session, Task, values)
    if changed:
        _record_change(session, kind="task", ticket_id=snap.ticket_id, task_id=snap.task_id, queue=snap.queue,
                       customer_id=None, status=snap.status.value, revision=snap.revision,
                       payload={"assignee": snap.assignee, "priority": snap.priority.value,
                                "due_at": data["due_at"], "outcome": data["outcome"]})
    return changed


# --- tickets -----------------------------------------------------------------------------


def ticket_public(row: Ticket) -> TicketPublic:
    return TicketPublic.model_validate(row.model_dump())


def get_ticket(session: Session, ticket_id: str) -> Ticket | None:
    return session.get(Ticket, ticket_id)


def get_ticket_by_external_ref(session: Session, external_ref: str) -> Ticket | None:
    return session.exec(select(Ticket).where(Ticket.external_ref == external_ref)).scalars().first()  # type: ignore[call-overload]


def encode_cursor(*parts: Any) -> str:
    raw = json.dumps([p.isoformat() if isinstance(p, datetime) else p for p in parts])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, n: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(parts, list) or len(parts) != n:
            raise ValueError
        return parts
    except Exception as exc:  # any garbage is the caller's mistake, not ours
        raise InvalidCursor("cursor is not valid: pass the next_cursor of a previous page unchanged") from exc


def list_tickets(
    session: Session,
    *,
    limit: int,
    cursor: str | None = None,
    status: str | None = None,
    customer_id: str | None = None,
    department: str | None = None,
) -> tuple[list[TicketSummary], str | None]:
    """Newest first, keyset-paginated on (opened_at, id) so pages stay fast at any depth."""
    q = select(Ticket)
    if status:
        q = q.where(Ticket.status == status)
    if customer_id is not None:
        q = q.where(Ticket.customer_id == customer_id)
    if department is not None:
        q = q.where(Ticket.department == department)
    if cursor:
        at_s, last_id = decode_cursor(cursor, 2)
        try:
            at = datetime.fromisoformat(at_s)
        except (TypeError, ValueError) as exc:
            raise InvalidCursor("cursor is not valid: pass the next_cursor of a previous page unchanged") from exc
        q = q.where(or_(Ticket.opened_at < at, and_(Ticket.opened_at == at, Ticket.id < last_id)))
    q = q.order_by(Ticket.opened_at.desc(), Ticket.id.desc()).limit(limit + 1)  # type: ignore[union-attr]
    rows = list(session.exec(q).scalars())  # type: ignore[call-overload]
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        TicketSummary.model_validate(r.model_dump()) for r in rows
    ]
    next_cursor = encode_cursor(rows[-1].opened_at, rows[-1].id) if more and rows else None
    return items, next_cursor


# --- tasks -------------------------------------------------------------------------------


def task_public(row: Task) -> TaskPublic:
    return TaskPublic.model_validate(row.model_dump())


def get_task(session: Session, task_id: str) -> Task | None:
    return session.get(Task, task_id)


def list_tasks(
    session: Session,
    *,
    limit: int,
    cursor: str | None = None,
    status: str | None = None,
    queue: str | None = None,
    queues: list[str] | None = None,
    assignee: str | None = None,
) -> tuple[list[TaskPublic], str | None]:
    """Oldest first (first come, first served), keyset-paginated on (created_at, id)."""
    q = select(Task)
    if status:
        q = q.where(Task.status == status)
    if queue:
        q = q.where(Task.queue == queue)
    if queues is not None:
        q = q.where(Task.queue.in_(queues))  # type: ignore[attr-defined]
    if assignee:
        q = q.where(Task.assignee == assignee)
    if cursor:
        at_s, last_id = decode_cursor(cursor, 2)
        try:
            at = datetime.fromisoformat(at_s)
        except (TypeError, ValueError) as exc:
            raise InvalidCursor("cursor is not valid: pass the next_cursor of a previous page unchanged") from exc
        q = q.where(or_(Task.created_at > at, and_(Task.created_at == at, Task.id > last_id)))
    q = q.order_by(Task.created_at.asc(), Task.id.asc()).limit(limit + 1)  # type: ignore[union-attr]
    rows = list(session.exec(q).scalars())  # type: ignore[call-overload]
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id) if more and rows else None
    return [task_public(r) for r in rows], next_cursor
