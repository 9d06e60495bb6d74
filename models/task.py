"""Agent tasks: the human steps of a ticket workflow."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, model_validator
from sqlalchemy import JSON, Column, Index, text
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from models.auth import AccessDecision
from models.enums import Priority

# Every human action on a task carries the API's authorization decision: the workflow keeps
# it in its history (and, for actions that move money or a ticket, on the timeline), and an
# update without one, such as one sent straight through Temporal, is refused.


class TaskStatus(StrEnum):
    open = "open"  # waiting in its queue for an agent
    claimed = "claimed"  # an agent is working on it
    completed = "completed"
    cancelled = "cancelled"  # the ticket moved on without it (e.g. closed)


class TaskOutcome(StrEnum):
    resolve = "resolve"  # reply sent, issue solved
    ask_customer = "ask_customer"  # reply sent, waiting for the customer's answer
    escalate = "escalate"  # hand to the supervisors' queue with raised priority
    transfer = "transfer"  # hand to another queue


# The support ticket's outcomes; another case type declares its own per task kind
# (workflows/registry.py), and a task lists those it accepts in `allowed_outcomes`.
OUTCOMES_NEEDING_REPLY = frozenset({TaskOutcome.resolve.value, TaskOutcome.ask_customer.value})
SUPPORT_OUTCOMES = [o.value for o in TaskOutcome]
# What an outcome's name may look like, whichever case type declares it.
OUTCOME_PATTERN = r"^[a-z][a-z0-9_]*$"


class TaskNote(BaseModel):
    """An internal note on a task: seen by agents, never sent to the customer."""

    author: str
    text: str
    at: datetime


class TaskSnapshot(BaseModel):
    """A task as the workflow holds it and projects it into the read model."""

    task_id: str
    ticket_id: str
    workflow_id: str
    case_type: str = "support-ticket"
    kind: str = "handle_ticket"
    queue: str
    priority: Priority
    status: TaskStatus = TaskStatus.open
    assignee: str | None = None
    created_at: datetime
    claimed_at: datetime | None = None
    completed_at: datetime | None = None
    outcome: str | None = None
    reply: str | None = None
    allowed_outcomes: list[str] = Field(default_factory=lambda: list(SUPPORT_OUTCOMES))
    revision: int = 0
    context: dict[str, Any] = Field(default_factory=dict)
    skills: list[str] = Field(default_factory=list, description="Skills the agent needs.")
    language: str | None = None
    customer_tier: str = "standard"
    due_at: datetime | None = Field(default=None, description="When the ticket's next SLA target breaches.")
    notes: list[TaskNote] = Field(default_factory=list)
    routing: str | None = Field(default=None, description="Why the task went to its assignee, or why it waits.")


# --- update inputs -----------------------------------------------------------------------


class ClaimTask(BaseModel):
    task_id: str
    agent: str
    authorization: AccessDecision | None = None


class ReleaseTask(BaseModel):
    task_id: str
    agent: str
    reason: str | None = Field(default=None, description="Why, when the system releases it (agent offline, stale).")
    authorization: AccessDecision | None = None


class AssignTask(BaseModel):
    """Routing (or a supervisor) puts an open task in an agent's hands."""

    task_id: str
    agent: str
    by: str = "routing"
    reason: str = ""
    authorization: AccessDecision | None = None


class ReassignTask(BaseModel):
    """A supervisor moves a task to another agent, claimed or not."""

    task_id: str
    agent: str
    by: str
    authorization: AccessDecision | None = None


class AddNote(BaseModel):
    task_id: str
    author: str
    text: str = Field(min_length=1, max_length=10_000)
    authorization: AccessDecision | None = None


class RefundDecision(BaseModel):
    """An agent's decision to give money back, carried out once in the order system."""

    amount: Decimal = Field(gt=0, max_digits=12, decimal_places=2)
    reason: str = Field(min_length=1, max_length=500)
    order_id: str | None = Field(default=None, description="Defaults to the ticket's order.")


class CompleteTask(BaseModel):
    task_id: str
    agent: str
    outcome: str
    reply: str | None = Field(default=None, max_length=20_000)
    queue: str | None = Field(default=None, description="Target queue for outcome `transfer`.")
    refund: RefundDecision | None = None
    # Kept for histories recorded before decisions travelled with the update; activities
    # that move money look the agent's roles up themselves and never trust these.
    agent_role: str = "agent"
    agent_department: str = ""
    authorization: list[AccessDecision] = Field(
        default_factory=list, description="The API's decisions: completing, and escalating, transferring or "
        "refunding where the outcome does that.")


# --- API schemas -------------------------------------------------------------------------


class TaskCompletion(BaseModel):
    outcome: str = Field(max_length=30, pattern=OUTCOME_PATTERN,
                         description="One of the task's `allowed_outcomes`; a support ticket's are resolve, "
                         "ask_customer, escalate and transfer.")
    reply: str | None = Field(
        default=None, max_length=20_000, description="Text sent to the customer; required for resolve and ask_customer."
    )
    queue: str | None = Field(default=None, pattern=r"^[a-z0-9_-]+$", description="Target queue for transfer.")
    refund: RefundDecision | None = Field(default=None, description="Refund to create in the order system.")

    @model_validator(mode="after")
    def _reply_and_queue(self) -> "TaskCompletion":
        if self.outcome in OUTCOMES_NEEDING_REPLY and not (self.reply and self.reply.strip()):
            raise ValueError(f"reply is required when outcome is {self.outcome}")
        if self.outcome == TaskOutcome.transfer and not self.queue:
            raise ValueError("queue is required when outcome is transfer")
        if self.refund is not None and self.outcome not in OUTCOMES_NEEDING_REPLY:
            raise ValueError("a refund goes with outcome resolve or ask_customer, which tell the customer about it")
        return self


class TaskPublic(BaseModel):
    id: str
    ticket_id: str
    workflow_id: str
    case_type: str = Field(default="support-ticket", description="The kind of case the task belongs to.")
    kind: str
    queue: str
    priority: Priority
    status: TaskStatus
    assignee: str | None
    created_at: datetime
    claimed_at: datetime | None
    completed_at: datetime | None
    outcome: str | None
    allowed_outcomes: list[str]
    context: dict[str, Any]
    skills: list[str] = Field(default_factory=list)
    language: str | None = None
    customer_tier: str = "standard"
    due_at: datetime | None = None
    notes: list[TaskNote] = Field(default_factory=list)
    routing: str | None = None


class TaskPage(BaseModel):
    items: list[TaskPublic]
    next_cursor: str | None


# --- read model --------------------------------------------------------------------------


class Task(SQLModel, table=True):
    # One index per inbox sort, each ending in (created_at, id) like the keyset cursor, so a
    # page at any depth is a single index range (migration 0004).
    __table_args__ = (
        Index("ix_task_inbox_created", "queue", "status", "created_at", "id"),
        Index("ix_task_inbox_priority", "queue", "status", text("priority_rank DESC"), "created_at", "id"),
        Index("ix_task_inbox_due", "queue", "status", "due_at", "created_at", "id"),
    )

    id: str = SQLField(primary_key=True, max_length=80)
    ticket_id: str = SQLField(index=True, max_length=64)
    workflow_id: str = SQLField(max_length=80)
    case_type: str = SQLField(default="support-ticket", index=True, max_length=50)
    kind: str = SQLField(max_length=40)
    queue: str = SQLField(index=True, max_length=50)
    priority: str = SQLField(max_length=20)
    status: str = SQLField(index=True, max_length=20)
    assignee: str | None = SQLField(default=None, index=True, max_length=100)
    created_at: datetime = SQLField(index=True)
    claimed_at: datetime | None = None
    completed_at: datetime | None = None
    outcome: str | None = SQLField(default=None, max_length=30)
    reply: str | None = None
    allowed_outcomes: list[str] = SQLField(default_factory=list, sa_column=Column(JSON, nullable=False))
    revision: int = 0
    context: dict = SQLField(default_factory=dict, sa_column=Column(JSON, nullable=False))
    skills: list[str] = SQLField(default_factory=list, sa_column=Column(JSON, nullable=False))
    language: str | None = SQLField(default=None, max_length=20)
    customer_tier: str = SQLField(default="standard", max_length=20)
    priority_rank: int = SQLField(default=1, index=True)
    due_at: datetime | None = SQLField(default=None, index=True)
    notes: list[dict] = SQLField(default_factory=list, sa_column=Column(JSON, nullable=False))
    routing: str | None = None
