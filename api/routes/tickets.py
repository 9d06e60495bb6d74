"""Tickets: open one, list, read, and add a customer message."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, Field
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from api.deps import (
    CONFLICT,
    FORBIDDEN,
    NOT_FOUND,
    AuthorizerDep,
    CaseTypeFilter,
    CurrentUser,
    DbDep,
    SettingsDep,
    TemporalDep,
    answers,
    forbidden,
    not_found,
    require,
    require_reach,
)
from api.intake import existing_ticket, intake_key_for, open_ticket
from models import readmodel
from models.auth import Principal
from models.ticket import (
    CustomerFeedback,
    CustomerMessage,
    TicketCreate,
    TicketCreated,
    TicketCustomerView,
    TicketPage,
    TicketPublic,
    TicketStatus,
)
from policies import Authorizer, Resource
from policies.store import departments as list_departments
from workflows.registry import CaseType
from workflows.ticket import SUPPORT_TICKET, TicketWorkflow

log = logging.getLogger("ticketflow.api.tickets")
router = APIRouter(prefix="/tickets", tags=["tickets"])

# What only staff may decide at intake: it buys priority or picks who works the ticket. A
# customer's tier comes from the order system and the department from triage.
TRIAGE_FIELDS = ("priority", "department", "skills", "customer_tier")


async def known_departments(request: Request, db, name: str) -> set[str]:  # noqa: ANN001
    """Department names, remembered by the process; asked again when `name` is not among
    them, so a department added a moment ago is known at once."""
    state = request.app.state
    cached: set[str] | None = getattr(state, "departments", None)
    if cached is None or name not in cached:
        cached = state.departments = {d.name for d in await db.run(list_departments)}
    return cached


def _unknown_department(name: str, known: set[str]) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{
        "loc": ["body", "department"], "type": "value_error",
        "msg": f"unknown department {name!r}: known are {', '.join(sorted(known))}",
    }])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TicketCreated,
    responses={200: {"model": TicketCreated, "description": "The caller sent this external_ref before: that ticket."},
               **answers(FORBIDDEN, CONFLICT)},
    summary="Open a ticket (starts its workflow)",
)
async def create_ticket(
    body: TicketCreate, request: Request, user: CurrentUser, db: DbDep, client: TemporalDep, settings: SettingsDep,
    authorizer: AuthorizerDep, response: Response,
) -> TicketCreated:
    return await open_case(SUPPORT_TICKET, body, request, user, db, client, settings, authorizer, response)


async def open_case(case_type: CaseType, body: TicketCreate, request: Request, user: Principal, db, client,  # noqa: ANN001
                    settings, authorizer: Authorizer, response: Response) -> TicketCreated:
    """Open a case of `case_type` for a caller: the same rights, triage rule, department check
    and idempotency for every type. A type's cases go to its default department unless staff
    name another."""
    triaged = [f for f in TRIAGE_FIELDS if f in body.model_fields_set]
    if "department" not in body.model_fields_set:
        body = body.model_copy(update={"department": case_type.default_department})
    require(authorizer, user, "create", Resource("ticket", owner=body.customer_id, department=body.department))
    if triaged and not authorizer.allowed(user, "triage", Resource("ticket", department=body.department)):
        raise forbidden(user, "triage", "ticket", why=f"only staff set {', '.join(triaged)} (leave them out: the "
                                                      "tier comes from the order system, the department from triage)")
    known = await known_departments(request, db, body.department)
    if body.department not in known:
        raise _unknown_department(body.department, known)
    created, is_new = await open_ticket(
        body, db=db, client=client, settings=settings, case_type=case_type,
        intake_key=intake_key_for(f"user:{user.name}", body.external_ref, case_type))
    if not is_new:
        response.status_code = status.HTTP_200_OK
    return created


@router.get("", response_model=TicketPage, responses=answers(FORBIDDEN), summary="List tickets, newest first")
async def list_tickets(
    user: CurrentUser, db: DbDep, authorizer: AuthorizerDep,
    case_type: CaseTypeFilter,
    status_: Annotated[TicketStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> TicketPage:
    reach = require_reach(authorizer, user, "read", "ticket")
    items, next_cursor = await db.run(
        readmodel.list_tickets, limit=limit, cursor=cursor, status=status_.value if status_ else None,
        case_type=case_type,
        everything=reach.everything, departments=sorted(reach.departments),
        customer_id=user.name if reach.own else None, assignee=user.name if reach.assigned else None,
    )
    return TicketPage(items=items, next_cursor=next_cursor)


def _ticket_resource(ticket: TicketPublic, assignees: tuple[str, ...] = ()) -> Resource:
    return Resource("ticket", department=ticket.department, owner=ticket.customer_id, assignees=assignees)


async def readable_ticket(ticket_id: str, user: Principal, db, client, authorizer: Authorizer) -> TicketPublic:  # noqa: ANN001
    """The ticket if the caller may read it; 404 alike for unknown and foreign tickets."""
    ticket = await existing_ticket(db, client, ticket_id)
    if ticket is None:
        raise not_found("ticket", ticket_id)
    if authorizer.allowed(user, "read", _ticket_resource(ticket)):
        return ticket
    # Agents also read tickets they hold a task on, whatever the department.
    if authorizer.reach(user, "read", "ticket").assigned:
        holders = await db.run(readmodel.ticket_assignees, ticket_id)
        if authorizer.allowed(user, "read", _ticket_resource(ticket, holders)):
            return ticket
    raise not_found("ticket", ticket_id)


@router.get("/{ticket_id}", response_model=TicketPublic | TicketCustomerView, responses=answers(NOT_FOUND),
            summary="A ticket: the whole state for staff, the conversation and due times for its customer")
async def get_ticket(
    ticket_id: str, user: CurrentUser, db: DbDep, client: TemporalDep, authorizer: AuthorizerDep
) -> TicketPublic | TicketCustomerView:
    ticket = await readable_ticket(ticket_id, user, db, client, authorizer)
    if authorizer.is_customer_only(user):
        return TicketCustomerView.of(ticket)
    return ticket


class MessageCreate(BaseModel):
    text: str = Field(min_length=1, max_length=20_000)
    message_id: str | None = Field(
        default=None, max_length=200, description="The sender's id for this message; a repeat is ignored."
    )


class MessageAccepted(BaseModel):
    ticket_id: str
    message_id: str


async def _customers_ticket(ticket_id: str, user, db, client, authorizer) -> TicketPublic:  # noqa: ANN001
    """A ticket the caller may speak on as its customer: staff who can read it get 403 (they
    reply through tasks), everyone else 404."""
    ticket = await readable_ticket(ticket_id, user, db, client, authorizer)
    require(authorizer, user, "message", _ticket_resource(ticket))
    return ticket


@router.post("/{ticket_id}/messages", status_code=status.HTTP_202_ACCEPTED, response_model=MessageAccepted,
             responses=answers(FORBIDDEN, NOT_FOUND, CONFLICT),
             summary="The customer adds a message (reopens a resolved ticket)")
async def add_message(
    ticket_id: str, body: MessageCreate, user: CurrentUser, db: DbDep, client: TemporalDep,
    authorizer: AuthorizerDep,
) -> MessageAccepted:
    row = await _customers_ticket(ticket_id, user, db, client, authorizer)
    if row.status == TicketStatus.closed:
        raise HTTPException(status.HTTP_409_CONFLICT, "ticket is closed: open a new ticket instead")
    message_id = body.message_id or uuid.uuid4().hex
    handle: WorkflowHandle = client.get_workflow_handle(row.workflow_id)
    try:
        await handle.signal(TicketWorkflow.customer_message, CustomerMessage(message_id=message_id, text=body.text))
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise HTTPException(status.HTTP_409_CONFLICT, "ticket is closed: open a new ticket instead") from err
        raise
    return MessageAccepted(ticket_id=ticket_id, message_id=message_id)


class FeedbackAccepted(BaseModel):
    ticket_id: str
    accepted: bool


@router.post("/{ticket_id}/feedback", status_code=status.HTTP_202_ACCEPTED, response_model=FeedbackAccepted,
             responses=answers(FORBIDDEN, NOT_FOUND, CONFLICT),
             summary="The customer's verdict on an automatic answer: helpful resolves, not helpful goes to an agent")
async def give_feedback(
    ticket_id: str, body: CustomerFeedback, user: CurrentUser, db: DbDep, client: TemporalDep,
    authorizer: AuthorizerDep,
) -> FeedbackAccepted:
    row = await _customers_ticket(ticket_id, user, db, client, authorizer)
    if row.status != TicketStatus.bot_answered:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"ticket is {row.status}: feedback is for tickets the FAQ bot answered")
    try:
        await client.get_workflow_handle(row.workflow_id).signal(TicketWorkflow.customer_feedback, body)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise HTTPException(status.HTTP_409_CONFLICT, "ticket is closed") from err
        raise
    return FeedbackAccepted(ticket_id=ticket_id, accepted=True)
