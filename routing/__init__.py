"""Agent routing: which agent gets a task, and why.

Pure and deterministic (no clock, no randomness, no I/O): the workflow passes in the agent
snapshot an activity fetched and keeps the returned ``RoutingState`` for the next call.
"""

from routing.engine import choose_agent, offer_queued
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

__all__ = [
    "AgentProfile",
    "Assignment",
    "Presence",
    "RoutingPolicy",
    "RoutingReason",
    "RoutingReasonCode",
    "RoutingState",
    "TaskRequirements",
    "choose_agent",
    "offer_queued",
]
