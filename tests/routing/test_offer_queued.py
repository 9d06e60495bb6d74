"""Handing waiting tasks to agents as they free up."""

from datetime import UTC, datetime, timedelta

from routing import AgentProfile, Presence, RoutingReasonCode, RoutingState, TaskRequirements, offer_queued
from sla import Priority

MORNING = datetime(2024, 3, 4, 9, tzinfo=UTC)


def agent(agent_id: str, **fields) -> AgentProfile:
    defaults = dict(skills={"refunds"}, languages={"en"}, queues={"billing"}, capacity=1, presence=Presence.online)
    return AgentProfile(id=agent_id, **(defaults | fields))


def waiting(task_id: str, priority: Priority = Priority.normal, minutes_ago: int = 0, **fields) -> TaskRequirements:
    defaults = dict(queue="billing", skills={"refunds"}, language="en")
    return TaskRequirements(
        task_id=task_id, priority=priority, queued_at=MORNING - timedelta(minutes=minutes_ago), **(defaults | fields)
    )


def assigned(assignments) -> list[tuple[str, str]]:
    return [(a.task_id, a.agent_id) for a in assignments]


def test_most_urgent_first_then_oldest():
    tasks = [
        waiting("old-normal", Priority.normal, minutes_ago=90),
        waiting("new-urgent", Priority.urgent, minutes_ago=1),
        waiting("new-high", Priority.high, minutes_ago=5),
        waiting("old-high", Priority.high, minutes_ago=60),
        waiting("low", Priority.low, minutes_ago=500),
    ]
    assignments, _ = offer_queued(tasks, [agent("ana", capacity=4)], RoutingState())
    assert assigned(assignments) == [
        ("new-urgent", "ana"),
        ("old-high", "ana"),
        ("new-high", "ana"),
        ("old-normal", "ana"),
    ]  # "low" waits: ana is full after four


def test_assignments_use_up_capacity_within_one_offer():
    tasks = [waiting(f"t{i}", minutes_ago=10 - i) for i in range(4)]
    agents = [agent("ana", capacity=2), agent("ben", capacity=1, load=0)]
    assignments, state = offer_queued(tasks, agents, RoutingState())
    assert assigned(assignments) == [("t0", "ana"), ("t1", "ben"), ("t2", "ana")]
    assert state.last_assigned == {"billing": "ana"}
    # The caller's agent snapshot is untouched.
    assert [a.load for a in agents] == [0, 0]


def test_a_task_nobody_fits_does_not_block_the_ones_behind_it():
    tasks = [waiting("polish", Priority.urgent, language="pl"), waiting("english", Priority.low)]
    assignments, _ = offer_queued(tasks, [agent("ana")], RoutingState())
    assert assigned(assignments) == [("english", "ana")]


def test_nothing_assigned_when_everyone_is_busy_or_away():
    agents = [agent("ana", load=1), agent("ben", presence=Presence.away)]
    assignments, state = offer_queued(
        [waiting("t1"), waiting("t2")], agents, RoutingState(last_assigned={"billing": "x"})
    )
    assert assignments == []
    assert state == RoutingState(last_assigned={"billing": "x"})


def test_equal_age_is_ordered_by_task_id_for_determinism():
    tasks = [waiting("b"), waiting("a")]
    assignments, _ = offer_queued(tasks, [agent("ana")], RoutingState())
    assert assigned(assignments) == [("a", "ana")]


def test_assignments_carry_the_reason():
    assignments, _ = offer_queued([waiting("t1")], [agent("ana"), agent("ben")], RoutingState())
    assert assignments[0].reason.code is RoutingReasonCode.assigned_round_robin
    assert assignments[0].reason.assigned


def test_rotation_continues_across_offers():
    agents = [agent("ana", capacity=5), agent("ben", capacity=5)]
    first, state = offer_queued([waiting("t1")], agents, RoutingState())
    second, _ = offer_queued([waiting("t2")], agents, state)  # loads unchanged: still tied
    assert [a.agent_id for a in first + second] == ["ana", "ben"]
