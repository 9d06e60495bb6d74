"""Business-hours SLA arithmetic, SLA policies and the per-ticket SLA clock.

Pure and deterministic (no clock, no I/O, no settings): workflow code calls it directly,
importing it inside ``workflow.unsafe.imports_passed_through()``.
"""

from sla.business_hours import (
    BusinessCalendar,
    Weekday,
    WorkingHours,
    add_business_time,
    business_time_between,
    is_business_time,
    next_business_moment,
)
from sla.clock import (
    ClockStatus,
    DeadlineKind,
    SlaClock,
    SlaClockError,
    SlaDeadline,
    SlaEvent,
    SlaEventKind,
    TargetProgress,
)
from sla.policy import (
    CustomerTier,
    EscalationStep,
    MoveToQueue,
    NoSlaPolicyError,
    Notify,
    Priority,
    RaisePriority,
    SlaPolicy,
    SlaTarget,
    SlaTargetKind,
    resolve_policy,
)

__all__ = [
    "BusinessCalendar",
    "ClockStatus",
    "CustomerTier",
    "DeadlineKind",
    "EscalationStep",
    "MoveToQueue",
    "NoSlaPolicyError",
    "Notify",
    "Priority",
    "RaisePriority",
    "SlaClock",
    "SlaClockError",
    "SlaDeadline",
    "SlaEvent",
    "SlaEventKind",
    "SlaPolicy",
    "SlaTarget",
    "SlaTargetKind",
    "TargetProgress",
    "Weekday",
    "WorkingHours",
    "add_business_time",
    "business_time_between",
    "is_business_time",
    "next_business_moment",
    "resolve_policy",
]
