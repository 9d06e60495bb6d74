"""Contracts of the routing engine. They cross Temporal, so they only grow by adding
fields with defaults."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer

from sla.policy import CustomerTier, Priority

# Sets serialise as sorted lists: set iteration order changes with the hash seed, and
# payloads in workflow history should not differ between two workers for the same data.
NameSet = Annotated[frozenset[str], PlainSerializer(sorted, return_type=list[str])]


class Presence(StrEnum):
    online = "online"
    away = "away"
    offline = "offline"


class AgentProfile(BaseModel):
    """An agent as routing sees them, snapshotted by an activity before each decision."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1)
    skills: NameSet = frozenset()
    languages: NameSet = Field(default=frozenset(), description="Language tags, e.g. 'de', 'en-GB'.")
    queues: NameSet = Field(default=frozenset(), description="Department queues the agent works, e.g. 'billing'.")
    capacity: int = Field(ge=0, description="Most tasks the agent handles at once.")
    load: int = Field(default=0, ge=0, description="Tasks the agent holds now.")
    presence: Presence = Presence.offline
    senior: bool = False


class TaskRequirements(BaseModel):
    """What a task needs from its agent. ``queue`` is the department queue, as on the task."""

    model_config = ConfigDict(frozen=True)

    task_id: str = Field(min_length=1)
    queue: str = Field(min_length=1)
    skills: NameSet = frozenset()
    language: str | None = None
    priority: Priority = Priority.normal
    tier: CustomerTier = CustomerTier.standard
    queued_at: AwareDatetime = Field(description="When the task entered its queue; older waits go first.")


class RoutingPolicy(BaseModel):
    model_config = ConfigDict(frozen=True)

    vip_fallback_to_non_senior: bool = Field(
        default=True,
        description=(
            "When no senior agent fits a VIP task, give it to a fitting non-senior agent instead of "
            "waiting. On by default: a VIP left queued beside an idle, qualified agent misses its SLA "
            "for nothing."
        ),
    )


class RoutingState(BaseModel):
    """Round-robin memory: the agent last given a task, per queue.

    Remembering an agent id rather than a list position keeps the rotation fair when
    agents join, leave or change presence between decisions.
    """

    last_assigned: dict[str, str] = Field(default_factory=dict)


class RoutingReasonCode(StrEnum):
    assigned_least_loaded = "assigned_least_loaded"
    assigned_round_robin = "assigned_round_robin"  # several agents tied on load
    assigned_senior_for_vip = "assigned_senior_for_vip"
    assigned_non_senior_for_vip = "assigned_non_senior_for_vip"  # fallback, no senior fitted
    no_agent_in_queue = "no_agent_in_queue"
    no_agent_with_skills = "no_agent_with_skills"
    no_agent_speaks_language = "no_agent_speaks_language"
    no_agent_online = "no_agent_online"
    all_agents_at_capacity = "all_agents_at_capacity"
    no_senior_for_vip = "no_senior_for_vip"


class RoutingReason(BaseModel):
    """Why a task went to an agent or stayed queued; shown to supervisors.

    ``code`` is for filtering and metrics, ``explanation`` is for people.
    """

    code: RoutingReasonCode
    explanation: str

    @property
    def assigned(self) -> bool:
        return self.code.value.startswith("assigned_")


class Assignment(BaseModel):
    task_id: str
    agent_id: str
    reason: RoutingReason
