"""Tickets: the contracts a ticket workflow is started and queried with, the API schemas,
and the read-model table."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import JSON, Column
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from models.enums import Priority
from models.task import CompleteTask, TaskSnapshot
from sla.clock import SlaClock
from sla.config import SlaConfig
from sla.policy import CustomerTier


class TicketStatus(StrEnum):
    new = "new"
    bot_answered = "bot_answered"
    awaiting_agent = "awaiting_agent"
    in_progress = "in_progress"
    waiting_customer = "waiting_customer"
    resolved = "resolved"
    closed = "closed"


class Channel(StrEnum):
    web = "web"
    email = "email"
    chat = "chat"
    phone = "phone"
    api = "api"


# --- API schemas -------------------------------------------------------------------------


class TicketBase(BaseModel):
    customer_id: str = Field(min_length=1, max_length=100)
    subject: str = Field(min_length=1, max_length=300)
    body: str = Field(min_length=1, max_length=20_000)
    channel: Channel = Channel.web
    order_id: str | None = Field(default=None, max_length=100)
    priority: Priority = Priority.normal
    department: str = Field(default="general", min_length=1, max_length=50, pattern=r"^[a-z0-9_-]+$")
    language: str = Field(default="en", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$", description="e.g. en, de-AT")
    skills: list[str] = Field(default_factory=list, max_length=10, description="Skills an agent needs, e.g. refunds.")
    customer_tier: CustomerTier | None = Field(
        default=None, description="Overrides the tier the order system reports for the customer."
    )


class TicketCreate(TicketBase):
    external_ref: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The caller's id for this issue. The same caller sending the same value again gets the "
        "same ticket instead of a second one, so retries are safe. Refs are private to each caller: another "
        "caller's equal ref is a different ticket. Omit it rather than sending an empty string.",
    )


class TicketCreated(BaseModel):
    id: str
    status: TicketStatus
    workflow_id: str


# --- workflow contracts ------------------------------------------------------------------


class TicketPolicy(BaseModel):
    """Timings the workflow needs; taken from settings when the ticket is opened so that
    replays see the values the original run saw."""

    auto_close_after: timedelta = timedelta(days=3)
    customer_reply_timeout: timedelta = timedelta(days=7)
    stale_claim_after: timedelta = timedelta(minutes=30)
    auto_assign: bool = True
    faq_enabled: bool = True
    faq_task_queue: str = "ticketflow-faq"
    bot_answer_timeout: timedelta = Field(
        default=timedelta(days=2), description="How long a bot answer waits for 'that helped' before an agent looks."
    )
    gather_context: bool = True
    continue_as_new_after_events: int = Field(
        default=2_000, ge=100,
        description="A run continues as new once its history holds this many events (or Temporal suggests it).",
    )


class TicketInput(TicketBase):
    ticket_id: str
    external_ref: str | None = None
    intake_key: str | None = Field(default=None, description="<caller scope>:<external_ref>, unique per ticket.")
    conversation_id: str | None = Field(default=None, description="Chat conversation the ticket came from.")
    opening_message_id: str | None = Field(default=None, description="Channel's id of the message that opened it.")
    sla: SlaConfig | None = Field(default=None, description="Calendar and policies in force when the ticket opened.")
    opened_at: datetime
    policy: TicketPolicy = TicketPolicy()
    carried: CaseCarry | None = Field(default=None, description="Set by a run that continues as new: where it stood.")


class CustomerMessage(BaseModel):
    """A message from the customer on an open ticket (sent as a signal)."""

    message_id: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=20_000)
    sent_at: datetime | None = None


class CustomerFeedback(BaseModel):
    """The customer's verdict on an automatic answer (sent as a signal)."""

    helpful: bool
    comment: str | None = Field(default=None, max_length=2000)


class ConversationEntry(BaseModel):
    id: str
    direction: str  # "in" from the customer, "out" to the customer
    author: str
    text: str
    at: datetime


class TimelineEvent(BaseModel):
    """One decision or change, kept on the ticket so people can see what happened and why."""

    at: datetime
    kind: str
    detail: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


SUPPORT_TICKET = "support-ticket"


class TicketState(BaseModel):
    """What a ticket is now: the fields every view of a ticket shares."""

    case_type: str = Field(default=SUPPORT_TICKET, description="The kind of case (see GET /case-types).")
    workflow_id: str
    customer_id: str
    subject: str
    body: str
    channel: Channel
    order_id: str | None
    priority: Priority
    department: str
    external_ref: str | None
    status: TicketStatus
    opened_at: datetime
    updated_at: datetime
    resolution: str | None = None
    conversation: list[ConversationEntry] = Field(default_factory=list)
    timeline: list[TimelineEvent] = Field(default_factory=list)
    context: dict[str, Any] = Field(default_factory=dict)


class TicketSnapshot(TicketState):
    """The current state of a ticket as its workflow holds it (what its `state` query
    returns).

    A long ticket continues as a new workflow run; the new run keeps only the latest
    conversation entries and timeline events. ``conversation_offset`` and
    ``timeline_offset`` count the entries before them: those are in the read model and in
    the earlier runs' histories."""

    ticket_id: str
    revision: int
    conversation_id: str | None = None
    intake_key: str | None = None
    conversation_offset: int = 0
    timeline_offset: int = 0


# --- continuing as new ----------------------------------------------------------------
# A ticket that lives long (hundreds of messages, weeks of waiting) would grow its Temporal
# history toward the service's limits. Before that, its workflow continues as a new run and
# passes this along in its input: the ticket's state with only its latest conversation and
# timeline entries, its open tasks, its SLA clock, and the step it was in with the step's
# deadline.


class StepName(StrEnum):
    agent = "agent"  # an agent's task: open, claimed, or about to be created
    waiting_customer = "waiting_customer"  # an agent asked the customer; waiting for the answer
    closing = "closing"  # resolved; closes once the customer stays quiet


class CaseStep(BaseModel):
    """Where a case stands between its steps, enough to carry on from there."""

    name: StepName
    queue: str = Field(description="The queue an agent's task goes to.")
    task_id: str | None = Field(default=None, description="The open task the agent step waits on, if any.")
    until: datetime | None = Field(default=None, description="When the step's wait ends.")


class CaseCarry(BaseModel):
    step: CaseStep
    snapshot: TicketSnapshot
    tasks: list[TaskSnapshot] = Field(description="Tasks still open or claimed, and any not yet projected.")
    unpublished_tasks: list[str] = Field(default_factory=list, description="Tasks changed during the hand-over.")
    decisions: list[CompleteTask] = Field(default_factory=list, description="Completions not yet carried out.")
    task_count: int = Field(description="Tasks created over the case's life, so ids keep counting.")
    seen_message_ids: list[str] = Field(description="The latest customer message ids, to drop redeliveries.")
    unanswered_messages: int = 0
    sla: SlaClock | None = None
    tier_from_systems: CustomerTier | None = None
    published_conversation: int = 0
    published_timeline: int = 0
    published_revision: int = -1
    published_context: dict[str, Any] | None = None
    runs: int = Field(default=1, description="Runs before this one.")


def splice(stored: list, start: int, added: list) -> list:
    """``stored`` with ``added`` written from position ``start``: a projection that arrives
    twice writes the same entries twice, never appends them again. If ``stored`` is shorter
    than ``start`` (the read model lost entries), ``added`` follows what is there."""
    return stored[:start] + added if len(stored) >= start else stored + added


class TicketChanges(BaseModel):
    """What a ticket's workflow projects into the read model: every field of its state, the
    conversation entries and timeline events from the given positions on, and its context
    only when it changed. Its size depends on what changed, not on the ticket's age."""

    ticket: TicketSnapshot = Field(description="Lists hold only the entries from the positions below; "
                                               "`context` is empty unless `context_changed`.")
    conversation_from: int = Field(ge=0)
    timeline_from: int = Field(ge=0)
    context_changed: bool

    def applied_to(self, stored: TicketSnapshot | None) -> TicketSnapshot:
        """The full ticket: ``stored`` (the read model's copy, if any) with these changes."""
        t = self.ticket
        return t.model_copy(update={
            "conversation": splice(stored.conversation if stored else [], self.conversation_from, t.conversation),
            "timeline": splice(stored.timeline if stored else [], self.timeline_from, t.timeline),
            "context": t.context if self.context_changed or stored is None else stored.context,
            "conversation_offset": 0, "timeline_offset": 0,
        })


# --- read model --------------------------------------------------------------------------


class Ticket(SQLModel, table=True):
    id: str = SQLField(primary_key=True, max_length=64)
    case_type: str = SQLField(default=SUPPORT_TICKET, index=True, max_length=50)
    workflow_id: str = SQLField(max_length=80)
    customer_id: str = SQLField(index=True, max_length=100)
    subject: str = SQLField(max_length=300)
    body: str
    channel: str = SQLField(max_length=20)
    order_id: str | None = SQLField(default=None, max_length=100)
    priority: str = SQLField(max_length=20)
    department: str = SQLField(index=True, max_length=50)
    external_ref: str | None = SQLField(default=None, index=True, max_length=200)
    intake_key: str | None = SQLField(default=None, unique=True, index=True, max_length=400)
    conversation_id: str | None = SQLField(default=None, index=True, max_length=200)
    status: str = SQLField(index=True, max_length=30)
    opened_at: datetime = SQLField(index=True)
    updated_at: datetime
    revision: int = 0
    resolution: str | None = None
    conversation: list[dict] = SQLField(default_factory=list, sa_column=Column(JSON, nullable=False))
    timeline: list[dict] = SQLField(default_factory=list, sa_column=Column(JSON, nullable=False))
    context: dict = SQLField(default_factory=dict, sa_column=Column(JSON, nullable=False))


class TicketPublic(TicketState):
    """A ticket as the API shows it."""

    id: str


class CustomerMessageView(BaseModel):
    """One message of the conversation as the customer sees it."""

    id: str
    direction: str = Field(description="`in`: written by the customer; `out`: sent to them by support.")
    text: str
    at: datetime


class TicketCustomerView(BaseModel):
    """A ticket as its customer sees it: their conversation, where it stands and when an
    answer is due. Nothing internal: no notes, routing, FAQ scores, connector errors, no
    timeline, no data of other systems."""

    id: str
    case_type: str = SUPPORT_TICKET
    subject: str
    status: TicketStatus
    channel: Channel
    order_id: str | None
    external_ref: str | None
    opened_at: datetime
    updated_at: datetime
    resolution: str | None = None
    conversation: list[CustomerMessageView] = Field(default_factory=list)
    first_response_due: datetime | None = None
    resolution_due: datetime | None = None

    @classmethod
    def of(cls, ticket: TicketPublic) -> TicketCustomerView:
        sla = ticket.context.get("sla") or {}
        return cls(
            id=ticket.id, case_type=ticket.case_type, subject=ticket.subject, status=ticket.status, channel=ticket.channel,
            order_id=ticket.order_id, external_ref=ticket.external_ref, opened_at=ticket.opened_at,
            updated_at=ticket.updated_at, resolution=ticket.resolution,
            conversation=[CustomerMessageView(id=m.id, direction=m.direction, text=m.text, at=m.at)
                          for m in ticket.conversation],
            first_response_due=sla.get("first_response_due"), resolution_due=sla.get("resolution_due"),
        )


class TicketSummary(BaseModel):
    id: str
    case_type: str = SUPPORT_TICKET
    customer_id: str
    subject: str
    status: TicketStatus
    priority: Priority
    department: str
    opened_at: datetime
    updated_at: datetime


class TicketPage(BaseModel):
    items: list[TicketSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page; null on the last page.")


class ChatConversation(SQLModel, table=True):
    """The ticket a chat conversation's messages go to now. Claimed by the conversation's
    first message, moved on to a new ticket when that one is closed."""

    __tablename__ = "chat_conversation"

    customer_id: str = SQLField(primary_key=True, max_length=100)
    conversation_id: str = SQLField(primary_key=True, max_length=200)
    ticket_id: str = SQLField(max_length=64)
    case_type: str = SQLField(default=SUPPORT_TICKET, max_length=50)
    updated_at: datetime


# TicketInput names CaseCarry, defined after it: complete it now, so a TypeAdapter made of it
# anywhere (Temporal's converter) needs no later rebuild.
TicketInput.model_rebuild()
