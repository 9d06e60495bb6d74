"""Small enums shared by contracts, tables and the pure libraries (sla/, routing/).

This module imports nothing beyond the standard library, so workflow code and the pure
libraries can use it without pulling in SQLModel."""

from __future__ import annotations

from enum import StrEnum


class Priority(StrEnum):
    """Ticket and task priority, lowest first."""

    low = "low"
    normal = "normal"
    high = "high"
    urgent = "urgent"

    @property
    def rank(self) -> int:
        """Higher is more urgent; for ordering queues."""
        return list(Priority).index(self)

    def raised(self) -> "Priority":
        order = list(Priority)
        return order[min(self.rank + 1, len(order) - 1)]


class CustomerTier(StrEnum):
    standard = "standard"
    vip = "vip"
