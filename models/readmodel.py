"""Reads and writes of the read model.

Writes are idempotent upserts guarded by the workflow's revision number: a retried or
replayed projection activity, or one that arrives late, never duplicates a row or rolls a
row back to an older state.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Integer,
    String,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    tuple_,
    type_coerce,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel

from models.agent import Agent, AgentPublic, AgentUpsert, RoutingCursor
from models.db import utcnow
from models.enums import Priority
from models.events import ChangeEvent
from models.task import Task, TaskPublic, TaskSnapshot
from models.ticket import ChatConversation, Ticket, TicketChanges, TicketPublic, TicketSnapshot, TicketSummary, splice
from routing.models import Presence


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
    # psycopg reports no rowcount for an INSERT unless asked to keep it (SQLAlchemy 2.1)
    return session.exec(stmt.execution_options(preserve_rowcount=True)).rowcount > 0  # type: ignore[call-overload]


def ticket_row_values(snap: TicketSnapshot) -> dict[str, Any]:
    data = snap.model_dump(mode="json")
    return {
        "id": snap.ticket_id,
        "case_type": snap.case_type,
        "workflow_id": snap.workflow_id,
        "customer_id": snap.customer_id,
        "subject": snap.subject,
        "body": snap.body,
        "channel": snap.channel.value,
        "order_id": snap.order_id,
        "priority": snap.priority.value,
        "department": snap.department,
        "external_ref": snap.external_ref,
        "intake_key": snap.intake_key,
        "conversation_id": snap.conversation_id,
        "status": snap.status.value,
        "opened_at": snap.opened_at,
        "updated_at": snap.updated_at,
        "revision": snap.revision,
        "resolution": snap.resolution,
        "conversation": data["conversation"],
        "timeline": data["timeline"],
        "context": data["context"],
    }


def upsert_ticket(session: Session, snap: TicketSnapshot, values: dict[str, Any] | None = None) -> bool:
    """Write the ticket (``values``: its row, if not the snapshot's) unless the row is newer."""
    changed = _upsert(session, Ticket, values if values is not None else ticket_row_values(snap))
    if changed:
        _record_change(session, kind="ticket", ticket_id=snap.ticket_id, case_type=snap.case_type, task_id=None,
                       queue=snap.department,
                       customer_id=snap.customer_id, status=snap.status.value, revision=snap.revision,
                       payload={"priority": snap.priority.value, "subject": snap.subject})
    return changed


def apply_ticket_changes(session: Session, changes: TicketChanges) -> bool:
    """Merge a workflow's changes into the stored ticket. The workflow sends them one after
    another; a retried or late one (its revision not newer than the row's) changes nothing."""
    snap = changes.ticket
    row = session.get(Ticket, snap.ticket_id)
    if row is not None and row.revision >= snap.revision:
        return False
    values = ticket_row_values(snap)
    values["conversation"] = splice(row.conversation if row else [], changes.conversation_from, values["conversation"])
    values["timeline"] = splice(row.timeline if row else [], changes.timeline_from, values["timeline"])
    if not changes.context_changed and row is not None:
        values["context"] = row.context
    return upsert_ticket(session, snap, values)


def _record_change(session: Session, **values: Any) -> None:
    """Outbox row in the same transaction as the change it describes."""
    session.add(ChangeEvent(at=utcnow(), **values))


def upsert_task(session: Session, snap: TaskSnapshot) -> bool:
    data = snap.model_dump(mode="json")
    values = {
        "id": snap.task_id,
        "ticket_id": snap.ticket_id,
        "workflow_id": snap.workflow_id,
        "case_type": snap.case_type,
        "kind": snap.kind,
        "queue": snap.queue,
        "priority": snap.priority.value,
        "status": snap.status.value,
        "assignee": snap.assignee,
        "created_at": snap.created_at,
        "claimed_at": snap.claimed_at,
        "completed_at": snap.completed_at,
        "outcome": snap.outcome,
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
        _record_change(session, kind="task", ticket_id=snap.ticket_id, case_type=snap.case_type,
                       task_id=snap.task_id, queue=snap.queue,
                       customer_id=None, status=snap.status.value, revision=snap.revision,
                       payload={"assignee": snap.assignee, "priority": snap.priority.value,
                                "due_at": data["due_at"], "outcome": data["outcome"]})
    return changed


# --- tickets -----------------------------------------------------------------------------


def ticket_public(row: Ticket) -> TicketPublic:
    return TicketPublic.model_validate(row.model_dump())


def get_ticket(session: Session, ticket_id: str) -> Ticket | None:
    return session.get(Ticket, ticket_id)


def conversation_ticket(session: Session, conversation_id: str, customer_id: str, candidate: str,
                        case_type: str = "support-ticket") -> tuple[str, str]:
    """The case (id, case type) the conversation's messages go to: the one recorded, or
    `candidate` of `case_type`, recorded now if there is none (of racing first messages, one
    inserts; all read it)."""
    values = dict(customer_id=customer_id, conversation_id=conversation_id, ticket_id=candidate, case_type=case_type,
                  updated_at=utcnow())
    session.exec(_insert(session, ChatConversation).values(**values).on_conflict_do_nothing())  # type: ignore[call-overload]
    row = session.get(ChatConversation, (customer_id, conversation_id))
    assert row is not None
    return row.ticket_id, row.case_type


def roll_conversation_ticket(session: Session, conversation_id: str, closed_ticket_id: str) -> None:
    """Forget a closed ticket for its conversation, unless another message already did."""
    c = ChatConversation.__table__.c
    session.exec(delete(ChatConversation).where(c.conversation_id == conversation_id,  # type: ignore[call-overload]
                                                c.ticket_id == closed_ticket_id))


def get_ticket_by_intake_key(session: Session, intake_key: str) -> Ticket | None:
    return session.exec(select(Ticket).where(Ticket.intake_key == intake_key)).scalars().first()  # type: ignore[call-overload]


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
    case_type: str | None = None,
    everything: bool = False,
    departments: list[str] | None = None,
    customer_id: str | None = None,
    assignee: str | None = None,
) -> tuple[list[TicketSummary], str | None]:
    """Newest first, keyset-paginated on (opened_at, id) so pages stay fast at any depth.

    Unless `everything`, only tickets the caller may read: of one of `departments`, of
    customer `customer_id`, or with a task held by `assignee`."""
    q = select(Ticket)
    if status:
        q = q.where(Ticket.status == status)
    if case_type:
        q = q.where(Ticket.case_type == case_type)
    if not everything:
        visible = []
        if departments:
            visible.append(Ticket.department.in_(departments))  # type: ignore[attr-defined]
        if customer_id is not None:
            visible.append(Ticket.customer_id == customer_id)
        if assignee is not None:
            held = select(Task.ticket_id).where(Task.assignee == assignee)
            visible.append(Ticket.id.in_(held))  # type: ignore[attr-defined]
        if not visible:
            return [], None
        q = q.where(or_(*visible))
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


def ticket_assignees(session: Session, ticket_id: str) -> tuple[str, ...]:
    """Agents holding a task of the ticket now."""
    q = select(Task.assignee).where(Task.ticket_id == ticket_id, Task.status == "claimed",
                                    Task.assignee.is_not(None))  # type: ignore[union-attr]
    return tuple(sorted({a for a in session.exec(q).scalars() if a}))  # type: ignore[call-overload]


# --- tasks -------------------------------------------------------------------------------


def task_public(row: Task) -> TaskPublic:
    return TaskPublic.model_validate(row.model_dump())


def get_task(session: Session, task_id: str) -> Task | None:
    return session.get(Task, task_id)


class TaskSort(StrEnum):
    """Orders of the inbox. Each ends in (created_at, id), so every order is total and a
    keyset cursor never skips or repeats a task."""

    created = "created"  # oldest first: first come, first served
    due = "due"  # nearest SLA breach first; tasks without one last
    priority = "priority"  # most urgent first, then oldest


OPEN_STATUSES = ("open", "claimed")


def list_tasks(
    session: Session,
    *,
    limit: int,
    cursor: str | None = None,
    sort: TaskSort = TaskSort.created,
    status: str | None = None,
    queue: str | None = None,
    queues: list[str] | None = None,
    assignee: str | None = None,
    priority: str | None = None,
    skill: str | None = None,
    overdue_at: datetime | None = None,
    case_type: str | None = None,
    as_json: bool = False,
    active: bool = False,
    due_from: datetime | None = None,
    summary: bool = False,
) -> tuple[list[TaskPublic] | list[str] | list[dict[str, Any]], str | None]:
    """One page of tasks in `sort` order, keyset-paginated.

    The cursor carries the sort it was made for, the sort key of the last task on the page
    and its id; ``overdue_at`` keeps only open or claimed tasks due before that moment,
    ``due_from`` only tasks due at or after it, ``active`` only open or claimed tasks.
    Every query is a range of one of the inbox indexes (queue, status, sort key, created_at,
    id), so a page costs the same at any depth.

    With `as_json` each task comes as the JSON of its TaskPublic, rendered by the database:
    the inbox then never decodes JSON columns and datetimes only to encode them again
    (tests/api/test_inbox_api.py holds both forms to the same result). With `summary` each
    task comes as a dict of what a list shows (SUMMARY_FIELDS): the console's inbox reads
    neither the context nor the notes. Its SQL is compiled
    once per query shape and run straight on the driver: the inbox is the hottest read, and
    building, keying and compiling the statement each time cost more than running it.
    """
    key, created_at, task_id = _decode_task_cursor(cursor, sort) if cursor else (None, None, None)
    if queues is not None and not queues:
        return [], None  # limited to no queue at all
    shape = _InboxShape(
        sort=sort, status=status is not None, queue=queue is not None,
        queues=len(queues) if queues is not None else None, assignee=assignee is not None,
        priority=priority is not None, skill=skill is not None, overdue=overdue_at is not None,
        case_type=case_type is not None, after=cursor is not None, after_due=cursor is not None and sort is TaskSort.due and key is not None,
        active=active, due_from=due_from is not None,
    )
    params: dict[str, Any] = {
        "status": status, "queue": queue, "assignee": assignee, "priority": priority,
        "skill": skill.lower() if skill is not None else None, "overdue_at": overdue_at, "case_type": case_type,
        "due_from": due_from,
        "after_key": key, "after_created": created_at, "after_id": task_id,
        **{f"queue_{i}": q for i, q in enumerate(queues or [])},
    }
    dialect = session.get_bind().dialect
    page: list = []
    for part in _inbox_parts(shape):
        n = limit + 1 - len(page)
        if n <= 0:
            break
        if as_json:
            page += _inbox_query(dialect, shape, part).run(session, {**params, "limit": n})
        else:
            stmt = _inbox_statement(shape, part, dialect.name, as_json=False, summary=summary)
            page += [row._mapping for row in session.connection().execute(stmt, {**params, "limit": n})]

    more = len(page) > limit
    page = page[:limit]
    if as_json:
        return page, _task_cursor(sort, _task_key_from_json(page[-1])) if more and page else None
    cursor_ = _task_cursor(sort, page[-1]) if more and page else None
    if summary:
        rows = [dict(r) for r in page]
        return (rows if dialect.name == "sqlite" else _with_context_fields(session, rows)), cursor_
    return [TaskPublic.model_validate(r) for r in page], cursor_


@dataclass(frozen=True)
class _InboxShape:
    """Which filters an inbox query has (not their values): one SQL statement per shape."""

    sort: TaskSort
    status: bool
    queue: bool
    queues: int | None  # how many department queues the caller is limited to
    assignee: bool
    priority: bool
    skill: bool
    overdue: bool
    case_type: bool
    after: bool  # a cursor: continue after (key, created_at, id)
    after_due: bool  # the cursor of sort=due stopped inside the tasks that have a due time
    active: bool = False  # only open or claimed tasks
    due_from: bool = False  # only tasks due at or after a moment


def _inbox_parts(shape: _InboxShape) -> tuple[str, ...]:
    """The ranges a page is read from, in order. Sort `due` reads the tasks with a due time,
    soonest first, then those without one, oldest first: two ranges of the same index
    rather than one sort over both (overdue tasks all have one)."""
    if shape.sort is not TaskSort.due:
        return ("all",)
    if shape.after and not shape.after_due:
        return ("undue",)
    return ("due",) if shape.overdue or shape.due_from else ("due", "undue")


# What a list of tasks shows, read by `list_tasks(summary=True)` without the JSON columns.
SUMMARY_FIELDS = ("id", "ticket_id", "queue", "priority", "priority_rank", "status", "assignee", "due_at",
                  "created_at", "subject", "customer_id", "customer_name")


def _context_fields() -> list:
    c = Task.__table__.c
    return [c.context["subject"].as_string().label("subject"),
            c.context[("customer360", "customer_id")].as_string().label("customer_id"),
            c.context[("customer360", "customer", "name")].as_string().label("customer_name")]


def _summary_columns(dialect: str) -> list:
    """SQLite reads the context's fields after the page is cut; PostgreSQL took them out of
    every matching task's JSON before sorting (240 ms against 9 over 10,000 tasks), so there
    they are read afterwards, for the page's ids only (`_with_context_fields`)."""
    c = Task.__table__.c
    plain = [c[name] for name in SUMMARY_FIELDS[:9]]
    return plain + _context_fields() if dialect == "sqlite" else plain


def _with_context_fields(session: Session, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add the subject and customer of each task from its context, read for these ids only."""
    if not rows:
        return rows
    c = Task.__table__.c
    query = select(c.id, *_context_fields()).where(c.id.in_([r["id"] for r in rows]))
    found = {task_id: fields for task_id, *fields in session.connection().execute(query)}
    for row in rows:
        row["subject"], row["customer_id"], row["customer_name"] = found.get(row["id"], (None, None, None))
    return rows


@lru_cache(maxsize=512)
def _inbox_statement(shape: _InboxShape, part: str, dialect: str, *, as_json: bool, summary: bool = False):
    """The statement of one part of an inbox page, every value a named bind parameter."""
    c = Task.__table__.c

    def param(name: str, column=None):
        return bindparam(name, type_=column.type if column is not None else None)

    where = []
    if shape.status:
        where.append(c.status == param("status", c.status))
    if shape.queue:
        where.append(c.queue == param("queue", c.queue))
    if shape.queues is not None:
        where.append(c.queue.in_([param(f"queue_{i}", c.queue) for i in range(shape.queues)]))
    if shape.assignee:
        where.append(c.assignee == param("assignee", c.assignee))
    if shape.priority:
        where.append(c.priority == param("priority", c.priority))
    if shape.case_type:
        where.append(c.case_type == param("case_type", c.case_type))
    if shape.skill:
        elements = _json_elements(dialect, c.skills)
        where.append(exists(select(literal(1)).select_from(elements)
                            .where(func.lower(elements.c.value) == param("skill", c.queue))))
    # literals, not an expanding IN: the prepared SQL has no step that would expand it
    if shape.overdue or shape.active:
        where.append(c.status.in_([literal(s) for s in OPEN_STATUSES]))
    if shape.overdue:
        where.append(c.due_at < param("overdue_at", c.due_at))
    if shape.due_from:
        where.append(c.due_at >= param("due_from", c.due_at))
    after_tie = tuple_(c.created_at, c.id) > tuple_(param("after_created", c.created_at), param("after_id", c.id))

    if part == "due":
        where.append(c.due_at.is_not(None))
        if shape.after:
            where.append(tuple_(c.due_at, c.created_at, c.id) > tuple_(
                param("after_key", c.due_at), param("after_created", c.created_at), param("after_id", c.id)))
        order = [c.due_at, c.created_at, c.id]
    elif part == "undue":
        where.append(c.due_at.is_(None))
        if shape.after and not shape.after_due:  # else the cursor is still among the due ones
            where.append(after_tie)
        order = [c.created_at, c.id]
    elif shape.sort is TaskSort.priority:
        if shape.after:
            where.append(or_(c.priority_rank < param("after_key", c.priority_rank),
                             and_(c.priority_rank == param("after_key", c.priority_rank), after_tie)))
        order = [c.priority_rank.desc(), c.created_at, c.id]
    else:
        if shape.after:
            where.append(after_tie)
        order = [c.created_at, c.id]
    columns = [_task_public_json(dialect)] if as_json else _summary_columns(dialect) if summary else [Task.__table__]
    return select(*columns).where(*where).order_by(*order).limit(bindparam("limit", type_=Integer))


@dataclass(frozen=True)
class _PreparedQuery:
    """SQL compiled for one dialect, run on the driver's own cursor."""

    sql: str
    names: tuple[str, ...]  # the parameters, in the driver's order if it takes them by position
    positional: bool
    processors: tuple[tuple[str, Any], ...]  # (name, the column type's bind processor)
    constants: dict[str, Any]  # values the statement itself binds (e.g. strings in the JSON rendering)

    def run(self, session: Session, params: dict[str, Any]) -> list:
        values = {**self.constants, **params}
        for name, process in self.processors:
            if values.get(name) is not None:
                values[name] = process(values[name])
        bound = tuple(values[n] for n in self.names) if self.positional else {n: values[n] for n in self.names}
        # exec_driver_sql: no compiling, but the driver's errors still become SQLAlchemy's
        # (a dropped connection is a DatabaseUnavailable, and the pool learns of it)
        return list(session.connection().exec_driver_sql(self.sql, bound).scalars())


@lru_cache(maxsize=512)
def _inbox_query(dialect, shape: _InboxShape, part: str) -> _PreparedQuery:  # noqa: ANN001
    compiled = _inbox_statement(shape, part, dialect.name, as_json=True).compile(dialect=dialect)
    processors = tuple(
        (name, process) for name, bind in compiled.binds.items()
        if (process := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
    )
    positional = compiled.positional
    names = (tuple(compiled.positiontup or ()) if positional
             else tuple(name for name in compiled.binds if not name.startswith("%(")))
    constants = {name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required}
    return _PreparedQuery(sql=compiled.string, names=names, positional=positional, processors=processors,
                          constants=constants)


def _task_key_from_json(text: str) -> dict[str, Any]:
    """The sort keys of a task from its TaskPublic JSON: only the last task of a page needs
    them, so no other row pays for converting its datetimes."""
    task = json.loads(text)
    due_at = task["due_at"]
    return {"id": task["id"], "created_at": datetime.fromisoformat(task["created_at"]),
            "due_at": datetime.fromisoformat(due_at) if due_at else None,
            "priority_rank": Priority(task["priority"]).rank}


def _task_public_json(dialect: str):
    """SQL that renders a task row as TaskPublic's JSON: every field from the column of the
    same name, JSON columns embedded, datetimes as ISO 8601 in UTC."""
    c = Task.__table__.c
    args: list = []
    for name in TaskPublic.model_fields:
        column = c[name]
        if isinstance(column.type, JSON):
            value = func.json(column) if dialect == "sqlite" else column
        elif isinstance(getattr(column.type, "impl", column.type), DateTime):
            value = (type_coerce(func.replace(column, " ", "T"), String) + "Z" if dialect == "sqlite"
                     else func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
        else:
            value = column
        args += [literal_column(f"'{name}'"), value]
    if dialect == "sqlite":
        return func.json_object(*args)
    return cast(func.json_build_object(*args), Text)


def _task_cursor(sort: TaskSort, row) -> str:
    key = {TaskSort.due: row["due_at"], TaskSort.priority: row["priority_rank"]}.get(sort)
    return encode_cursor(sort.value, key, row["created_at"], row["id"])


def _decode_task_cursor(cursor: str, sort: TaskSort) -> tuple[Any, datetime, str]:
    made_for, key, created_s, task_id = decode_cursor(cursor, 4)
    if made_for not in TaskSort.__members__:
        raise InvalidCursor("cursor is not valid: pass the next_cursor of a previous page unchanged")
    if made_for != sort.value:
        raise InvalidCursor(
            f"this cursor pages through sort={made_for}, not sort={sort.value}: "
            f"repeat the request with sort={made_for}, or start again without a cursor"
        )
    try:
        created_at = datetime.fromisoformat(created_s)
        if sort is TaskSort.due and key is not None:
            key = datetime.fromisoformat(key)
        if sort is TaskSort.priority and not isinstance(key, int):
            raise TypeError
        if not isinstance(task_id, str):
            raise TypeError
    except (TypeError, ValueError) as exc:
        raise InvalidCursor("cursor is not valid: pass the next_cursor of a previous page unchanged") from exc
    return key, created_at, task_id


def _json_elements(dialect: str, column):  # noqa: ANN001, ANN202
    """The elements of the JSON array in `column` as a table with one column, `value`."""
    if dialect == "postgresql":
        return func.json_array_elements_text(column).table_valued("value")
    return func.json_each(column).table_valued("value")


def json_array_contains(session: Session, column, value: str, *, ignore_case: bool = False):
    """`value` is an element of the JSON array in `column` (SQLite and PostgreSQL)."""
    elements = _json_elements(session.get_bind().dialect.name, column)
    element = elements.c.value
    if ignore_case:
        return exists(select(literal(1)).select_from(elements).where(func.lower(element) == value.lower()))
    return exists(select(literal(1)).select_from(elements).where(element == value))


# --- agents ------------------------------------------------------------------------------


def agent_loads(session: Session, agent_ids: list[str], excluding_task: str | None = None) -> dict[str, int]:
    """Tasks each agent holds now (claimed, by hand or by routing)."""
    if not agent_ids:
        return {}
    c = Task.__table__.c
    q = select(c.assignee, func.count()).where(c.status == "claimed", c.assignee.in_(agent_ids))
    if excluding_task is not None:
        q = q.where(c.id != excluding_task)
    q = q.group_by(c.assignee)
    return {assignee: count for assignee, count in session.exec(q)}  # type: ignore[call-overload]


def agent_public(row: Agent, load: int) -> AgentPublic:
    return AgentPublic.model_validate({**row.model_dump(), "load": load})


def get_agent(session: Session, agent_id: str) -> AgentPublic | None:
    row = session.get(Agent, agent_id)
    if row is None:
        return None
    return agent_public(row, agent_loads(session, [agent_id]).get(agent_id, 0))


def upsert_agent(session: Session, agent_id: str, profile: AgentUpsert) -> tuple[AgentPublic, bool]:
    """Create the agent (offline) or replace their profile, keeping their presence.
    Returns the agent and whether they were created."""
    now = utcnow()
    values = {**profile.model_dump(), "id": agent_id, "updated_at": now}
    created = session.get(Agent, agent_id) is None
    stmt = _insert(session, Agent).values(**values, presence=Presence.offline.value, presence_changed_at=None)
    stmt = stmt.on_conflict_do_update(index_elements=["id"], set_=values)
    session.exec(stmt)  # type: ignore[call-overload]
    session.expire_all()
    agent = get_agent(session, agent_id)
    assert agent is not None
    return agent, created


def list_agents(session: Session, *, queue: str | None = None, presence: str | None = None) -> list[AgentPublic]:
    q = select(Agent)
    if queue:
        q = q.where(json_array_contains(session, Agent.__table__.c.queues, queue))
    if presence:
        q = q.where(Agent.presence == presence)
    rows = list(session.exec(q.order_by(Agent.id)).scalars())  # type: ignore[call-overload]
    loads = agent_loads(session, [r.id for r in rows])
    return [agent_public(r, loads.get(r.id, 0)) for r in rows]


def set_presence(session: Session, agent_id: str, presence: Presence) -> AgentPublic | None:
    row = session.get(Agent, agent_id)
    if row is None:
        return None
    if row.presence != presence.value:
        row.presence = presence.value
        row.presence_changed_at = utcnow()
        session.add(row)
        session.flush()
    return agent_public(row, agent_loads(session, [agent_id]).get(agent_id, 0))


def tasks_held_by(session: Session, agent_id: str) -> list[tuple[str, str]]:
    """(task id, workflow id) of every task the agent holds."""
    q = select(Task.id, Task.workflow_id).where(Task.assignee == agent_id, Task.status == "claimed")
    return [(task_id, workflow_id) for task_id, workflow_id in session.exec(q)]  # type: ignore[call-overload]


def save_routing_cursor(session: Session, queue: str, agent_id: str) -> None:
    """Remember who got the last round-robin tie in `queue`."""
    stmt = _insert(session, RoutingCursor).values(queue=queue, last_assigned=agent_id)
    stmt = stmt.on_conflict_do_update(index_elements=["queue"], set_={"last_assigned": agent_id})
    session.exec(stmt)  # type: ignore[call-overload]


# --- change feed -------------------------------------------------------------------------


def last_change_id(session: Session, *, recorded_before: datetime | None = None) -> int:
    """The highest change-event id (of those recorded before `recorded_before`), 0 if none."""
    q = select(func.max(ChangeEvent.id))
    if recorded_before is not None:
        q = q.where(ChangeEvent.at < recorded_before)
    return session.exec(q).scalar() or 0  # type: ignore[call-overload]


def changes_after(
    session: Session,
    after: int,
    *,
    limit: int,
    upto: int | None = None,
    queues: list[str] | None = None,
    customer_id: str | None = None,
    case_type: str | None = None,
) -> list[ChangeEvent]:
    """Change events with id > `after` (and <= `upto`), oldest first. `queues` keeps one
    department's events; `customer_id` keeps only that customer's ticket events;
    `case_type` only those of that kind of case."""
    c = ChangeEvent.__table__.c
    q = select(ChangeEvent).where(c.id > after)
    if upto is not None:
        q = q.where(c.id <= upto)
    if queues is not None:
        q = q.where(c.queue.in_(queues))
    if customer_id is not None:
        q = q.where(c.kind == "ticket", c.customer_id == customer_id)
    if case_type is not None:
        q = q.where(c.case_type == case_type)
    return list(session.exec(q.order_by(c.id).limit(limit)).scalars())  # type: ignore[call-overload]


def prune_changes(session: Session, before: datetime, *, limit: int) -> int:
    """Delete up to `limit` change events older than `before`, oldest first; how many went.
    Small batches keep each transaction (and the locks it holds) short."""
    table = ChangeEvent.__table__
    c = table.c
    # The newest event always stays: on SQLite ids are rowids, and an emptied table would
    # hand out ids from 1 again, below the Last-Event-ID of every console that reconnects.
    newest = select(func.max(c.id)).scalar_subquery()
    oldest = select(c.id).where(c.at < before, c.id < newest).order_by(c.id).limit(limit)
    result = session.execute(delete(table).where(c.id.in_(oldest.scalar_subquery())))
    return result.rowcount
