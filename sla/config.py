"""A deployment's SLA configuration: one business calendar and its SLA policies."""

from __future__ import annotations

from pydantic import BaseModel, model_validator

from models.enums import Priority
from sla.business_hours import BusinessCalendar
from sla.policy import CustomerTier, SlaPolicy, resolve_policy


class SlaConfig(BaseModel):
    calendar: BusinessCalendar
    policies: list[SlaPolicy]

    @model_validator(mode="after")
    def _every_ticket_has_exactly_one_policy(self) -> "SlaConfig":
        # Fail when the configuration loads, not when the first ticket of an uncovered kind arrives.
        departments = {p.department for p in self.policies}
        for priority in Priority:
            for tier in (None, *CustomerTier):
                for department in departments:
                    resolve_policy(self.policies, priority, department, tier)
        return self

    def policy_for(self, priority: Priority, department: str, tier: CustomerTier | None) -> SlaPolicy:
        return resolve_policy(self.policies, priority, department, tier)
