"""API tokens and the principal a request acts as."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel


class Role(StrEnum):
    customer = "customer"
    agent = "agent"
    supervisor = "supervisor"
    admin = "admin"


class Principal(BaseModel):
    """Who is calling. For customers `name` is their customer id."""

    name: str
    role: Role
    department: str = ""


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"

    id: int | None = SQLField(default=None, primary_key=True)
    # sha256 of the token: tokens carry 256 bits of randomness, so a fast hash is enough and
    # lets us look a token up by its hash.
    token_hash: str = SQLField(unique=True, max_length=64)
    user: str = SQLField(index=True, max_length=100)
    role: str = SQLField(max_length=20)
    department: str = SQLField(default="", max_length=50)
    created_at: datetime
    revoked_at: datetime | None = None
