"""What a supervisor's live dashboard shows: queue depth, SLA risk, who is here and how busy,
and the last 24 hours of intake, first responses and the FAQ bot.

Each function reads the read model in one query or two and takes a sync Session first, like
``models.readmodel``, so the console calls it through `Database.run`. `departments` limits
every figure to those department queues (a supervisor of one department sees only theirs);
None means every queue, an empty list none. Datetime arguments must be timezone-aware: the
columns hold UTC, and SQLite returns it without an offset that the column type puts back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from statistics import median

from sqlalchemy import case, func, or_, select
from sqlmodel import Session

from models.agent import Agent
from models.enums import Priority
from models.readmodel import OPEN_STATUSES, agent_loads, json_array_contains
from models.task import Task, TaskStatus
from models.ticket import Ticket
from routing.models import Presence
from workflows.steps.faq import FAQ_BOT

HOUR = timedelta(hours=1)
DAY_HOURS = 24


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """Tasks waiting in one queue at one priority: `open` for an agent to take, `claimed`
    being worked on."""

    queue: str
    priority: Priority
    open: int
    claimed: int


@dataclass(frozen=True, slots=True)
class SlaRisk:
    """Open or claimed tasks of one queue whose next SLA target is near or past: `at_risk`
    breach within the window, `breached` already have."""

    queue: str
    at_risk: int
    breached: int


@dataclass(frozen=True, slots=True)
class AgentLoad:
    """An agent who is here (online or away): how many tasks they hold of how many they may."""

    id: str
    presence: Presence
    load: int
    capacity: int


@dataclass(frozen=True, slots=True)
class DayFigures:
    """The 24 hours before `now`, hour by hour, oldest hour first.

    `intake_per_hour[i]` counts the tickets opened in [now-24h+i h, now-24h+(i+1) h).
    First response: seconds from a ticket's opening to the first message a person sent the
    customer (the FAQ bot's answer is not one); its medians are over the tickets opened in
    the hour (None if none of them has had one) and over the day. `bot_answered` counts the
    tickets the FAQ bot answered, `bot_confirmed` those whose customer said the answer helped.
    """

    intake_per_hour: list[int]
    first_response_median_per_hour: list[float | None]
    first_response_median: float | None
    bot_answered: int
    bot_confirmed: int


def queue_depth(session: Session, departments: list[str] | None) -> list[QueueDepth]:
    """Open and claimed tasks per (queue, priority), by queue then most urgent first."""
    if departments is not None and not departments:
        return []
    c = Task.__table__.c
    q = (select(c.queue, c.priority, c.priority_rank,
                func.count(case((c.status == TaskStatus.open.value, 1))),
                func.count(case((c.status == TaskStatus.claimed.value, 1))))
         .where(c.status.in_(OPEN_STATUSES)))
    if departments is not None:
        q = q.where(c.queue.in_(departments))
    q = q.group_by(c.queue, c.priority, c.priority_rank).order_by(c.queue, c.priority_rank.desc())
    return [QueueDepth(queue=queue, priority=Priority(priority), open=n_open, claimed=n_claimed)
            for queue, priority, _rank, n_open, n_claimed in session.exec(q)]  # type: ignore[call-overload]


def sla_risk(session: Session, departments: list[str] | None, now: datetime, window: timedelta) -> list[SlaRisk]:
    """Per queue, open or claimed tasks due in [now, now + window) (`at_risk`) and due
    before now (`breached`), by queue; queues with neither are left out."""
    if departments is not None and not departments:
        return []
    c = Task.__table__.c
    q = (select(c.queue, func.count(case((c.due_at >= now, 1))), func.count(case((c.due_at < now, 1))))
         .where(c.status.in_(OPEN_STATUSES), c.due_at.is_not(None), c.due_at < now + window))
    if departments is not None:
        q = q.where(c.queue.in_(departments))
    q = q.group_by(c.queue).order_by(c.queue)
    return [SlaRisk(queue=queue, at_risk=at_risk, breached=breached)
            for queue, at_risk, breached in session.exec(q)]  # type: ignore[call-overload]


_PRESENCE_ORDER = {Presence.online.value: 0, Presence.away.value: 1}


def agents_board(session: Session, departments: list[str] | None) -> list[AgentLoad]:
    """Online then away agents who work one of `departments`, each by id, with the tasks
    they hold now (offline agents hold none for long: going offline releases them)."""
    if departments is not None and not departments:
        return []
    c = Agent.__table__.c
    q = select(c.id, c.presence, c.capacity).where(c.presence.in_(list(_PRESENCE_ORDER)))
    if departments is not None:
        q = q.where(or_(*(json_array_contains(session, c.queues, d) for d in departments)))
    rows = list(session.exec(q))  # type: ignore[call-overload]
    loads = agent_loads(session, [agent_id for agent_id, _, _ in rows])
    board = [AgentLoad(id=agent_id, presence=Presence(presence), load=loads.get(agent_id, 0), capacity=capacity)
             for agent_id, presence, capacity in rows]
    return sorted(board, key=lambda a: (_PRESENCE_ORDER[a.presence.value], a.id))


def last_day(session: Session, departments: list[str] | None, now: datetime) -> DayFigures:
    """Intake, first responses and the FAQ bot's work over tickets opened in [now-24h, now)."""
    start = now - DAY_HOURS * HOUR
    intake = [0] * DAY_HOURS
    responses: list[list[float]] = [[] for _ in range(DAY_HOURS)]
    answered = confirmed = 0
    if departments is None or departments:
        c = Ticket.__table__.c
        q = select(c.opened_at, c.conversation, c.timeline).where(c.opened_at >= start, c.opened_at < now)
        if departments is not None:
            q = q.where(c.department.in_(departments))
        for opened_at, conversation, timeline in session.exec(q):  # type: ignore[call-overload]
            hour = (opened_at - start) // HOUR
            intake[hour] += 1
            seconds = _first_response_seconds(opened_at, conversation)
            if seconds is not None:
                responses[hour].append(seconds)
            kinds = {(e.get("kind"), e.get("detail")) for e in timeline or ()}
            answered += any(kind == "faq_answer" for kind, _ in kinds)
            confirmed += ("faq_feedback", "helpful") in kinds
    return DayFigures(
        intake_per_hour=intake,
        first_response_median_per_hour=[_median(r) for r in responses],
        first_response_median=_median(s for r in responses for s in r),
        bot_answered=answered,
        bot_confirmed=confirmed,
    )


def _first_response_seconds(opened_at: datetime, conversation: list[dict] | None) -> float | None:
    """Seconds to the first message to the customer from someone other than the FAQ bot."""
    for entry in conversation or ():
        if entry.get("direction") == "out" and entry.get("author") != FAQ_BOT:
            return (_parse_at(entry["at"]) - opened_at).total_seconds()
    return None


def _parse_at(value: str) -> datetime:
    """A conversation entry's time: ISO 8601 as pydantic writes it (a 'Z' or an offset);
    one without an offset is UTC, like the columns."""
    at = datetime.fromisoformat(value)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _median(values: Iterable[float]) -> float | None:
    values = list(values)
    return float(median(values)) if values else None
