"""The supervisor dashboard's figures, on SQLite and PostgreSQL, from rows written directly.

The database is shared by the whole session: every test names its own departments (and
agents), and the tests of `last_day` look at days in 1987, which no other test writes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from console.dashboard import AgentLoad, DayFigures, QueueDepth, SlaRisk, agents_board, last_day, queue_depth, sla_risk
from models.agent import Agent
from models.db import Database
from models.enums import Priority
from models.task import Task
from models.ticket import Ticket
from routing.models import Presence
from workflows.steps.faq import FAQ_BOT

NOW = datetime(2030, 5, 6, 12, 0, tzinfo=UTC)
DAY_NOW = datetime(1987, 3, 7, 12, 30, tzinfo=UTC)
US = timedelta(microseconds=1)


def _names(*labels: str) -> list[str]:
    run = uuid.uuid4().hex[:8]
    return [f"{label}-{run}" for label in labels]


def _task(queue: str, priority: Priority = Priority.normal, *, status: str = "open", assignee: str | None = None,
          due_at: datetime | None = None) -> Task:
    task_id = f"task-{uuid.uuid4().hex}"
    return Task(id=task_id, ticket_id=f"tk-{task_id}", workflow_id=f"wf-{task_id}", kind="handle_ticket",
                queue=queue, priority=priority.value, priority_rank=priority.rank, status=status,
                assignee=assignee, created_at=NOW - timedelta(hours=2), due_at=due_at)


def _agent(agent_id: str, queues: list[str], presence: Presence, capacity: int = 5) -> Agent:
    return Agent(id=agent_id, queues=queues, presence=presence.value, capacity=capacity, updated_at=NOW)


def _ticket(department: str, opened_at: datetime, *, conversation: list[dict[str, Any]] | None = None,
            timeline: list[dict[str, Any]] | None = None) -> Ticket:
    ticket_id = f"tk-{uuid.uuid4().hex}"
    return Ticket(id=ticket_id, workflow_id=f"wf-{ticket_id}", customer_id="cust-1", subject="s", body="b",
                  channel="web", priority="normal", department=department, status="awaiting_agent",
                  opened_at=opened_at, updated_at=opened_at, conversation=conversation or [],
                  timeline=timeline or [])


def _message(direction: str, author: str, at: datetime | str) -> dict[str, Any]:
    return {"id": uuid.uuid4().hex, "direction": direction, "author": author, "text": "hi",
            "at": at if isinstance(at, str) else at.isoformat().replace("+00:00", "Z")}


def _event(kind: str, detail: str = "") -> dict[str, Any]:
    return {"at": DAY_NOW.isoformat(), "kind": kind, "detail": detail, "data": {}}


def _add(db: Database, rows: list) -> None:
    db.call(lambda s: s.add_all(rows))


# --- queue depth ---------------------------------------------------------------------------


def test_queue_depth_counts_open_and_claimed_per_queue_and_priority_most_urgent_first(db: Database):
    a, b, other = _names("qa", "qb", "qc")
    _add(db, [
        _task(a, Priority.low), _task(a, Priority.urgent), _task(a, Priority.urgent),
        _task(a, Priority.urgent, status="claimed", assignee="ana"),
        _task(a, Priority.normal, status="claimed", assignee="bob"),
        _task(a, Priority.urgent, status="completed"), _task(a, Priority.low, status="cancelled"),
        _task(a, Priority.high, status="completed"),  # a priority with only finished tasks has no row
        _task(b, Priority.high),
        _task(other, Priority.normal),
    ])
    expected = [
        QueueDepth(a, Priority.urgent, open=2, claimed=1),
        QueueDepth(a, Priority.normal, open=0, claimed=1),
        QueueDepth(a, Priority.low, open=1, claimed=0),
        QueueDepth(b, Priority.high, open=1, claimed=0),
    ]
    assert db.call(queue_depth, [b, a]) == expected

    everywhere = [d for d in db.call(queue_depth, None) if d.queue in (a, b, other)]
    assert everywhere == expected + [QueueDepth(other, Priority.normal, open=1, claimed=0)]
    assert db.call(queue_depth, []) == []


# --- SLA risk ------------------------------------------------------------------------------


def test_sla_risk_splits_near_and_past_due_at_now_and_ends_the_window_before_its_end(db: Database):
    a, b, c, other = _names("sa", "sb", "sc", "sd")
    window = timedelta(minutes=30)
    _add(db, [
        _task(a, due_at=NOW),  # due exactly now: not yet breached
        _task(a, status="claimed", assignee="ana", due_at=NOW + window - US),
        _task(a, due_at=NOW + window),  # just outside the window
        _task(a, due_at=NOW - US),
        _task(a, status="claimed", assignee="ana", due_at=NOW - timedelta(days=3)),
        _task(a),  # no SLA target
        _task(a, status="completed", due_at=NOW - timedelta(hours=1)),
        _task(a, status="cancelled", due_at=NOW + timedelta(minutes=1)),
        _task(b, due_at=NOW + timedelta(hours=5)),  # nothing near: no row for b
        _task(c, Priority.urgent, due_at=NOW + timedelta(minutes=1)),
        _task(other, due_at=NOW - timedelta(minutes=1)),
    ])
    assert db.call(sla_risk, [a, b, c], NOW, window) == [SlaRisk(a, at_risk=2, breached=2),
                                                         SlaRisk(c, at_risk=1, breached=0)]
    everywhere = [r for r in db.call(sla_risk, None, NOW, window) if r.queue in (a, b, c, other)]
    assert everywhere == [SlaRisk(a, at_risk=2, breached=2), SlaRisk(c, at_risk=1, breached=0),
                          SlaRisk(other, at_risk=0, breached=1)]
    # a wider window takes in the task due at its old end, and b's
    assert db.call(sla_risk, [a, b], NOW, timedelta(hours=6)) == [SlaRisk(a, at_risk=3, breached=2),
                                                                   SlaRisk(b, at_risk=1, breached=0)]
    assert db.call(sla_risk, [], NOW, window) == []


# --- agents --------------------------------------------------------------------------------


def test_agents_board_lists_present_agents_of_the_departments_online_first_with_their_load(db: Database):
    a, b, other = _names("aa", "ab", "ac")
    zed, amy, bea, off, far, both = _names("zed", "amy", "bea", "off", "far", "both")
    _add(db, [
        _agent(zed, [a], Presence.online, capacity=3),
        _agent(amy, [a], Presence.away, capacity=4),
        _agent(bea, [other, b], Presence.online, capacity=2),
        _agent(off, [a, b], Presence.offline),
        _agent(far, [other], Presence.online),
        _agent(both, [a, b], Presence.online, capacity=6),
        _task(a, status="claimed", assignee=zed), _task(b, status="claimed", assignee=zed),  # held in any queue
        _task(a, status="claimed", assignee=amy),
        _task(a, status="open", assignee=amy), _task(a, status="completed", assignee=amy),  # not held
        _task(other, status="claimed", assignee=far),
    ])
    assert db.call(agents_board, [a, b]) == [AgentLoad(bea, Presence.online, load=0, capacity=2),
                                             AgentLoad(both, Presence.online, load=0, capacity=6),
                                             AgentLoad(zed, Presence.online, load=2, capacity=3),
                                             AgentLoad(amy, Presence.away, load=1, capacity=4)]
    assert [x.id for x in db.call(agents_board, [a])] == sorted([zed, both]) + [amy]

    mine = {zed, amy, bea, off, far, both}
    everyone = [x for x in db.call(agents_board, None) if x.id in mine]
    assert [x.id for x in everyone] == sorted([zed, bea, far, both]) + [amy]
    assert next(x for x in everyone if x.id == far).load == 1
    assert db.call(agents_board, []) == []


# --- the last 24 hours ---------------------------------------------------------------------


def _day_tickets(dept: str, other: str, now: datetime) -> list[Ticket]:
    start = now - timedelta(hours=24)
    h5 = start + timedelta(hours=5, minutes=10)
    return [
        # exactly 24 h old: the first hour's; the bot's answer is no first response
        _ticket(dept, start, conversation=[
            _message("in", "cust-1", start),
            _message("out", FAQ_BOT, start + timedelta(seconds=60)),
            _message("out", "ana", start + timedelta(seconds=600)),
            _message("out", "bob", start + timedelta(seconds=900)),
        ], timeline=[_event("faq_answer", "e1"), _event("faq_feedback", "not_helpful")]),
        _ticket(dept, start - US, conversation=[_message("out", "ana", start)],
                timeline=[_event("faq_answer"), _event("faq_feedback", "helpful")]),  # older than the day
        _ticket(dept, h5, conversation=[_message("out", "ana", (h5 + timedelta(seconds=100)).isoformat())]),
        _ticket(dept, h5 + timedelta(minutes=20),  # no offset in the entry: UTC
                conversation=[_message("out", "bob", (h5 + timedelta(minutes=20, seconds=300))
                                       .replace(tzinfo=None).isoformat())]),
        _ticket(dept, h5 + timedelta(minutes=40), conversation=[_message("in", "cust-1", h5)]),  # unanswered
        _ticket(dept, start + timedelta(hours=9), conversation=[_message("out", FAQ_BOT, start + timedelta(hours=9))],
                timeline=[_event("faq_no_answer"), _event("faq_answer", "e2"), _event("faq_feedback", "helpful")]),
        _ticket(dept, now - US, conversation=[_message("out", "dee", now - US + timedelta(seconds=49))]),
        _ticket(dept, now, conversation=[_message("out", "ana", now)],
                timeline=[_event("faq_answer")]),  # opened at now: not in the day
        _ticket(other, start + timedelta(hours=5), conversation=[_message("out", "gil", start + timedelta(hours=6))],
                timeline=[_event("faq_answer"), _event("faq_feedback", "helpful")]),
    ]


def test_last_day_counts_intake_first_responses_and_the_bot_hour_by_hour(db: Database):
    dept, other = _names("da", "db")
    _add(db, _day_tickets(dept, other, DAY_NOW))

    figures = db.call(last_day, [dept], DAY_NOW)
    intake = [0] * 24
    intake[0], intake[5], intake[9], intake[23] = 1, 3, 1, 1
    medians: list[float | None] = [None] * 24
    medians[0], medians[5], medians[23] = 600.0, 200.0, 49.0  # hour 5: 100 and 300; hour 9: the bot's only
    assert figures == DayFigures(intake_per_hour=intake, first_response_median_per_hour=medians,
                                 first_response_median=200.0, bot_answered=2, bot_confirmed=1)

    assert db.call(last_day, [dept], DAY_NOW + timedelta(days=2)) == DayFigures(
        intake_per_hour=[0] * 24, first_response_median_per_hour=[None] * 24, first_response_median=None,
        bot_answered=0, bot_confirmed=0)
    assert db.call(last_day, [], DAY_NOW).intake_per_hour == [0] * 24


def test_last_day_of_every_department_takes_in_theirs_too(db: Database):
    dept, other = _names("dc", "dd")
    now = DAY_NOW + timedelta(days=100)  # a day of its own: no department filter keeps others out
    _add(db, _day_tickets(dept, other, now))

    figures = db.call(last_day, None, now)
    intake = [0] * 24
    intake[0], intake[5], intake[9], intake[23] = 1, 4, 1, 1
    assert figures.intake_per_hour == intake
    assert figures.first_response_median_per_hour[5] == 300.0  # 100, 300 and the other department's 3600
    assert figures.first_response_median == 300.0  # 49, 100, 300, 600, 3600
    assert (figures.bot_answered, figures.bot_confirmed) == (3, 2)
