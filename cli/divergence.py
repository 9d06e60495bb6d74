"""Replay that says where and how today's code departs from a recorded history, in the
case's own words rather than Temporal's command and event ids.

The event where the code first decides differently is found by replaying growing prefixes
of the history (a binary search: a prefix ending before the divergence replays cleanly). The
report names that event, what the history did there and what the code does now, and the
case's last recorded decision before it (from the read-model projections in the history).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.converter import PayloadCodec
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.worker import Replayer

# What each activity does, in the words of the case.
ACTIVITY_WORDS = {
    "project_ticket": "write the ticket to the read model",
    "project_ticket_changes": "write the ticket's changes to the read model",
    "project_task": "write a task to the read model",
    "route_task": "route a task to an agent",
    "offer_queued": "offer queued tasks to agents",
    "deliver_reply": "send a reply to the customer",
    "answer_faq": "ask the FAQ bot",
    "lookup_orders": "look up the customer's orders in the ERP",
    "find_shipments": "look up the customer's parcels at the carrier",
    "find_external_tickets": "look up the customer's tickets in the older helpdesk",
    "create_refund": "make a refund in the ERP",
    "mirror_ticket": "mirror the ticket into the older helpdesk",
    "send_chat_reply": "post a reply in the customer's chat",
    "prune_change_feed": "prune the change feed",
    "track_shipment": "ask the carrier where a parcel is",
    "create_return_label": "have the carrier make a return label",
}
COMMAND_WORDS = {
    "ActivityTaskScheduled": "schedule an activity",
    "TimerStarted": "start a durable timer (an SLA target, a quiet period, a wait for the customer)",
    "WorkflowExecutionCompleted": "finish the case",
    "WorkflowExecutionContinuedAsNew": "continue as a new run",
    "MarkerRecorded": "record a marker (a version patch)",
    "WorkflowExecutionUpdateCompleted": "answer an agent's action",
    "SignalExternalWorkflowExecutionInitiated": "signal another workflow",
    "StartChildWorkflowExecutionInitiated": "start a child workflow",
}


@dataclass
class Divergence:
    case: str  # the workflow id
    event_id: int
    event_type: str
    history_did: str
    code_does: str
    last_decision: str | None
    temporal_says: str

    def __str__(self) -> str:
        where = f" The case had last recorded: {self.last_decision}." if self.last_decision else ""
        return (f"{self.case} diverges at event {self.event_id} ({self.event_type}): the history did "
                f"\"{self.history_did}\"; today's code does \"{self.code_does}\".{where}\n"
                f"  Temporal says: {self.temporal_says}")


def _event_type(event) -> str:  # noqa: ANN001
    return EventType.Name(event.event_type).removeprefix("EVENT_TYPE_").title().replace("_", "")


def activity_words(name: str) -> str:
    return f"{ACTIVITY_WORDS[name]} ({name})" if name in ACTIVITY_WORDS else f"run activity {name}"


def what_the_event_did(event) -> str:  # noqa: ANN001
    kind = _event_type(event)
    if event.HasField("activity_task_scheduled_event_attributes"):
        return activity_words(event.activity_task_scheduled_event_attributes.activity_type.name)
    if event.HasField("timer_started_event_attributes"):
        after = event.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
        return f"start a durable timer of {after}"
    if event.HasField("marker_recorded_event_attributes"):
        return f"record the marker {event.marker_recorded_event_attributes.marker_name}"
    return COMMAND_WORDS.get(kind, kind)


def temporal_message(error: BaseException) -> str:
    """Temporal's own sentence, without the Rust structures around it."""
    text = str(error)
    found = re.search(r'message: "(.*?)", source:', text)
    return (found.group(1) if found else text).strip()


def what_the_code_does(message: str) -> str:
    command = re.search(r"activity command '([^']+)'", message)
    if command:
        return activity_words(command.group(1))
    if "No command scheduled for event" in message or "has no command" in message:
        return "nothing at that point (the step that made this decision is gone or moved)"
    lookup = {
        "TimerStarted": "start a timer", "ActivityTaskScheduled": "schedule an activity",
        "CompleteWorkflowExecution": "finish the case", "ContinueAsNew": "continue as a new run",
    }
    for key, words in lookup.items():
        if key in message:
            return f"{words} instead"
    return "something else (see Temporal's message)"


def decoded_json(payloads, codec: PayloadCodec | None) -> list:  # noqa: ANN001
    items = list(payloads)
    if codec is not None:
        items = codec.decode_sync(items) if hasattr(codec, "decode_sync") else items
    values = []
    for payload in items:
        try:
            values.append(json.loads(payload.data))
        except ValueError:
            continue
    return values


def last_decision_before(history: WorkflowHistory, event_id: int, codec: PayloadCodec | None = None) -> str | None:
    """The newest timeline entry the case projected before `event_id`."""
    last = None
    for event in history.events:
        if event.event_id >= event_id:
            break
        if not event.HasField("activity_task_scheduled_event_attributes"):
            continue
        attrs = event.activity_task_scheduled_event_attributes
        if attrs.activity_type.name not in ("project_ticket", "project_ticket_changes"):
            continue
        for value in decoded_json(attrs.input.payloads, codec):
            ticket = value.get("ticket", value) if isinstance(value, dict) else {}
            timeline = ticket.get("timeline") or []
            if timeline:
                entry = timeline[-1]
                detail = entry.get("detail")
                last = f"{entry.get('kind')} ({detail})" if detail else str(entry.get("kind"))
    return last


@lru_cache(maxsize=1)
def quiet_runtime() -> Runtime:
    """A Temporal runtime that logs errors only: searching for a divergence replays failing
    prefixes on purpose, and each would print a warning."""
    return Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
        filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))))


async def _replays(replayer: Replayer, workflow_id: str, events: Sequence) -> BaseException | None:  # noqa: ANN001
    partial = WorkflowHistory(workflow_id, list(events))
    result = await replayer.replay_workflow(partial, raise_on_replay_failure=False)
    return result.replay_failure


async def explain(replayer: Replayer, history: WorkflowHistory, *, codec: PayloadCodec | None = None,
                  progress: Callable[[int], None] | None = None) -> Divergence | None:
    """None if the history replays; otherwise where it first diverges, and how."""
    failure = await _replays(replayer, history.workflow_id, history.events)
    if failure is None:
        return None
    events = history.events
    good, bad = 0, len(events)  # a prefix of `good` events replays; one of `bad` does not
    while bad - good > 1:
        middle = (good + bad) // 2
        if progress:
            progress(middle)
        if await _replays(replayer, history.workflow_id, events[:middle]) is None:
            good = middle
        else:
            bad = middle
    event = events[bad - 1]
    message = temporal_message(failure)
    return Divergence(
        case=history.workflow_id, event_id=event.event_id, event_type=_event_type(event),
        history_did=what_the_event_did(event), code_does=what_the_code_does(message),
        last_decision=last_decision_before(history, event.event_id, codec), temporal_says=message,
    )
