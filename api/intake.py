"""Opening tickets, for every intake channel: the API's POST /tickets and the chat webhook.

Ticket ids for requests with an external_ref are derived from the intake key (who sent it,
and its ref), so every retry of the same request addresses the same workflow id and
Temporal itself refuses a second start. A chat conversation keeps one open ticket: its
messages go to it by signal-with-start, so two messages racing in open one ticket."""

from __future__ import annotations

import uuid

from fastapi import HTTPException, status
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from models import readmodel
from models.db import Database, utcnow
from models.ticket import (
    CustomerMessage,
    TicketCreate,
    TicketCreated,
    TicketInput,
    TicketPolicy,
    TicketPublic,
    TicketSnapshot,
    TicketStatus,
)
from policies.sla import load_sla_config
from settings import Settings
from workflows import registry
from workflows.registry import CaseType
from policies.intake import IntakeRules, Route
from workflows.ticket import SUPPORT_TICKET, TicketWorkflow

EXTERNAL_REF_NAMESPACE = uuid.UUID("6f1c2b1e-5d0e-4a53-9a43-3c1f1b7d8e21")
# Rolls of a conversation's ticket tried while its previous ticket is closing.
CONVERSATION_ATTEMPTS = 3


def intake_key_for(scope: str, external_ref: str | None, case_type: CaseType | None = None) -> str | None:
    """`scope` is whose refs these are (`user:<name>`, `webhook:chat`): two scopes never meet.
    Refs are also private to a case type: the support ticket's keys start with the scope
    (as they always have), every other type's with `<case type>/`, which no scope does."""
    if not external_ref:
        return None
    key = f"{scope}:{external_ref}"
    return key if case_type is None or case_type.name == SUPPORT_TICKET.name else f"{case_type.name}/{key}"


def ticket_id_for(intake_key: str | None) -> str:
    if intake_key:
        return uuid.uuid5(EXTERNAL_REF_NAMESPACE, intake_key).hex
    return uuid.uuid4().hex


async def existing_ticket(db: Database, client: Client, ticket_id: str,
                          case_types: list[CaseType] | None = None) -> TicketPublic | None:
    """The case from the read model or, if it opened moments ago and its workflow has not
    projected it yet, from the workflow itself (of any case type, or of those given)."""
    row = await db.run(readmodel.get_ticket, ticket_id)
    if row is not None:
        return readmodel.ticket_public(row)
    for case_type in case_types or registry.case_types():
        try:
            snap: TicketSnapshot = await client.get_workflow_handle(case_type.workflow_id(ticket_id)).query(
                TicketWorkflow.state, result_type=TicketSnapshot)
        except RPCError as err:
            if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
                continue
            raise
        return TicketPublic.model_validate({**snap.model_dump(), "id": snap.ticket_id})
    return None


def ticket_input(body: TicketCreate, settings: Settings, *, ticket_id: str, intake_key: str | None,
                 conversation_id: str | None = None, opening_message_id: str | None = None,
                 case_type: CaseType = SUPPORT_TICKET) -> TicketInput:
    """The case type's workflow input: the request plus the settings that decide, frozen at
    intake (the common ones, and those the case type asks for)."""
    extra = case_type.intake(settings) if case_type.intake is not None else {}
    return case_type.input_model(
        **extra,
        **body.model_dump(), ticket_id=ticket_id, intake_key=intake_key, opened_at=utcnow(),
        conversation_id=conversation_id, opening_message_id=opening_message_id,
        policy=TicketPolicy(auto_close_after=settings.auto_close_after,
                            customer_reply_timeout=settings.customer_reply_timeout,
                            stale_claim_after=settings.stale_claim_after, auto_assign=settings.auto_assign,
                            faq_enabled=settings.faq_enabled, faq_task_queue=settings.faq_task_queue,
                            bot_answer_timeout=settings.bot_answer_timeout),
        sla=load_sla_config(settings.sla_config_file),
    )


async def open_ticket(body: TicketCreate, *, db: Database, client: Client, settings: Settings,
                      intake_key: str | None, case_type: CaseType = SUPPORT_TICKET) -> tuple[TicketCreated, bool]:
    """Start the case's workflow (or find the one its intake key already started).
    Returns the case and whether this call opened it."""
    ticket_id = ticket_id_for(intake_key)
    workflow_id = case_type.workflow_id(ticket_id)
    if intake_key:
        # The read model outlives Temporal's retention of closed workflows: a ref used long
        # ago still answers with its ticket instead of opening a second one.
        row = await db.run(readmodel.get_ticket_by_intake_key, intake_key)
        if row is not None:
            return _same_ref(readmodel.ticket_public(row), body, ticket_id), False
    inp = ticket_input(body, settings, ticket_id=ticket_id, intake_key=intake_key, case_type=case_type)
    try:
        await client.start_workflow(
            case_type.workflow.run, inp, id=workflow_id, task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
    except WorkflowAlreadyStartedError:
        existing = await existing_ticket(db, client, ticket_id, [case_type])
        if existing is None:  # the id is taken but the ticket is gone (history expired)
            raise HTTPException(status.HTTP_409_CONFLICT, "external_ref was used by a ticket that no longer exists")
        return _same_ref(existing, body, ticket_id), False
    # The workflow is the read model's only writer: its first step projects the ticket,
    # and until then reads of this ticket are answered by the workflow itself.
    return TicketCreated(id=ticket_id, status=TicketStatus.new, workflow_id=workflow_id), True


def _same_ref(existing: TicketPublic, body: TicketCreate, ticket_id: str) -> TicketCreated:
    if existing.customer_id != body.customer_id:
        # The caller's own ref, reused for another customer: theirs to fix, no one else's data.
        raise HTTPException(status.HTTP_409_CONFLICT, "you used this external_ref already for a ticket of another "
                                                      "customer: send a new external_ref")
    return TicketCreated(id=ticket_id, status=existing.status, workflow_id=existing.workflow_id)


async def chat_message(body: TicketCreate, message: CustomerMessage, *, conversation_id: str, db: Database,
                       client: Client, settings: Settings, route: Route | None = None) -> tuple[str, bool]:
    """Put a chat message on its conversation's open case, opening one if there is none (of
    the case type and in the department `route` says; by default a support ticket).
    Returns (case id, whether this message opened it).

    The conversation's current case is one row (`chat_conversation`), claimed by the first
    message; every message then signals-with-start that case's workflow, so whichever
    arrives first starts it and the others land on it. A closed case cannot be started
    again (its id is rejected), and the row moves on to a fresh case."""
    route = route or IntakeRules().route(body.body)
    for _ in range(CONVERSATION_ATTEMPTS):
        candidate = uuid.uuid4().hex
        ticket_id, type_name = await db.run(readmodel.conversation_ticket, conversation_id, body.customer_id,
                                            candidate, route.case_type.name)
        case_type = route.case_type if type_name == route.case_type.name else registry.get(type_name)
        if ticket_id == candidate:
            body = body.model_copy(update={"department": route.department})
        inp = ticket_input(body, settings, ticket_id=ticket_id, intake_key=None, conversation_id=conversation_id,
                           opening_message_id=message.message_id, case_type=case_type)
        try:
            await client.start_workflow(
                case_type.workflow.run, inp, id=case_type.workflow_id(ticket_id), task_queue=settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                start_signal="customer_message", start_signal_args=[message],
            )
            return ticket_id, ticket_id == candidate
        except WorkflowAlreadyStartedError:
            # That ticket is closed: the conversation goes on in a new one.
            await db.run(readmodel.roll_conversation_ticket, conversation_id, ticket_id)
    raise HTTPException(status.HTTP_409_CONFLICT, "the conversation's ticket is closing; deliver the message again")
