"""The change feed: every projected change of a ticket or task, in order.

Rows are written in the same transaction as the read-model upsert they describe (an
outbox), so a consumer that follows ids never misses a change and never sees one that did
not happen. `GET /events` streams them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import JSON, BigInteger, Column, Integer
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel


class ChangeEvent(SQLModel, table=True):
    __tablename__ = "change_event"

    # BIGINT on PostgreSQL; SQLite only autoincrements a plain INTEGER primary key.
    id: int | None = SQLField(
        default=None, sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
                                       autoincrement=True)
    )
    at: datetime = SQLField(index=True)
    kind: str = SQLField(max_length=30)  # ticket | task
    ticket_id: str = SQLField(max_length=64)
    case_type: str = SQLField(default="support-ticket", max_length=50)
    task_id: str | None = SQLField(default=None, max_length=80)
    queue: str | None = SQLField(default=None, index=True, max_length=50)
    customer_id: str | None = SQLField(default=None, max_length=100)
    status: str = SQLField(max_length=30)
    revision: int
    payload: dict = SQLField(default_factory=dict, sa_column=Column(JSON, nullable=False))


class ChangeEventPublic(BaseModel):
    id: int
    at: datetime
    kind: str
    ticket_id: str
    case_type: str = "support-ticket"
    task_id: str | None
    queue: str | None
    status: str
    revision: int
    payload: dict
