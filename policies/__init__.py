"""Authorization: the Casbin model in this folder and the rules and memberships in the
database decide who may do what.

Policies are data: grant, revoke and import with `ticketflow policy ...` or `/admin/...`,
not code. The API asks before it touches a workflow; activities that act on money or
another department's data ask again. Workflow code never asks.

Every process holds an :class:`Authorizer` that polls the database's policy version and
reloads when it moves, so a change takes effect everywhere within a couple of seconds.
"""

from __future__ import annotations

import ast
import logging
import re
import threading
import time
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import casbin
from casbin.util.expression import SimpleEval
from simpleeval import EvalWithCompoundTypes

from models.auth import EVERY_DEPARTMENT, USER_SUBJECT, AccessDecision, Principal, Role

if TYPE_CHECKING:
    from models.db import Database

HERE = Path(__file__).resolve().parent
MODEL_PATH = HERE / "model.conf"
POLICY_PATH = HERE / "policy.csv"

# Casbin logs every decision (denials as warnings); at API request rates that drowns
# everything else, and a denial is an answer, not a problem.
logging.getLogger("casbin").setLevel(logging.ERROR)
log = logging.getLogger("ticketflow.policies")

# How often a process asks the database whether the policy changed.
REFRESH_SECONDS = 1.0


@dataclass(frozen=True)
class Resource:
    """What is being acted on, with the attributes the policy's scopes look at."""

    kind: str
    department: str = ""
    owner: str = ""
    assignees: tuple[str, ...] = ()
    amount: float = 0.0


@dataclass(frozen=True)
class Reach:
    """Which objects of a kind a user may act on, for filtering lists."""

    everything: bool = False
    departments: frozenset[str] = frozenset()
    own: bool = False
    assigned: bool = False

    @property
    def nothing(self) -> bool:
        return not (self.everything or self.departments or self.own or self.assigned)


def _within_limit(amount: float, limit: str) -> bool:
    return limit == "" or amount <= float(limit)


_AST = threading.Lock()


@lru_cache(maxsize=64)
def _parsed_matcher(expr: str) -> ast.expr:
    with _AST:
        return ast.parse(expr.strip()).body[0].value  # type: ignore[attr-defined]


class _Matcher(SimpleEval):
    """Casbin's matcher evaluator, with the matcher parsed once per process instead of on
    every enforce. Besides the time, that keeps `ast` off the request path: CPython 3.11's
    AST conversion is not safe to run in two threads at once ("AST constructor recursion
    depth mismatch", seen in a claim storm)."""

    def __init__(self, expr: str, functions: dict | None = None) -> None:
        EvalWithCompoundTypes.__init__(self, functions=functions)
        if expr != "":
            self.expr = expr
            self.ast_parsed_value = _parsed_matcher(expr)


class _Enforcer(casbin.Enforcer):
    @staticmethod
    def _get_expression(expr: str, functions: dict | None = None) -> SimpleEval:
        return _Matcher(_casbin_syntax(expr), functions)


def _casbin_syntax(expr: str) -> str:
    """Casbin's operators in Python's words, as casbin.CoreEnforcer._get_expression has them."""
    expr = expr.replace("&&", "and").replace("||", "or")
    return re.sub(r"!(?!=)", "not ", expr)


def new_enforcer(adapter: object | None, model_path: Path = MODEL_PATH) -> casbin.Enforcer:
    enforcer = _Enforcer(str(model_path), adapter) if adapter is not None else _Enforcer(str(model_path))
    enforcer.enable_auto_save(False)  # what the snapshot derives in memory never goes back to the store
    enforcer.add_function("within_limit", _within_limit)
    # Names are compared as they are (no patterns). Casbin's domain role manager otherwise
    # builds each department's links with a name-matching function that compares every new
    # link with every name already there: quadratic in the members of a department, 34 s
    # for the first question about `*` with 5,000 customers in it.
    enforcer.get_role_manager().add_matching_func(None)
    return enforcer


def _inherit_by_rules(enforcer: casbin.Enforcer) -> dict[tuple[str, ...], tuple[str, ...]]:
    """Turn role inheritance (`g, supervisor, agent, *`) into rules: every role gets a copy
    of the rules of the roles it inherits. Returns each copy's original rule.

    Casbin could follow role-to-role links itself, but links held in every department then
    need a domain-matching function, and Casbin builds each department's links by copying
    every `*` membership into it on first use: with thousands of customers (all members in
    `*`) that was a second per department after every policy change, on the request path.
    Without inheritance links, a membership is one lookup in its own department."""
    links = [row for row in enforcer.get_named_grouping_policy("g") if not row[0].startswith(USER_SUBJECT)]
    parents: dict[str, set[str]] = {}
    for child, parent, *_ in links:
        parents.setdefault(child, set()).add(parent)

    def ancestors(role: str, seen: frozenset[str] = frozenset()) -> set[str]:
        found: set[str] = set()
        for parent in parents.get(role, ()):
            if parent not in seen:
                found |= {parent} | ancestors(parent, seen | {role})
        return found

    rules = [tuple(rule) for rule in enforcer.get_policy()]
    origins = {rule: rule for rule in rules}
    for role in parents:
        for ancestor in ancestors(role):
            for rule in rules:
                copy = (role, *rule[1:])
                if rule[0] == ancestor and copy not in origins:
                    origins[copy] = rule
    if links:
        enforcer.remove_named_grouping_policies("g", [list(link) for link in links])
    extra = [list(copy) for copy, rule in origins.items() if copy != rule]
    if extra:
        enforcer.add_policies(extra)
    return origins


_CASBIN = threading.Lock()


@dataclass
class _Snapshot:
    """One loaded version of the policy, with its decisions remembered (a cold Casbin check
    compiles its matcher and costs about half a millisecond; decisions depend only on a
    few strings)."""

    enforcer: casbin.Enforcer
    version: int

    def __post_init__(self) -> None:
        self.origins = _inherit_by_rules(self.enforcer)
        index: dict[str, list[tuple[str, str]]] = {}
        for row in self.enforcer.get_named_grouping_policy("g"):
            if len(row) >= 3:
                index.setdefault(row[0].removeprefix(USER_SUBJECT), []).append((row[1], row[2]))
        self._memberships_by_user = {user: tuple(sorted(held)) for user, held in index.items()}
        # (scope, limit) of each role's rules per object and action, for lists and limits.
        self.grants: dict[tuple[str, str, str], list[tuple[str, str]]] = {}
        for role, obj, act, scope, *limit in self.enforcer.get_policy():
            self.grants.setdefault((role, obj, act), []).append((scope, limit[0] if limit else ""))
        self.decide = lru_cache(maxsize=65_536)(self._decide)
        # Casbin builds a department's links on the first question about it; build them
        # now, while the snapshot is made off the request path.
        roles = self.enforcer.get_role_manager()
        for department in {EVERY_DEPARTMENT, *(d for held in index.values() for _, d in held)}:
            roles.has_link("", "", department)

    def memberships(self, user: str) -> tuple[tuple[str, str], ...]:
        return self._memberships_by_user.get(user, ())

    def _decide(self, user: str, action: str, resource: Resource) -> tuple[bool, str | None, tuple[str, ...]]:
        """(allowed, the role that allowed it, the policy's rule that did)."""
        domains = [resource.department]
        # A scope that does not depend on the object's department (all, own, assigned) is
        # satisfied by a role the user holds in any department.
        domains += [dept for _, dept in self.memberships(user) if dept not in domains]
        subject = USER_SUBJECT + user
        as_subjects = replace(resource, owner=USER_SUBJECT + resource.owner if resource.owner else "",
                              assignees=tuple(USER_SUBJECT + a for a in resource.assignees))
        for domain in domains:
            # One enforce at a time per process: Casbin compiles matchers with `ast`, and
            # CPython 3.11 can fail ("AST constructor recursion depth mismatch") when two
            # threads (the API's loop, a worker's activity) do that at once.
            with _CASBIN:
                allowed, rule = self.enforcer.enforce_ex(subject, domain, resource.kind, action, as_subjects)
            if allowed:
                return True, rule[0], self.origins.get(tuple(rule), tuple(rule))
        return False, None, ()


# Snapshots are never changed once made, so every authorizer of a process on the same
# database shares the one of the version in force (an API process and its worker, apps in
# tests) instead of each loading it again.
_shared: dict[str, _Snapshot] = {}
_shared_lock = threading.Lock()


def _snapshot_of(db: Database, version: int) -> _Snapshot:
    from policies.store import policy_adapter

    with _shared_lock:
        known = _shared.get(db.url)
        if known is not None and known.version == version:
            return known
    # Built without _CASBIN: a reload on a thread must not hold up decisions on the loop.
    snapshot = _Snapshot(new_enforcer(policy_adapter(db)), version)
    with _shared_lock:
        known = _shared.get(db.url)
        if known is None or known.version < version:
            _shared[db.url] = snapshot
    return snapshot


class Authorizer:
    """Answers from the policy as last loaded. Built from the database (production) or
    from the files in this folder (tests, tools that run without a database)."""

    def __init__(self, enforcer: casbin.Enforcer | _Snapshot, *, version: int = 0, db: Database | None = None,
                 refresh_seconds: float = REFRESH_SECONDS) -> None:
        self._snapshot = enforcer if isinstance(enforcer, _Snapshot) else _Snapshot(enforcer, version)
        self._db = db
        self.refresh_seconds = refresh_seconds
        self._checked_at = time.monotonic()
        self._reload_lock = threading.Lock()

    @classmethod
    def from_files(cls, model_path: Path = MODEL_PATH, policy_path: Path = POLICY_PATH) -> Authorizer:
        return cls(new_enforcer(str(policy_path), model_path))

    @classmethod
    def from_database(cls, db: Database, *, refresh_seconds: float = REFRESH_SECONDS) -> Authorizer:
        """The policy in the database, checked for changes at most every `refresh_seconds`.
        A database that is down now does not stop the process from starting: it denies
        everything until the first reload succeeds."""
        from models.db import DatabaseUnavailable
        from policies.store import current_version

        try:
            return cls(_snapshot_of(db, db.call(current_version)), db=db, refresh_seconds=refresh_seconds)
        except DatabaseUnavailable as exc:
            log.warning("policy not loaded, the database is unreachable (everything is denied until it is): %s", exc)
            return cls(new_enforcer(None), version=-1, db=db, refresh_seconds=refresh_seconds)

    # --- freshness ---------------------------------------------------------------------

    @property
    def version(self) -> int:
        return self._snapshot.version

    def reload_if_changed(self) -> bool:
        """Reload when the database's policy version moved. Sync: for threads and tools."""
        if self._db is None:
            return False
        from policies.store import current_version

        self._checked_at = time.monotonic()
        version = self._db.call(current_version)
        return self._reload_to(version)

    async def areload_if_changed(self) -> bool:
        """`reload_if_changed` for the event loop: the version is read on the loop's driver,
        a reload (rare) runs on a thread."""
        if self._db is None:
            return False
        import anyio

        from policies.store import current_version

        self._checked_at = time.monotonic()
        version = await self._db.run(current_version)
        if version == self._snapshot.version:
            return False
        return await anyio.to_thread.run_sync(self._reload_to, version)

    def _due(self) -> bool:
        return self._db is not None and time.monotonic() - self._checked_at >= self.refresh_seconds

    def refresh(self) -> None:
        """For sync callers on a hot path: reload if the last check is older than
        `refresh_seconds` (activities call this before deciding)."""
        if self._due():
            self.reload_if_changed()

    async def arefresh(self) -> None:
        """`refresh` for the event loop (API requests)."""
        if self._due():
            await self.areload_if_changed()

    def _reload_to(self, version: int) -> bool:
        if version == self._snapshot.version:
            return False
        assert self._db is not None
        with self._reload_lock:
            if version == self._snapshot.version:
                return False
            # Swapped whole: a request in flight finishes on the snapshot it started with.
            self._snapshot = _snapshot_of(self._db, version)
            log.info("policy version %d loaded", version)
            return True

    # --- decisions ---------------------------------------------------------------------

    def memberships(self, who: Principal | str) -> list[tuple[str, str]]:
        """(role, department) pairs the user holds directly."""
        name = who if isinstance(who, str) else who.name
        return list(self._snapshot.memberships(name)) if name else []

    def roles(self, who: Principal | str) -> set[str]:
        return {role for role, _ in self.memberships(who)}

    def is_customer_only(self, who: Principal) -> bool:
        roles = self.roles(who)
        return bool(roles) and roles <= {Role.customer.value}

    def decide(self, who: Principal, action: str, resource: Resource) -> AccessDecision:
        snap = self._snapshot
        allowed, role, rule = (False, None, ())
        if who.name:  # an empty name would match `own` rules of objects with no owner
            allowed, role, rule = snap.decide(who.name, action, resource)
        return AccessDecision(
            principal=who.name, action=action, object=resource.kind, department=resource.department,
            allowed=allowed, role=role,
            rule=", ".join(("p", *rule[:4], *(rule[4:] if rule[4:] != ("",) else ()))) if rule else None,
            policy_version=snap.version,
        )

    def allowed(self, who: Principal, action: str, resource: Resource) -> bool:
        return bool(who.name) and self._snapshot.decide(who.name, action, resource)[0]

    def reach(self, who: Principal, action: str, kind: str) -> Reach:
        """Which objects of `kind` the user may `action`: for lists and event streams."""
        if not who.name:
            return Reach()
        snap = self._snapshot
        everything, own, assigned = False, False, False
        departments: set[str] = set()
        for role, dept in snap.memberships(who.name):
            for scope, _ in snap.grants.get((role, kind, action), ()):  # inherited rules included
                if scope == "all" or (scope == "department" and dept == EVERY_DEPARTMENT):
                    everything = True
                elif scope == "department":
                    departments.add(dept)
                elif scope == "own":
                    own = True
                elif scope == "assigned":
                    assigned = True
        return Reach(everything=everything, departments=frozenset(departments), own=own, assigned=assigned)

    def refund_limit(self, who: Principal, department: str) -> Decimal | None:
        """The largest refund the user may make on a ticket of `department`: None for no
        refund at all, Decimal('Infinity') for no limit."""
        best: Decimal | None = None
        snap = self._snapshot
        for role, dept in snap.memberships(who.name):
            if dept not in (EVERY_DEPARTMENT, department):
                continue
            for scope, limit in snap.grants.get((role, "order", "refund"), ()):
                if scope == "department":
                    amount = Decimal("Infinity") if limit == "" else Decimal(limit)
                    best = amount if best is None else max(best, amount)
        return best
