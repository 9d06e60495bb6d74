"""Authorization: the Casbin model and policy in this folder decide who may do what.

Policies are data: change policy.csv, not code, to change who may do what. The API asks
before it touches a workflow; activities that act on money or another department's data ask
again. Workflow code never asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import logging

import casbin

from models.auth import Principal

HERE = Path(__file__).resolve().parent
MODEL_PATH = HERE / "model.conf"
POLICY_PATH = HERE / "policy.csv"

# Casbin logs every decision at INFO; at API request rates that drowns everything else.
logging.getLogger("casbin").setLevel(logging.WARNING)

SCOPES_WIDEST_FIRST = ("any", "department", "own")


@dataclass(frozen=True)
class Resource:
    """What is being acted on. `owner` is the customer id for tickets."""

    kind: str
    owner: str = ""
    department: str = ""


@dataclass(frozen=True)
class _Subject:
    name: str
    role: str
    department: str


class Authorizer:
    """Answers from the policy files loaded at start-up; restart to pick up policy changes."""

    def __init__(self, model_path: Path = MODEL_PATH, policy_path: Path = POLICY_PATH) -> None:
        self._enforcer = casbin.Enforcer(str(model_path), str(policy_path))
        # Casbin compiles its matcher on every call; decisions only depend on these few
        # strings, so remembering them takes authorization off the request's hot path.
        self._decide = lru_cache(maxsize=65_536)(self._enforce)

    def _enforce(self, name: str, role: str, department: str, action: str, resource: Resource) -> bool:
        return bool(self._enforcer.enforce(_Subject(name, role, department), resource, action))

    def allowed(self, who: Principal, action: str, resource: Resource) -> bool:
        return self._decide(who.name, who.role.value, who.department, action, resource)

    def scope(self, who: Principal, action: str, kind: str) -> str | None:
        """The widest scope in which `who` may perform `action` on `kind` objects, or None.

        List endpoints use it to filter: "own" restricts to the caller's objects,
        "department" to the caller's department.
        """
        granted = {
            perm[3]
            for perm in self._enforcer.get_implicit_permissions_for_user(who.role.value)
            if perm[1] == kind and perm[2] == action
        }
        for scope in SCOPES_WIDEST_FIRST:
            if scope in granted:
                if scope == "department" and not who.department:
                    return "any"
                return scope
        return None
