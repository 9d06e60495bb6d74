"""Agents (who can take tasks, and whether they are here) and routing's memory."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy import JSON, Column
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from routing.models import Presence


class AgentBase(BaseModel):
    skills: list[str] = Field(default_factory=list, description="e.g. refunds, carriers, german")
    languages: list[str] = Field(default_factory=lambda: ["en"], description="Language tags, e.g. en, de-AT.")
    queues: list[str] = Field(default_factory=list, description="Department queues the agent works.")
    capacity: int = Field(default=5, ge=0, le=100, description="Most tasks the agent holds at once.")
    senior: bool = False


class AgentUpsert(AgentBase):
    pass


class PresenceUpdate(BaseModel):
    presence: Presence


class AgentPublic(AgentBase):
    id: str
    presence: Presence
    presence_changed_at: datetime | None
    load: int = Field(default=0, description="Tasks the agent holds now.")


class Agent(SQLModel, table=True):
    id: str = SQLField(primary_key=True, max_length=100)
    skills: list[str] = SQLField(default_factory=list, sa_column=Column(JSON, nullable=False))
    languages: list[str] = SQLField(default_factory=list, sa_column=Column(JSON, nullable=False))
    queues: list[str] = SQLField(default_factory=list, sa_column=Column(JSON, nullable=False))
    capacity: int = 5
    senior: bool = False
    presence: str = SQLField(default=Presence.offline.value, max_length=20)
    presence_changed_at: datetime | None = None
    updated_at: datetime


class RoutingCursor(SQLModel, table=True):
    """Round-robin memory per queue: who got the last tie."""

    __tablename__ = "routing_cursor"

    queue: str = SQLField(primary_key=True, max_length=50)
    last_assigned: str | None = SQLField(default=None, max_length=100)
