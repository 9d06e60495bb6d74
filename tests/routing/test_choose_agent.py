"""Which agent gets a task, and what supervisors are told when nobody does."""

from datetime import UTC, datetime

import pytest

from routing import (
    AgentProfile,
    Presence,
    RoutingPolicy,
    RoutingReasonCode,
    RoutingState,
    TaskRequirements,
    choose_agent,
)
from sla import CustomerTier

Code = RoutingReasonCode
QUEUED_AT = datetime(2024, 3, 4, 9, tzinfo=UTC)


def agent(agent_id: str, **fields) -> AgentProfile:
    defaults = dict(
        skills={"refunds"}, languages={"en"}, queues={"billing"}, capacity=4, load=0, presence=Presence.online
    )
    return AgentProfile(id=agent_id, **(defaults | fields))


def task(**fields) -> TaskRequirements:
    defaults = dict(task_id="t1", queue="billing", skills={"refunds"}, language="en", queued_at=QUEUED_AT)
    return TaskRequirements(**(defaults | fields))


def choose(the_task, agents, state=None, policy=None):
    return choose_agent(the_task, agents, state or RoutingState(), policy)


# --- who fits ------------------------------------------------------------------------------


def test_agent_needs_every_required_skill():
    agents = [agent("ana", skills={"refunds"}), agent("ben", skills={"refunds", "sepa"}, load=3)]
    chosen, _, reason = choose(task(skills={"refunds", "sepa"}), agents)
    assert chosen == "ben"  # despite the higher load: ana lacks sepa
    assert reason.code is Code.assigned_least_loaded


def test_nobody_with_the_skills_stays_queued_and_says_which_skills():
    agents = [agent("ana", skills={"refunds"}), agent("ben", skills={"sepa"})]
    chosen, state, reason = choose(task(skills={"refunds", "sepa"}), agents)
    assert chosen is None
    assert reason.code is Code.no_agent_with_skills
    assert not reason.assigned
    assert reason.explanation == (
        "Stays queued: none of the 2 agents of queue 'billing' has all of the skills refunds, sepa."
    )
    assert state == RoutingState()


def test_skill_names_ignore_case():
    assert choose(task(skills={"Refunds"}), [agent("ana", skills={"refunds"})])[0] == "ana"


def test_agent_must_speak_the_language():
    agents = [agent("ana", languages={"en"}), agent("ben", languages={"de", "en"}, load=2)]
    assert choose(task(language="de"), agents)[0] == "ben"


def test_regional_language_tag_matches_the_language():
    assert choose(task(language="de-AT"), [agent("ana", languages={"de"})])[0] == "ana"
    assert choose(task(language="pt"), [agent("ana", languages={"pt_BR"})])[0] == "ana"


def test_nobody_speaking_the_language_stays_queued():
    chosen, _, reason = choose(task(language="pl"), [agent("ana", languages={"en"}), agent("ben", languages={"de"})])
    assert chosen is None
    assert reason.code is Code.no_agent_speaks_language
    assert "none speaks 'pl'" in reason.explanation


def test_task_without_language_or_skills_fits_anyone_in_the_queue():
    chosen, _, _ = choose(task(language=None, skills=set()), [agent("ana", languages=set(), skills=set())])
    assert chosen == "ana"


def test_agents_of_other_queues_are_not_considered():
    chosen, _, reason = choose(task(queue="shipping"), [agent("ana"), agent("ben")])
    assert chosen is None
    assert reason.code is Code.no_agent_in_queue
    assert reason.explanation == "Stays queued: no agent works queue 'shipping'."


def test_nobody_at_all():
    chosen, state, reason = choose(task(), [])
    assert (chosen, reason.code) == (None, Code.no_agent_in_queue)
    assert state == RoutingState()


# --- presence and capacity -----------------------------------------------------------------


def test_away_and_offline_agents_are_skipped():
    agents = [
        agent("ana", presence=Presence.away),
        agent("ben", presence=Presence.offline),
        agent("cem", presence=Presence.online, load=3),
    ]
    assert choose(task(), agents)[0] == "cem"


def test_nobody_online_stays_queued_with_counts():
    agents = [agent("ana", presence=Presence.away), agent("ben", presence=Presence.offline)]
    chosen, _, reason = choose(task(), agents)
    assert chosen is None
    assert reason.code is Code.no_agent_online
    assert reason.explanation == "Stays queued: 2 agents could handle it, but none is online (1 away, 1 offline)."


def test_full_agents_are_skipped():
    agents = [agent("ana", capacity=2, load=2), agent("ben", capacity=5, load=4)]
    assert choose(task(), agents)[0] == "ben"


def test_everyone_at_capacity_stays_queued():
    agents = [agent("ana", capacity=2, load=2), agent("ben", capacity=0, load=0), agent("cem", capacity=1, load=3)]
    chosen, state, reason = choose(task(), agents, RoutingState(last_assigned={"billing": "ana"}))
    assert chosen is None
    assert reason.code is Code.all_agents_at_capacity
    assert reason.explanation == "Stays queued: all 3 agents online who could handle it are at capacity."
    assert state == RoutingState(last_assigned={"billing": "ana"})


def test_skills_are_checked_before_presence_so_the_reason_names_the_real_gap():
    # The only skilled agent is offline; the online one lacks the skill.
    agents = [agent("ana", skills={"sepa"}, presence=Presence.offline), agent("ben", skills={"refunds"})]
    chosen, _, reason = choose(task(skills={"sepa"}), agents)
    assert chosen is None
    assert reason.code is Code.no_agent_online


# --- load ----------------------------------------------------------------------------------


def test_least_loaded_by_share_of_capacity():
    # ben holds more tasks but is less busy for his capacity.
    agents = [agent("ana", capacity=2, load=1), agent("ben", capacity=8, load=2)]
    chosen, state, reason = choose(task(), agents)
    assert chosen == "ben"
    assert reason.code is Code.assigned_least_loaded
    assert reason.explanation == "Assigned to ben. Lowest load (2/8) of 2 agents who fit."
    assert state.last_assigned == {"billing": "ben"}


def test_equal_shares_tie_exactly():
    agents = [agent("ana", capacity=3, load=1), agent("ben", capacity=6, load=2)]
    _, _, reason = choose(task(), agents)
    assert reason.code is Code.assigned_round_robin


# --- round robin ---------------------------------------------------------------------------


def test_equal_load_rotates_over_repeated_calls():
    agents = [agent("cem"), agent("ana"), agent("ben")]
    state = RoutingState()
    picked = []
    for _ in range(5):
        chosen, state, reason = choose(task(), agents, state)
        assert reason.code is Code.assigned_round_robin
        picked.append(chosen)
    assert picked == ["ana", "ben", "cem", "ana", "ben"]


def test_rotation_explains_the_tie():
    _, _, reason = choose(task(), [agent("ana"), agent("ben")], RoutingState(last_assigned={"billing": "ana"}))
    assert reason.explanation == (
        "Assigned to ben. 2 agents tied at the lowest load (0%): ana, ben; round robin picked the next after ana."
    )


def test_rotation_survives_the_last_agent_leaving():
    state = RoutingState(last_assigned={"billing": "ben"})
    agents = [agent("ana"), agent("cem")]  # ben went offline
    assert choose(task(), agents, state)[0] == "cem"
    assert choose(task(), [agent("ana"), agent("ben")], state)[0] == "ana"  # wraps round


def test_rotation_is_per_queue():
    state = RoutingState(last_assigned={"billing": "ana", "shipping": "ben"})
    agents = [agent("ana", queues={"billing", "shipping"}), agent("ben", queues={"billing", "shipping"})]
    chosen, new_state, _ = choose(task(queue="shipping"), agents, state)
    assert chosen == "ana"
    assert new_state.last_assigned == {"billing": "ana", "shipping": "ana"}


def test_input_state_is_not_changed():
    state = RoutingState(last_assigned={"billing": "ana"})
    choose(task(), [agent("ana"), agent("ben")], state)
    assert state == RoutingState(last_assigned={"billing": "ana"})


def test_agent_order_does_not_change_the_choice():
    agents = [agent("ana", load=1), agent("ben"), agent("cem"), agent("dov", load=2)]
    state = RoutingState(last_assigned={"billing": "ben"})
    assert choose(task(), agents, state) == choose(task(), list(reversed(agents)), state)


# --- VIP customers -------------------------------------------------------------------------


def test_vip_goes_to_a_senior_even_if_busier():
    agents = [agent("ana"), agent("ben", senior=True, load=3)]
    chosen, _, reason = choose(task(tier=CustomerTier.vip), agents)
    assert chosen == "ben"
    assert reason.code is Code.assigned_senior_for_vip
    assert reason.explanation.startswith("Assigned to ben. VIP customer, senior agent. ")


def test_vip_takes_the_least_loaded_senior():
    agents = [agent("ana", senior=True, load=2), agent("ben", senior=True, load=1), agent("cem")]
    assert choose(task(tier=CustomerTier.vip), agents)[0] == "ben"


def test_standard_customer_is_not_steered_to_seniors():
    agents = [agent("ana", senior=True, load=1), agent("ben")]
    chosen, _, reason = choose(task(tier=CustomerTier.standard), agents)
    assert chosen == "ben"
    assert reason.code is Code.assigned_least_loaded


def test_vip_falls_back_to_non_senior_by_default():
    # The senior is at capacity; another lacks the language: neither fits.
    agents = [
        agent("ana", senior=True, capacity=2, load=2),
        agent("ben", senior=True, languages={"fr"}),
        agent("cem"),
    ]
    chosen, _, reason = choose(task(tier=CustomerTier.vip), agents)
    assert chosen == "cem"
    assert reason.code is Code.assigned_non_senior_for_vip
    assert "no senior agent is free" in reason.explanation


def test_vip_waits_for_a_senior_when_policy_says_so():
    agents = [agent("ana", senior=True, capacity=2, load=2), agent("cem")]
    strict = RoutingPolicy(vip_fallback_to_non_senior=False)
    chosen, state, reason = choose(task(tier=CustomerTier.vip), agents, policy=strict)
    assert chosen is None
    assert reason.code is Code.no_senior_for_vip
    assert reason.explanation == (
        "Stays queued: VIP customer and no senior agent is free; 1 agent could take it,"
        " but the routing policy waits for a senior."
    )
    assert state == RoutingState()
    # The strict policy still assigns a senior who fits.
    assert choose(task(tier=CustomerTier.vip), [*agents, agent("dia", senior=True)], policy=strict)[0] == "dia"


@pytest.mark.parametrize("tier", [CustomerTier.vip, CustomerTier.standard])
def test_vip_rules_never_override_the_hard_requirements(tier):
    agents = [agent("ana", senior=True, skills={"sepa"}), agent("ben", senior=True, presence=Presence.away)]
    chosen, _, reason = choose(task(tier=tier), agents)
    assert chosen is None
    assert reason.code is Code.no_agent_online  # ben has the skill but is away


def test_contracts_survive_serialisation():
    profile = agent("ana", skills={"b", "a", "c"})
    assert profile.model_dump(mode="json")["skills"] == ["a", "b", "c"]
    assert AgentProfile.model_validate_json(profile.model_dump_json()) == profile
    requirements = task(tier="vip", priority="urgent")
    assert TaskRequirements.model_validate_json(requirements.model_dump_json()) == requirements


def test_naive_queued_at_is_refused():
    with pytest.raises(ValueError, match="timezone"):
        task(queued_at=datetime(2024, 3, 4, 9))
