"""What auditors read through the API: a ticket's workflow history, decoded and paginated, and
every decision of the ticket with its why.

Both need the right to read histories (auditors and admins). The history comes from
Temporal, every run of the ticket's workflow oldest first, or from the archive store once
Temporal's retention dropped it; the explanation comes from the ticket's timeline and
context in the read model, where each step recorded what it decided and why.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from google.protobuf import json_format
from pydantic import BaseModel, Field
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode

from api.deps import FORBIDDEN, NOT_FOUND, AuthorizerDep, CurrentUser, DbDep, TemporalDep, answers, require
from api.intake import existing_ticket
from models.ticket import TicketPublic
from policies import Resource

router = APIRouter(prefix="/tickets", tags=["audit"])


# --- the history -----------------------------------------------------------------------------


class HistoryEvent(BaseModel):
    run_id: str
    event_id: int
    at: datetime
    type: str
    summary: str = Field(description="The activity, signal, update or timer the event is about.")
    details: Any = Field(default=None, description="Its decoded inputs, result or failure.")


class HistoryPage(BaseModel):
    ticket_id: str
    workflow_id: str
    runs: list[str] = Field(description="Run ids, oldest first (a long ticket continues as new).")
    source: str = Field(description="temporal, or archive once Temporal's retention dropped the history")
    total: int
    items: list[HistoryEvent]
    next_cursor: int | None = Field(description="Pass as `cursor` for the next page; null on the last.")


async def _runs(request: Request, client, ticket: TicketPublic) -> tuple[list[tuple[str, WorkflowHistory]], str]:  # noqa: ANN001
    from activities.archive import archive_store
    from audit.export import fetch_runs

    try:
        return await fetch_runs(client, ticket.workflow_id), "temporal"
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
    record = archive_store(request.app.state.settings).get(ticket.id)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"the history of ticket {ticket.id} is neither in Temporal "
                                                       "nor in the archive store")
    return [(run.run_id, h) for run, h in zip(record.runs, record.histories(), strict=True)], "archive"


async def _decode(codec, payloads) -> Any:  # noqa: ANN001, ANN401
    items = list(payloads)
    if codec is not None:
        items = await codec.decode(items)
    values = []
    for p in items:
        try:
            values.append(json.loads(p.data))
        except ValueError:
            values.append(f"<{len(p.data)} bytes>")
    return values[0] if len(values) == 1 else values


async def _event(codec, run_id: str, e) -> HistoryEvent:  # noqa: ANN001
    kind = EventType.Name(e.event_type).removeprefix("EVENT_TYPE_").lower()
    summary, details = "", None
    if e.HasField("activity_task_scheduled_event_attributes"):
        a = e.activity_task_scheduled_event_attributes
        summary, details = a.activity_type.name, await _decode(codec, a.input.payloads)
    elif e.HasField("activity_task_completed_event_attributes"):
        details = await _decode(codec, e.activity_task_completed_event_attributes.result.payloads)
    elif e.HasField("activity_task_failed_event_attributes"):
        failure = e.activity_task_failed_event_attributes.failure
        message = failure.message
        if failure.HasField("encoded_attributes"):
            decoded = await _decode(codec, [failure.encoded_attributes])
            message = decoded.get("message", message) if isinstance(decoded, dict) else message
        details = {"failure": message}
    elif e.HasField("workflow_execution_signaled_event_attributes"):
        a = e.workflow_execution_signaled_event_attributes
        summary, details = a.signal_name, await _decode(codec, a.input.payloads)
    elif e.HasField("workflow_execution_update_accepted_event_attributes"):
        req = e.workflow_execution_update_accepted_event_attributes.accepted_request
        summary, details = req.input.name, await _decode(codec, req.input.args.payloads)
    elif e.HasField("workflow_execution_update_completed_event_attributes"):
        outcome = e.workflow_execution_update_completed_event_attributes.outcome
        if outcome.HasField("success"):
            details = await _decode(codec, outcome.success.payloads)
    elif e.HasField("timer_started_event_attributes"):
        summary = f"fires after {e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()}"
    elif e.HasField("marker_recorded_event_attributes"):
        summary = e.marker_recorded_event_attributes.marker_name
        details = {k: json_format.MessageToDict(v) for k, v in e.marker_recorded_event_attributes.details.items()}
    elif e.HasField("workflow_execution_started_event_attributes"):
        a = e.workflow_execution_started_event_attributes
        summary, details = a.workflow_type.name, await _decode(codec, a.input.payloads)
    elif e.HasField("workflow_execution_completed_event_attributes"):
        details = await _decode(codec, e.workflow_execution_completed_event_attributes.result.payloads)
    return HistoryEvent(run_id=run_id, event_id=e.event_id, at=e.event_time.ToDatetime(tzinfo=UTC), type=kind,
                        summary=summary, details=details)


@router.get("/{ticket_id}/history", response_model=HistoryPage, responses=answers(FORBIDDEN, NOT_FOUND),
            summary="A ticket's workflow history, every run, decoded (auditors, admins)")
async def ticket_history(
    ticket_id: str, request: Request, user: CurrentUser, db: DbDep, client: TemporalDep, authorizer: AuthorizerDep,
    cursor: int = Query(0, ge=0, description="Where the page starts: 0, or the last page's next_cursor."),
    limit: int = Query(100, ge=1, le=1000),
) -> HistoryPage:
    require(authorizer, user, "read", Resource("history"))
    ticket = await existing_ticket(db, client, ticket_id)
    if ticket is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no ticket {ticket_id}")
    runs, source = await _runs(request, client, ticket)
    events = [(run_id, e) for run_id, history in runs for e in history.events]
    codec = request.app.state.codec
    page = [await _event(codec, run_id, e) for run_id, e in events[cursor:cursor + limit]]
    return HistoryPage(ticket_id=ticket.id, workflow_id=ticket.workflow_id, runs=[r for r, _ in runs], source=source,
                       total=len(events), items=page,
                       next_cursor=cursor + limit if cursor + limit < len(events) else None)


# --- the explanation ---------------------------------------------------------------------------

CATEGORIES = {
    "triaged": "triage",
    "task_created": "routing", "task_assigned": "routing", "task_queued": "routing", "task_released": "routing",
    "task_claimed": "routing", "task_reassigned": "routing", "escalated": "routing", "transferred": "routing",
    "faq_answer": "faq", "faq_no_answer": "faq", "faq_feedback": "faq",
    "authorized": "authorization",
    "task_completed": "agent", "refund_created": "action", "label_created": "action", "return_checked": "action",
    "reply_sent": "action", "status": "status", "reopened": "status", "continued_as_new": "status",
}
FAILURES = {"context_gap", "refund_failed", "label_failed", "reply_undelivered", "routing_failed", "faq_unavailable",
            "customer_silent", "handed_to_agent"}


class Decision(BaseModel):
    at: datetime
    category: str = Field(description="triage, sla, faq, routing, authorization, agent, action, status, failure")
    kind: str
    why: str
    data: dict[str, Any] = Field(default_factory=dict)


class Explanation(BaseModel):
    ticket_id: str
    case_type: str
    status: str
    resolution: str | None
    sla: dict[str, Any] | None = Field(description="The SLA policy that matched, its targets, due times, breaches.")
    faq: dict[str, Any] | None = Field(description="The FAQ bot's decision, confidence and scored suggestions.")
    decisions: list[Decision] = Field(description="Every decision in order, with why.")
    failures: list[Decision] = Field(description="External calls and steps that failed, and what the ticket did.")


def _category(kind: str) -> str | None:
    if kind in FAILURES:
        return "failure"
    if kind.startswith("sla_"):
        return "sla"
    return CATEGORIES.get(kind)


@router.get("/{ticket_id}/explain", response_model=Explanation, responses=answers(FORBIDDEN, NOT_FOUND),
            summary="Every decision of a ticket with its why (auditors, admins)")
async def explain_ticket(ticket_id: str, user: CurrentUser, db: DbDep, client: TemporalDep,
                         authorizer: AuthorizerDep) -> Explanation:
    require(authorizer, user, "read", Resource("history"))
    ticket = await existing_ticket(db, client, ticket_id)
    if ticket is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no ticket {ticket_id}")
    decisions = []
    for event in ticket.timeline:
        category = _category(event.kind)
        if category is not None:
            decisions.append(Decision(at=event.at, category=category, kind=event.kind, why=event.detail,
                                      data=event.data))
    faq = ticket.context.get("faq")
    if faq is not None:
        asked = next((d for d in decisions if d.kind in ("faq_answer", "faq_no_answer")), None)
        faq = {**faq, "threshold": asked.data.get("threshold") if asked else None}
    return Explanation(ticket_id=ticket.id, case_type=ticket.case_type, status=ticket.status.value,
                       resolution=ticket.resolution, sla=ticket.context.get("sla"), faq=faq,
                       decisions=[d for d in decisions if d.category != "failure"],
                       failures=[d for d in decisions if d.category == "failure"])
