"""Who gets a task: a deterministic choice the workflow can make and replay.

Filters run in a fixed order (queue, skills, language, presence, capacity, seniority) so
that when nobody fits, the reason names the step that ruled out the last candidates:
"none speaks Polish" is something a supervisor can act on, "no agent" is not.

Among agents who fit, the lowest load *ratio* (load / capacity) wins rather than the
lowest absolute load: a part-timer with capacity 2 holding 1 task is busier than a
colleague with capacity 8 holding 2, and should not get the next one. Exact ties are
broken by round robin per queue, using ``RoutingState``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction

from routing.models import (
    AgentProfile,
    Assignment,
    Presence,
    RoutingPolicy,
    RoutingReason,
    RoutingReasonCode,
    RoutingState,
    TaskRequirements,
)
from sla.policy import CustomerTier

Code = RoutingReasonCode


def choose_agent(
    task: TaskRequirements,
    agents: Iterable[AgentProfile],
    state: RoutingState,
    policy: RoutingPolicy | None = None,
) -> tuple[str | None, RoutingState, RoutingReason]:
    """Pick the agent for ``task``, or ``None`` when it must stay queued.

    Returns the agent id, the routing state to keep for the next decision (``state`` itself
    is not changed), and the reason to show supervisors.
    """
    policy = policy or RoutingPolicy()
    queue = task.queue

    in_queue = [agent for agent in agents if queue in agent.queues]
    if not in_queue:
        return _queued(state, Code.no_agent_in_queue, f"no agent works queue '{queue}'")

    skilled = [agent for agent in in_queue if _has_skills(agent, task.skills)]
    if not skilled:
        return _queued(
            state,
            Code.no_agent_with_skills,
            f"none of the {_agents(len(in_queue))} of queue '{queue}' has all of the skills {_names(task.skills)}",
        )

    speaking = [agent for agent in skilled if task.language is None or _speaks(agent, task.language)]
    if not speaking:
        return _queued(
            state,
            Code.no_agent_speaks_language,
            f"{_agents(len(skilled))} of queue '{queue}' have the skills, but none speaks '{task.language}'",
        )

    online = [agent for agent in speaking if agent.presence is Presence.online]
    if not online:
        away = sum(agent.presence is Presence.away for agent in speaking)
        return _queued(
            state,
            Code.no_agent_online,
            f"{_agents(len(speaking))} could handle it, but none is online"
            f" ({away} away, {len(speaking) - away} offline)",
        )

    free = [agent for agent in online if agent.load < agent.capacity]
    if not free:
        return _queued(
            state,
            Code.all_agents_at_capacity,
            f"all {_agents(len(online))} online who could handle it are at capacity",
        )

    candidates, code, lead = free, None, ""
    if task.tier is CustomerTier.vip:
        seniors = [agent for agent in free if agent.senior]
        if seniors:
            candidates, code, lead = seniors, Code.assigned_senior_for_vip, "VIP customer, senior agent. "
        elif policy.vip_fallback_to_non_senior:
            code, lead = Code.assigned_non_senior_for_vip, "VIP customer, but no senior agent is free. "
        else:
            return _queued(
                state,
                Code.no_senior_for_vip,
                f"VIP customer and no senior agent is free; {_agents(len(free))} could take it,"
                " but the routing policy waits for a senior",
            )

    chosen, tied, why = _least_loaded(candidates, state.last_assigned.get(queue))
    if code is None:
        code = Code.assigned_round_robin if len(tied) > 1 else Code.assigned_least_loaded
    new_state = state.model_copy(update={"last_assigned": {**state.last_assigned, queue: chosen.id}})
    return chosen.id, new_state, RoutingReason(code=code, explanation=f"Assigned to {chosen.id}. {lead}{why}")


def offer_queued(
    tasks: Iterable[TaskRequirements],
    agents: Sequence[AgentProfile],
    state: RoutingState,
    policy: RoutingPolicy | None = None,
) -> tuple[list[Assignment], RoutingState]:
    """Hand waiting tasks to agents with free capacity, most urgent first, then oldest.

    Called when an agent frees up or comes online. Each assignment counts against the
    agent's capacity for the rest of this call. A task nobody fits is skipped rather than
    blocking the tasks behind it, which may need other skills. Tasks not in the result
    stay queued.
    """
    pool = {agent.id: agent for agent in agents}
    assignments: list[Assignment] = []
    waiting = sorted(tasks, key=lambda task: (-task.priority.rank, task.queued_at, task.task_id))
    for task in waiting:
        agent_id, state, reason = choose_agent(task, pool.values(), state, policy)
        if agent_id is None:
            continue
        agent = pool[agent_id]
        pool[agent_id] = agent.model_copy(update={"load": agent.load + 1})
        assignments.append(Assignment(task_id=task.task_id, agent_id=agent_id, reason=reason))
    return assignments, state


def _least_loaded(
    candidates: list[AgentProfile], last_assigned: str | None
) -> tuple[AgentProfile, list[AgentProfile], str]:
    # Fractions, not floats: 1/3 and 2/6 must tie exactly.
    lowest = min(Fraction(agent.load, agent.capacity) for agent in candidates)
    tied = sorted((agent for agent in candidates if Fraction(agent.load, agent.capacity) == lowest), key=_by_id)
    if len(tied) == 1:
        chosen = tied[0]
        if len(candidates) == 1:
            return chosen, tied, f"The only agent who fits (load {chosen.load}/{chosen.capacity})."
        why = f"Lowest load ({chosen.load}/{chosen.capacity}) of {_agents(len(candidates))} who fit."
        return chosen, tied, why
    # Round robin: the first tied agent after the one the queue served last, wrapping round.
    chosen = next((agent for agent in tied if last_assigned is not None and agent.id > last_assigned), tied[0])
    why = (
        f"{len(tied)} agents tied at the lowest load ({float(lowest):.0%}): {', '.join(a.id for a in tied)};"
        f" round robin picked the next after {last_assigned or 'nobody yet'}."
    )
    return chosen, tied, why


def _queued(state: RoutingState, code: RoutingReasonCode, why: str) -> tuple[None, RoutingState, RoutingReason]:
    return None, state, RoutingReason(code=code, explanation=f"Stays queued: {why}.")


def _has_skills(agent: AgentProfile, required: frozenset[str]) -> bool:
    # Skill names come from two configurations (agents, queues); ignore case differences.
    have = {skill.casefold() for skill in agent.skills}
    return all(skill.casefold() in have for skill in required)


def _speaks(agent: AgentProfile, language: str) -> bool:
    # Match on the primary language subtag: a German speaker serves a 'de-AT' customer.
    wanted = _primary_language(language)
    return any(_primary_language(spoken) == wanted for spoken in agent.languages)


def _primary_language(tag: str) -> str:
    return tag.replace("_", "-").split("-", 1)[0].strip().casefold()


def _by_id(agent: AgentProfile) -> str:
    return agent.id


def _agents(count: int) -> str:
    return f"{count} agent" if count == 1 else f"{count} agents"


def _names(names: frozenset[str]) -> str:
    return ", ".join(sorted(names)) or "(none)"
