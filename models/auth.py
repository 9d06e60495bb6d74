"""Who may do what: users, their API tokens, the policy rules and memberships Casbin reads,
the departments they name, and the append-only audit of every change to them.

A department is a Casbin domain. A user holds roles per department (`g, ana, agent,
logistics`); the department `*` means every department, explicitly.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import JSON, Column, Index
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

EVERY_DEPARTMENT = "*"
# Users appear in Casbin's rows as `user:<name>`, so a user may share a role's name (a user
# called "admin" holding the role admin) without becoming that role.
USER_SUBJECT = "user:"
# Names end up inside Casbin's comma-separated policy lines: no commas, no spaces.
DEPARTMENT_PATTERN = r"^[a-z0-9_-]{1,50}$"
USER_PATTERN = r"^[A-Za-z0-9._@+-]{1,100}$"


class Role(StrEnum):
    customer = "customer"
    agent = "agent"
    supervisor = "supervisor"
    admin = "admin"
    auditor = "auditor"


def valid_department(name: str, *, allow_every: bool = True) -> bool:
    return (allow_every and name == EVERY_DEPARTMENT) or re.fullmatch(DEPARTMENT_PATTERN, name) is not None


class Principal(BaseModel):
    """Who is calling: a user (for customers, their customer id)."""

    name: str


class Membership(BaseModel):
    """`user` holds `role` in `department` (`*`: every department)."""

    user: str
    role: Role
    department: str


class AccessDecision(BaseModel):
    """Why an action was allowed (or not): kept in the workflow's history with the action and
    on the ticket's timeline, so an auditor can see who acted, as what, under which rule."""

    principal: str
    action: str
    object: str
    department: str = ""
    allowed: bool
    role: str | None = Field(default=None, description="The role whose rule decided.")
    rule: str | None = Field(default=None, description="The policy rule that allowed it, as written in the policy.")
    policy_version: int = 0


SYSTEM_PREFIX = "system:"


def system_decision(component: str, action: str, why: str) -> AccessDecision:
    """An action ticketflow itself takes (routing assigns, an agent going offline releases):
    no user's right is involved, and the record says which component acted and why."""
    return AccessDecision(principal=f"{SYSTEM_PREFIX}{component}", action=action, object="task", allowed=True,
                          role="system", rule=why)


# --- tables ------------------------------------------------------------------------------


class UserAccount(SQLModel, table=True):
    __tablename__ = "user_account"

    name: str = SQLField(primary_key=True, max_length=100)
    display_name: str = SQLField(default="", max_length=200)
    created_at: datetime
    disabled_at: datetime | None = None
    # Signing in to the console (policies/people.py): an argon2 hash.
    password_hash: str | None = SQLField(default=None, max_length=200)
    password_set_at: datetime | None = None


class WebSession(SQLModel, table=True):
    """A person signed in through the console: the cookie holds the secret, this row its
    sha256, so a database dump signs nobody in."""

    __tablename__ = "web_session"

    token_hash: str = SQLField(primary_key=True, max_length=64)
    user: str = SQLField(index=True, max_length=100, foreign_key="user_account.name")
    csrf_token: str = SQLField(max_length=64)
    created_at: datetime
    last_seen_at: datetime


class SignInThrottle(SQLModel, table=True):
    """Sign-in attempts per name since its last success, and until when it is locked. Kept
    for any name tried, known or not, so that a lock says nothing about who exists."""

    __tablename__ = "sign_in_throttle"

    name: str = SQLField(primary_key=True, max_length=100)
    attempts: int = 0
    locked_until: datetime | None = None
    last_attempt_at: datetime | None = SQLField(default=None, index=True)


class PasswordInvite(SQLModel, table=True):
    """A one-time link that lets a person set their password."""

    __tablename__ = "password_invite"

    token_hash: str = SQLField(primary_key=True, max_length=64)
    user: str = SQLField(index=True, max_length=100, foreign_key="user_account.name")
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


class Department(SQLModel, table=True):
    name: str = SQLField(primary_key=True, max_length=50)
    description: str = SQLField(default="", max_length=300)
    created_at: datetime


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"

    id: int | None = SQLField(default=None, primary_key=True)
    # sha256 of the token: tokens carry 256 bits of randomness, so a fast hash is enough and
    # lets us look a token up by its hash.
    token_hash: str = SQLField(unique=True, max_length=64)
    user: str = SQLField(index=True, max_length=100, foreign_key="user_account.name")
    label: str = SQLField(default="", max_length=200)
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None


class CasbinRule(SQLModel, table=True):
    """The policy as Casbin's SQLAlchemy adapter stores it: one row per `p` rule or `g`
    membership, fields in v0..v5."""

    __tablename__ = "casbin_rule"
    __table_args__ = (Index("ix_casbin_rule_ptype_v0", "ptype", "v0"),)

    id: int | None = SQLField(default=None, primary_key=True)
    ptype: str = SQLField(max_length=255)
    v0: str | None = SQLField(default=None, max_length=255)
    v1: str | None = SQLField(default=None, max_length=255)
    v2: str | None = SQLField(default=None, max_length=255)
    v3: str | None = SQLField(default=None, max_length=255)
    v4: str | None = SQLField(default=None, max_length=255)
    v5: str | None = SQLField(default=None, max_length=255)

    def __str__(self) -> str:  # the adapter loads rules from this text
        fields = [self.ptype, self.v0, self.v1, self.v2, self.v3, self.v4, self.v5]
        while fields and fields[-1] is None:
            fields.pop()
        return ", ".join("" if f is None else f for f in fields)

    @property
    def values(self) -> list[str]:
        fields = [self.v0, self.v1, self.v2, self.v3, self.v4, self.v5]
        while fields and fields[-1] is None:
            fields.pop()
        return ["" if f is None else f for f in fields]


class PolicyVersion(SQLModel, table=True):
    """One row: bumped by every change to rules or memberships. Every API process and worker
    polls it and reloads its policy when it moves."""

    __tablename__ = "policy_version"

    id: int = SQLField(default=1, primary_key=True)
    version: int = 0
    changed_at: datetime


class AccessAudit(SQLModel, table=True):
    """Append-only: who changed access, when, and what it was before and after."""

    __tablename__ = "access_audit"

    id: int | None = SQLField(default=None, primary_key=True)
    at: datetime = SQLField(index=True)
    actor: str = SQLField(max_length=100)
    action: str = SQLField(max_length=50)
    subject: str = SQLField(default="", index=True, max_length=200)
    before: Any = SQLField(default=None, sa_column=Column(JSON, nullable=True))
    after: Any = SQLField(default=None, sa_column=Column(JSON, nullable=True))
    policy_version: int = 0
