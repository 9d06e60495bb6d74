"""What-if: recorded tickets re-evaluated under another SLA policy or other FAQ thresholds.

Nothing is re-run. The SLA clock is pure code (``sla/``): each ticket's recorded timeline
(when it opened, when it waited on the customer, when an agent first answered, when it was
resolved) is played through a clock under the other policy, and the breaches it would have
had are compared with those it had. The FAQ bot's recorded confidence for each ticket is
held against another threshold: automatic answers gained and lost, and, for the answers the
customers judged ("helpful" / "not helpful"), the precision the new threshold would have had.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio.converter import DataConverter

from audit.archive import TicketRecord
from cli.divergence import decoded_json
from models.enums import Priority
from models.ticket import TicketInput, TicketStatus, TimelineEvent
from sla.clock import SlaClock, SlaEventKind
from sla.config import SlaConfig
from sla.policy import CustomerTier, SlaTargetKind

WAITING_ON_CUSTOMER = {TicketStatus.waiting_customer.value, TicketStatus.bot_answered.value}
DONE = {TicketStatus.resolved.value, TicketStatus.closed.value}
AGENT_REPLY_KEY = re.compile(r"-t\d+$")  # an agent's reply is sent under its task's id


@dataclass
class Recorded:
    """What a ticket's history says, as far as what-if needs it."""

    ticket_id: str
    inp: TicketInput
    timeline: list[TimelineEvent]
    department: str  # when its SLA clock started (after triage)
    tier: CustomerTier

    def breaches(self) -> set[str]:
        return {e.data.get("target") for e in self.timeline if e.kind == "sla_breached"}

    def faq(self) -> tuple[float | None, str | None]:
        """The bot's confidence, and the customer's verdict on its answer (if it answered)."""
        asked = next((e for e in self.timeline if e.kind in ("faq_answer", "faq_no_answer")), None)
        verdict = next((e.detail for e in self.timeline if e.kind == "faq_feedback"), None)
        return (asked.data.get("confidence") if asked else None), verdict

    def answered(self) -> bool:
        return any(e.kind == "faq_answer" for e in self.timeline)


def read(record: TicketRecord, converter: DataConverter) -> Recorded:
    """The ticket's input and its whole timeline, from every run's projections."""
    codec = converter.payload_codec
    entries: dict[int, TimelineEvent] = {}
    inp: TicketInput | None = None
    department: str | None = None
    tier: CustomerTier | None = None
    for history in record.histories():
        for e in history.events:
            if e.HasField("workflow_execution_started_event_attributes") and inp is None:
                [value] = decoded_json(e.workflow_execution_started_event_attributes.input.payloads, codec)
                inp = TicketInput.model_validate(value)
            if not e.HasField("activity_task_scheduled_event_attributes"):
                continue
            a = e.activity_task_scheduled_event_attributes
            name = a.activity_type.name
            values = decoded_json(a.input.payloads, codec)
            if not values:
                continue
            if name == "project_task" and tier is None:
                tier = CustomerTier(values[0].get("customer_tier", "standard"))
            if name not in ("project_ticket", "project_ticket_changes"):
                continue
            ticket = values[0].get("ticket", values[0])
            start = values[0].get("timeline_from", 0) if name == "project_ticket_changes" else 0
            new = [TimelineEvent.model_validate(t) for t in ticket.get("timeline", [])]
            for i, entry in enumerate(new):
                entries[start + i] = entry
            if department is None and any(t.kind in ("sla_started", "status") for t in new):
                department = ticket.get("department")
    if inp is None:
        raise ValueError(f"ticket {record.ticket_id}: its history has no start event")
    timeline = [entries[i] for i in sorted(entries)]
    return Recorded(record.ticket_id, inp, timeline, department or inp.department,
                    inp.customer_tier or tier or CustomerTier.standard)


def simulate_breaches(recorded: Recorded, config: SlaConfig) -> set[str]:
    """The targets the ticket would have breached under `config`."""
    policy = config.policy_for(Priority(recorded.inp.priority), recorded.department, recorded.tier)
    clock = SlaClock(calendar=config.calendar, policy=policy)
    breached: set[str] = set()

    def note(events: list) -> None:  # noqa: ANN001
        breached.update(ev.target.value for ev in events if ev.kind == SlaEventKind.breached)

    note(clock.start(recorded.inp.opened_at))
    first_reply_met = False
    end: datetime = recorded.inp.opened_at
    for event in recorded.timeline:
        at = max(event.at, recorded.inp.opened_at)
        end = max(end, at)
        note(clock.on_timer(at))
        if event.kind == "status" and " -> " in event.detail:
            before, after = event.detail.split(":", 1)[0].split(" -> ", 1)
            if after in WAITING_ON_CUSTOMER and clock.status.value == "running":
                note(clock.pause(at))
            elif before in WAITING_ON_CUSTOMER and clock.status.value == "paused":
                note(clock.resume(at))
            if after in DONE:
                for target in SlaTargetKind:
                    note(clock.met(at, target))
        elif (event.kind in ("reply_sent", "reply_undelivered") and not first_reply_met
              and AGENT_REPLY_KEY.search(str(event.data.get("key", "")))):
            note(clock.met(at, SlaTargetKind.first_response))
            first_reply_met = True
    note(clock.on_timer(end))
    return breached


@dataclass
class SlaChange:
    ticket_id: str
    before: set[str]
    after: set[str]


@dataclass
class WhatIf:
    tickets: int = 0
    sla_checked: bool = False
    sla: list[SlaChange] = field(default_factory=list)  # tickets whose breaches change
    breaches_before: int = 0
    breaches_after: int = 0
    faq_threshold: float | None = None
    answered_before: int = 0
    answered_after: int = 0
    gained: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    verdicts_before: dict[str, int] = field(default_factory=dict)
    verdicts_after: dict[str, int] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)

    def precision(self, verdicts: dict[str, int]) -> float | None:
        judged = verdicts.get("helpful", 0) + verdicts.get("not_helpful", 0)
        return verdicts.get("helpful", 0) / judged if judged else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "tickets": self.tickets, "unreadable": self.unreadable,
            "sla": None if not self.sla_checked else {
                "breaches_before": self.breaches_before, "breaches_after": self.breaches_after,
                "added": sum(len(c.after - c.before) for c in self.sla),
                "avoided": sum(len(c.before - c.after) for c in self.sla),
                "changed": [{"ticket_id": c.ticket_id, "before": sorted(c.before), "after": sorted(c.after)}
                            for c in self.sla]},
            "faq": None if self.faq_threshold is None else {
                "threshold": self.faq_threshold, "answered_before": self.answered_before,
                "answered_after": self.answered_after, "gained": self.gained, "lost": self.lost,
                "precision_before": self.precision(self.verdicts_before),
                "precision_after": self.precision(self.verdicts_after),
                "judged_after": self.verdicts_after},
        }


def what_if(records: Iterable[TicketRecord], converter: DataConverter, *, sla: SlaConfig | None = None,
            faq_threshold: float | None = None) -> WhatIf:
    result = WhatIf(faq_threshold=faq_threshold, sla_checked=sla is not None)
    for record in records:
        try:
            recorded = read(record, converter)
        except ValueError:
            result.unreadable.append(record.ticket_id)
            continue
        result.tickets += 1
        if sla is not None:
            before, after = recorded.breaches(), simulate_breaches(recorded, sla)
            result.breaches_before += len(before)
            result.breaches_after += len(after)
            if before != after:
                result.sla.append(SlaChange(record.ticket_id, before, after))
        if faq_threshold is not None:
            confidence, verdict = recorded.faq()
            if confidence is None:
                continue
            was, would = recorded.answered(), confidence >= faq_threshold
            result.answered_before += was
            result.answered_after += would
            if would and not was:
                result.gained.append(record.ticket_id)
            if was and not would:
                result.lost.append(record.ticket_id)
            if verdict is not None and was:
                result.verdicts_before[verdict] = result.verdicts_before.get(verdict, 0) + 1
                if would:
                    result.verdicts_after[verdict] = result.verdicts_after.get(verdict, 0) + 1
    return result
