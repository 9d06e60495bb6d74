"""Tickets: open one, list, read, and add a customer message."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import BaseModel, Field
from temporalio.client import WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import AuthorizerDep, CurrentUser, DbDep, SettingsDep, TemporalDep, require, require_scope
from models import readmodel
from models.db import utcnow
from models.ticket import (
    CustomerFeedback,
    CustomerMessage,
    TicketCreate,
    TicketCreated,
    TicketInput,
    TicketPage,
    TicketPolicy,
    TicketPublic,
    TicketSnapshot,
    TicketStatus,
)
from policies import Resource
from policies.sla import load_sla_config
from workflows.ticket import TicketWorkflow, workflow_id_for

log = logging.getLogger("ticketflow.api.tickets")
router = APIRouter(prefix="/tickets", tags=["tickets"])

# Ticket ids for requests with an external_ref are derived from it, so every retry of the
# same request addresses the same workflow id and Temporal itself refuses a second start.
EXTERNAL_REF_NAMESPACE = uuid.UUID("6f1c2b1e-5d0e-4a53-9a43-3c1f1b7d8e21")


def ticket_id_for(external_ref: str | None) -> str:
    if external_ref:
        return uuid.uuid5(EXTERNAL_REF_NAMESPACE, external_ref).hex
    return uuid.uuid4().hex


async def _existing_ticket(db, client, ticket_id: str) -> TicketPublic | None:  # noqa: ANN001
    """The ticket from the read model or, if it opened moments ago and its workflow has not
    projected it yet, from the workflow itself."""
    row = await db.run(readmodel.get_ticket, ticket_id)
    if row is not None:
        return readmodel.ticket_public(row)
    try:
        snap: TicketSnapshot = await client.get_workflow_handle(workflow_id_for(ticket_id)).query(TicketWorkflow.state)
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            return None
        raise
    return TicketPublic.model_validate({**snap.model_dump(), "id": snap.ticket_id})


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TicketCreated,
    responses={200: {"model": TicketCreated, "description": "Same external_ref as an existing ticket: that ticket."},
               409: {"description": "external_ref belongs to another customer's ticket"}},
    summary="Open a ticket (starts its workflow)",
)
async def create_ticket(
    body: TicketCreate, user: CurrentUser, db: DbDep, client: TemporalDep, settings: SettingsDep,
    authorizer: AuthorizerDep, response: Response,
) -> TicketCreated:
    require(authorizer, user, "create", Resource("ticket", owner=body.customer_id, department=body.department))
    created, is_new = await open_ticket(body, db=db, client=client, settings=settings)
    if not is_new:
        response.status_code = status.HTTP_200_OK
    return created


async def open_ticket(
    body: TicketCreate, *, db, client, settings,  # noqa: ANN001
    conversation_id: str | None = None, opening_message_id: str | None = None,
) -> tuple[TicketCreated, bool]:
    """Start the ticket's workflow (or find the one its external_ref already started).
    Returns the ticket and whether this call opened it. Shared by every intake channel."""
    ticket_id = ticket_id_for(body.external_ref)
    workflow_id = workflow_id_for(ticket_id)
    inp = TicketInput(
        **body.model_dump(), ticket_id=ticket_id, opened_at=utcnow(), conversation_id=conversation_id,
        opening_message_id=opening_message_id,
        policy=TicketPolicy(auto_close_after=settings.auto_close_after,
                            customer_reply_timeout=settings.customer_reply_timeout,
                            stale_claim_after=settings.stale_claim_after, auto_assign=settings.auto_assign,
                            faq_enabled=settings.faq_enabled, faq_task_queue=settings.faq_task_queue,
                            bot_answer_timeout=settings.bot_answer_timeout),
        sla=load_sla_config(settings.sla_config_file),
    )
    try:
        await client.start_workflow(
            TicketWorkflow.run, inp, id=workflow_id, task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
    except WorkflowAlreadyStartedError:
        existing = await _existing_ticket(db, client, ticket_id)
        if existing is None:  # the id is taken but the ticket is gone (history expired)
            raise HTTPException(status.HTTP_409_CONFLICT, "external_ref was used by a ticket that no longer exists")
        if existing.customer_id != body.customer_id:
            raise HTTPException(status.HTTP_409_CONFLICT, "external_ref is already used by another ticket")
        return TicketCreated(id=ticket_id, status=existing.status, workflow_id=workflow_id), False
    # The workflow is the read model's only writer: its first step projects the ticket,
    # and until then reads of this ticket are answered by the workflow itself.
    return TicketCreated(id=ticket_id, status=TicketStatus.new, workflow_id=workflow_id), True


@router.get("", response_model=TicketPage, summary="List tickets, newest first")
async def list_tickets(
    user: CurrentUser, db: DbDep, authorizer: AuthorizerDep,
    status_: Annotated[TicketStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> TicketPage:
    scope = require_scope(authorizer, user, "read", "ticket")
    items, next_cursor = await db.run(
        readmodel.list_tickets, limit=limit, cursor=cursor, status=status_.value if status_ else None,
        customer_id=user.name if scope == "own" else None,
        department=user.department if scope == "department" else None,
    )
    return TicketPage(items=items, next_cursor=next_cursor)


async def _readable_ticket(ticket_id: str, user, db, client, authorizer, action: str = "read") -> TicketPublic:  # noqa: ANN001
    ticket = await _existing_ticket(db, client, ticket_id)
    if ticket is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no ticket {ticket_id}")
    require(authorizer, user, action, Resource("ticket", owner=ticket.customer_id, department=ticket.department))
    return ticket


@router.get("/{ticket_id}", response_model=TicketPublic, summary="A ticket's current state, conversation and timeline")
async def get_ticket(
    ticket_id: str, user: CurrentUser, db: DbDep, client: TemporalDep, authorizer: AuthorizerDep
) -> TicketPublic:
    return await _readable_ticket(ticket_id, user, db, client, authorizer)


class MessageCreate(BaseModel):
    text: str = Field(min_length=1, max_length=20_000)
    message_id: str | None = Field(
        default=None, max_length=200, description="The sender's id for this message; a repeat is ignored."
    )


class MessageAccepted(BaseModel):
    ticket_id: str
    message_id: str


@router.post("/{ticket_id}/messages", status_code=status.HTTP_202_ACCEPTED, response_model=MessageAccepted,
             summary="Add a customer message (reopens a resolved ticket)")
async def add_message(
    ticket_id: str, body: MessageCreate, user: CurrentUser, db: DbDep, client: TemporalDep,
    authorizer: AuthorizerDep,
) -> MessageAccepted:
    row = await _readable_ticket(ticket_id, user, db, client, authorizer, action="message")
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


@router.post("/{ticket_id}/feedback", status_code=status.HTTP_202_ACCEPTED,
             summary="The customer's verdict on an automatic answer: helpful resolves, not helpful goes to an agent")
async def give_feedback(
    ticket_id: str, body: CustomerFeedback, user: CurrentUser, db: DbDep, client: TemporalDep,
    authorizer: AuthorizerDep,
) -> dict:
    row = await _readable_ticket(ticket_id, user, db, client, authorizer, action="message")
    if row.status != TicketStatus.bot_answered:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"ticket is {row.status}: feedback is for tickets the FAQ bot answered")
    try:
        await client.get_workflow_handle(row.workflow_id).signal(TicketWorkflow.customer_feedback, body)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise HTTPException(status.HTTP_409_CONFLICT, "ticket is closed") from err
        raise
    return {"ticket_id": ticket_id, "accepted": True}
