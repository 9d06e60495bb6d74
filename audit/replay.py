"""Replay many tickets against today's code, and check their decisions, not only their order.

Temporal's replay compares the order and kind of commands: a refund of 25 where the history
refunded 20 replays "fine". Here, while each history replays, a workflow interceptor notes
every activity the code schedules and every update result it gives; they are compared with
the recorded ones, field by field, for the fields that carry a decision (``DECISION_FIELDS``):
the refund's order, amount and key, the text of each message, the queue, priority and SLA
due time of each task, what was asked of the router and the FAQ bot. A field the history did
not record (a newer field) is not compared. A difference is a *divergence of decision*.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from pydantic_core import to_jsonable_python
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import (
    HandleUpdateInput,
    Interceptor,
    Replayer,
    StartActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from audit.archive import TicketRecord
from cli.divergence import activity_words, decoded_json, explain, quiet_runtime

# Per activity, the fields of its input that carry a decision (None: all of them). Paths
# go into nested objects with dots.
DECISION_FIELDS: dict[str, list[str] | None] = {
    "create_refund": ["order_id", "amount", "idempotency_key", "customer_id", "decided_by", "department"],
    "create_return_label": ["order_id", "skus", "idempotency_key"],
    "deliver_reply": ["text", "author", "idempotency_key", "channel"],
    "route_task": ["requirements.queue", "requirements.priority", "requirements.skills", "requirements.tier",
                   "requirements.language"],
    "offer_queued": ["queues"],
    "answer_faq": ["text", "language"],
    "lookup_orders": None,
    "find_shipments": None,
    "find_external_tickets": None,
    "track_shipment": None,
    "project_task": ["task_id", "kind", "queue", "priority", "status", "assignee", "outcome", "due_at",
                     "allowed_outcomes"],
    "project_ticket": ["status", "priority", "department", "resolution"],
    "project_ticket_changes": ["ticket.status", "ticket.priority", "ticket.department", "ticket.resolution"],
}
UPDATE_FIELDS = ["task_id", "status", "assignee", "outcome", "queue", "priority", "due_at"]

# What the interceptor saw, per (workflow id, run id): ("activity" | "update", name, value).
_SEEN: dict[tuple[str, str], list[tuple[str, str, Any]]] = {}


def _json_of(values: Iterable[Any]) -> list[Any]:
    converter = workflow.payload_converter()
    return [json.loads(p.data) for p in converter.to_payloads(list(values))]


def _attr(value: Any, path: str) -> Any:  # noqa: ANN401
    for part in path.split("."):
        value = value.get(part, _ABSENT) if isinstance(value, dict) else getattr(value, part, _ABSENT)
        if value is _ABSENT:
            return _ABSENT
    return value


def _decision_of(args: list[Any], fields: list[str] | None) -> Any:  # noqa: ANN401
    """What the code decided, in the JSON form the history holds it: only the decision fields
    of a single argument (serializing whole read-model snapshots would cost most of the
    replay), or everything where every field decides."""
    if fields is None or len(args) != 1:
        values = _json_of(args)
        return values[0] if len(values) == 1 else values
    picked = {}
    for path in fields:
        value = _attr(args[0], path)
        if value is not _ABSENT:
            picked[path] = to_jsonable_python(value)
    return picked


class _Outbound(WorkflowOutboundInterceptor):
    def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle:
        info = workflow.info()
        _SEEN.setdefault((info.workflow_id, info.run_id), []).append(
            ("activity", input.activity, _decision_of(list(input.args), DECISION_FIELDS.get(input.activity, []))))
        return super().start_activity(input)


class _Inbound(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_Outbound(outbound))

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:  # noqa: ANN401
        result = await super().handle_update_handler(input)
        info = workflow.info()
        _SEEN.setdefault((info.workflow_id, info.run_id), []).append(
            ("update", input.update, _decision_of([result], UPDATE_FIELDS)))
        return result


class DecisionRecorder(Interceptor):
    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        return _Inbound


def _pick(value: Any, path: str) -> Any:  # noqa: ANN401
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _ABSENT
        value = value[part]
    return value


_ABSENT = object()


def _differences(recorded: Any, replayed: Any, fields: list[str] | None) -> list[str]:  # noqa: ANN401
    if fields is None:
        return [] if recorded == replayed else [f"{json.dumps(recorded)[:200]} -> {json.dumps(replayed)[:200]}"]
    found = []
    for path in fields:
        before, after = _pick(recorded, path), replayed.get(path, _ABSENT)
        if before is _ABSENT:
            continue
        if after is _ABSENT:
            after = None
        if _normal(before) != _normal(after):
            found.append(f"{path}: {json.dumps(before)[:200]} -> {json.dumps(after)[:200]}")
    return found


def _normal(value: Any) -> Any:  # noqa: ANN401
    """Sets travel as lists in no given order; numbers as strings or numbers."""
    if isinstance(value, list):
        return sorted(json.dumps(_normal(v), sort_keys=True) for v in value)
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    return value


def recorded_decisions(history: WorkflowHistory, converter: DataConverter) -> list[tuple[str, str, Any, int]]:
    """What the history holds, in order: ("activity" | "update", name, value, event id)."""
    codec = converter.payload_codec
    found: list[tuple[str, str, Any, int]] = []
    update_names: dict[str, str] = {}
    for e in history.events:
        if e.HasField("activity_task_scheduled_event_attributes"):
            a = e.activity_task_scheduled_event_attributes
            found.append(("activity", a.activity_type.name, decoded_json(a.input.payloads, codec), e.event_id))
        elif e.HasField("workflow_execution_update_accepted_event_attributes"):
            a = e.workflow_execution_update_accepted_event_attributes
            update_names[a.protocol_instance_id] = a.accepted_request.input.name
        elif e.HasField("workflow_execution_update_completed_event_attributes"):
            a = e.workflow_execution_update_completed_event_attributes
            if a.outcome.HasField("success"):
                name = update_names.get(a.meta.update_id, a.meta.update_id)
                found.append(("update", name, decoded_json(a.outcome.success.payloads, codec), e.event_id))
    return found


@dataclass
class DecisionDivergence:
    event_id: int
    what: str
    differences: list[str]

    def __str__(self) -> str:
        return f"event {self.event_id}, {self.what}: " + "; ".join(self.differences)


def compare(history: WorkflowHistory, converter: DataConverter) -> list[DecisionDivergence]:
    """The decisions of today's code (noted while `history` replayed) against the recorded ones."""
    seen = _SEEN.pop((history.workflow_id, history.run_id), [])
    recorded = recorded_decisions(history, converter)
    found = []
    for kind in ("activity", "update"):
        mine = [r for r in recorded if r[0] == kind]
        theirs = [s for s in seen if s[0] == kind]
        for (_, name, before, event_id), (_, now_name, after) in zip(mine, theirs, strict=False):
            if name != now_name:
                continue  # a difference of command order: plain replay reports it
            values_before = before[0] if len(before) == 1 else before
            fields = DECISION_FIELDS.get(name, []) if kind == "activity" else UPDATE_FIELDS
            diffs = _differences(values_before, after, fields)
            if diffs:
                what = activity_words(name) if kind == "activity" else f"the result of the update {name}"
                found.append(DecisionDivergence(event_id, what, diffs))
    return sorted(found, key=lambda d: d.event_id)


@dataclass
class TicketReplay:
    ticket_id: str
    case_type: str
    runs: int
    events: int
    result: str  # "ok", "diverged" (commands), "decision" (same commands, different decisions)
    details: list[str] = field(default_factory=list)


async def replay_tickets(records: Iterable[TicketRecord], *, workflows: list[type], converter: DataConverter,
                         runner: Any = None, batch: int = 100,  # noqa: ANN401
                         progress: Callable[[int], None] = lambda n: None) -> AsyncIterator[TicketReplay]:
    """Replay each ticket's runs against `workflows` (``Replayer.replay_workflows``, `batch`
    tickets at a time), checking decisions; one result per ticket. A run that diverges is
    replayed again in prefixes to say where and how."""
    extra = {"workflow_runner": runner} if runner is not None else {}
    checking = Replayer(workflows=workflows, data_converter=converter, interceptors=[DecisionRecorder()],
                        runtime=quiet_runtime(), **extra)
    plain = Replayer(workflows=workflows, data_converter=converter, runtime=quiet_runtime(), **extra)
    pending: list[TicketRecord] = []
    for record in records:
        pending.append(record)
        if len(pending) >= batch:
            async for outcome in _replay_batch(pending, checking, plain, converter, progress):
                yield outcome
            pending = []
    async for outcome in _replay_batch(pending, checking, plain, converter, progress):
        yield outcome


async def _replay_batch(records: list[TicketRecord], checking: Replayer, plain: Replayer, converter: DataConverter,
                        progress: Callable[[int], None]) -> AsyncIterator[TicketReplay]:
    if not records:
        return
    runs = [(record, record.histories()) for record in records]

    async def histories() -> AsyncIterator[WorkflowHistory]:
        for _, hs in runs:
            for h in hs:
                yield h

    results = await checking.replay_workflows(histories(), raise_on_replay_failure=False)
    for record, hs in runs:
        outcome = TicketReplay(record.ticket_id, record.case_type, len(hs), record.event_count, "ok")
        for history in hs:
            failure = results.replay_failures.get(history.run_id)
            if failure is not None:
                _SEEN.pop((history.workflow_id, history.run_id), None)
                divergence = await explain(plain, history, codec=converter.payload_codec)
                outcome.result = "diverged"
                outcome.details.append(str(divergence) if divergence else str(failure))
                continue
            decisions = compare(history, converter)
            if decisions and outcome.result == "ok":
                outcome.result = "decision"
            outcome.details.extend(str(d) for d in decisions)
        progress(1)
        yield outcome


# --- reports ----------------------------------------------------------------------------------


def table(results: list[TicketReplay]) -> str:
    lines = [f"{'ticket':<36} {'case type':<16} {'runs':>4} {'events':>6}  result"]
    for r in results:
        lines.append(f"{r.ticket_id:<36} {r.case_type:<16} {r.runs:>4} {r.events:>6}  "
                     + {"ok": "OK", "diverged": "DIVERGED", "decision": "DECISION CHANGED"}[r.result])
        lines.extend(f"    {d}" for d in r.details)
    ok = sum(r.result == "ok" for r in results)
    lines.append(f"{len(results)} tickets: {ok} ok, {len(results) - ok} diverged")
    return "\n".join(lines)


def as_json(results: list[TicketReplay]) -> str:
    return json.dumps({"tickets": [asdict(r) for r in results],
                       "ok": sum(r.result == "ok" for r in results), "total": len(results)}, indent=1)


def junit(results: list[TicketReplay]) -> str:
    failures = sum(r.result != "ok" for r in results)
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           f'<testsuite name="ticketflow-replay" tests="{len(results)}" failures="{failures}" errors="0">']
    for r in results:
        out.append(f"  <testcase classname={quoteattr(r.case_type)} name={quoteattr(r.ticket_id)}>")
        if r.result != "ok":
            message = "commands diverged" if r.result == "diverged" else "decisions changed"
            out.append(f"    <failure message={quoteattr(message)}>{escape(chr(10).join(r.details))}</failure>")
        out.append("  </testcase>")
    out.append("</testsuite>")
    return "\n".join(out) + "\n"
