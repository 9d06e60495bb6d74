"""Contracts of the routing activities (who gets a task, offering queued tasks)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from routing.models import TaskRequirements


class RouteRequest(BaseModel):
    """Pick an agent for one open task and reserve them, atomically."""

    ticket_id: str
    workflow_id: str
    requirements: TaskRequirements


class RouteDecision(BaseModel):
    agent_id: str | None = Field(description="None: nobody fits now; the task stays queued.")
    code: str = Field(description="Machine-readable reason, from routing.RoutingReason.code.")
    reason: str = Field(description="Why, for supervisors.")


class OfferRequest(BaseModel):
    """Capacity may have freed up in these queues: offer their waiting tasks."""

    queues: list[str]


class OfferResult(BaseModel):
    assigned: dict[str, str] = Field(default_factory=dict, description="task id -> agent id")
