"""SLA policies: what a ticket is promised, and what happens when the promise is broken.

Policies are data (loaded from configuration, passed into the workflow when the ticket is
opened) so a replay sees the policy the original run saw.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from models.enums import CustomerTier, Priority




class SlaTargetKind(StrEnum):
    first_response = "first_response"
    resolution = "resolution"


class SlaTarget(BaseModel):
    """Business-time budgets, counted on the ticket's business calendar."""

    model_config = ConfigDict(frozen=True)

    first_response: timedelta
    resolution: timedelta

    @field_validator("first_response", "resolution")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("an SLA target must be a positive duration")
        return value

    def budget(self, kind: SlaTargetKind) -> timedelta:
        return self.first_response if kind is SlaTargetKind.first_response else self.resolution


class _EscalationBase(BaseModel):
    model_config = ConfigDict(frozen=True)

    on_breach_of: SlaTargetKind | None = Field(
        default=None, description="Which target's breach triggers this step; none means either."
    )


class RaisePriority(_EscalationBase):
    action: Literal["raise_priority"] = "raise_priority"


class MoveToQueue(_EscalationBase):
    action: Literal["move_to_queue"] = "move_to_queue"
    queue: str = Field(min_length=1)


class Notify(_EscalationBase):
    action: Literal["notify"] = "notify"
    # "recipient" rather than "target" so it is not confused with an SLA target.
    recipient: str = Field(min_length=1, description="A supervisor, team or channel name, resolved by an activity.")


EscalationStep = Annotated[RaisePriority | MoveToQueue | Notify, Field(discriminator="action")]


class SlaPolicy(BaseModel):
    """The SLA for one priority, optionally narrowed to a department and/or customer tier."""

    model_config = ConfigDict(frozen=True)

    priority: Priority
    department: str | None = None
    tier: CustomerTier | None = None
    target: SlaTarget
    warn_at: float | None = Field(
        default=0.8, gt=0, lt=1, description="Share of each budget after which a warning fires; none disables it."
    )
    escalations: list[EscalationStep] = Field(default_factory=list)

    def escalations_for(self, breached: SlaTargetKind) -> list[EscalationStep]:
        """The steps the workflow runs when ``breached`` is breached, in configured order."""
        return [step for step in self.escalations if step.on_breach_of in (None, breached)]


class NoSlaPolicyError(LookupError):
    """No policy covers the ticket: a configuration gap to fix, not a ticket problem."""


def resolve_policy(
    policies: Iterable[SlaPolicy],
    priority: Priority,
    department: str | None = None,
    tier: CustomerTier | None = None,
) -> SlaPolicy:
    """The most specific policy for a ticket.

    Precedence: department and tier > tier only > department only > priority only. Tier
    beats department because a tier SLA is a promise made to the customer in a contract,
    while a department override is an internal operating choice.

    Raises ``NoSlaPolicyError`` when nothing matches and ``ValueError`` when two policies
    are equally specific, so an ambiguous configuration fails loudly instead of depending
    on list order. Validate configurations with this before handing them to workflows.
    """
    best: list[SlaPolicy] = []
    best_rank: tuple[bool, bool] | None = None
    for policy in policies:
        if policy.priority != priority:
            continue
        if policy.department is not None and policy.department != department:
            continue
        if policy.tier is not None and policy.tier != tier:
            continue
        rank = (policy.tier is not None, policy.department is not None)
        if best_rank is None or rank > best_rank:
            best, best_rank = [policy], rank
        elif rank == best_rank:
            best.append(policy)
    if not best:
        raise NoSlaPolicyError(
            f"no SLA policy for priority {priority} (department {department or 'none'}, tier {tier or 'none'});"
            " add one without department and tier as the default for that priority"
        )
    if len(best) > 1:
        raise ValueError(
            f"{len(best)} SLA policies are equally specific for priority {priority}"
            f" (department {best[0].department or 'any'}, tier {best[0].tier or 'any'}); keep one"
        )
    return best[0]
