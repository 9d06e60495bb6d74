"""The access store: users, departments, memberships, policy rules and tokens in the
database, and every change to them.

Each change runs in the caller's transaction together with its audit row and a bump of the
policy version, so either all of it happened (and every process reloads within seconds) or
none of it did. Bad input raises :class:`AccessInputError` naming what is wrong before
anything is written.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import update
from sqlmodel import Session, select

from models.auth import (
    EVERY_DEPARTMENT,
    USER_PATTERN,
    USER_SUBJECT,
    AccessAudit,
    ApiToken,
    CasbinRule,
    Department,
    PolicyVersion,
    Role,
    UserAccount,
    valid_department,
)
from models.db import utcnow

if TYPE_CHECKING:
    from models.db import Database

TOKEN_PREFIX = "tf_"
SCOPES = ("all", "department", "own", "assigned")
ROLES = frozenset(r.value for r in Role)
# Who acts when a change comes from a shell on the server rather than through the API.
CLI_ACTOR = "cli"


class AccessInputError(ValueError):
    """A change names something unknown or malformed. `field` is the input it is about."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class AccessNotFound(LookupError):
    pass


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def policy_adapter(db: Database) -> Any:
    """Casbin's SQLAlchemy adapter over our `casbin_rule` table (created by migrations)."""
    from sqlalchemy_adapter import Adapter

    return Adapter(db.engine, db_class=CasbinRule, create_table=False)


# --- version and audit ---------------------------------------------------------------------


def current_version(session: Session) -> int:
    row = session.get(PolicyVersion, 1)
    return row.version if row else 0


def _bump(session: Session) -> int:
    table = PolicyVersion.__table__
    session.execute(update(table).where(table.c.id == 1).values(version=table.c.version + 1, changed_at=utcnow()))
    return current_version(session)


# Changes to what Casbin loads (rules, memberships): every process reloads its policy when
# one lands. Users, tokens and departments are read where they are used (token lookups are
# cached 2 s), so their changes record the version in force without making everyone reload.
RELOADING_ACTIONS = frozenset({"membership.grant", "membership.revoke", "policy.import"})


def _audit(session: Session, actor: str, action: str, subject: str, before: Any, after: Any) -> int:
    version = _bump(session) if action in RELOADING_ACTIONS else current_version(session)
    session.add(AccessAudit(at=utcnow(), actor=actor, action=action, subject=subject, before=before, after=after,
                            policy_version=version))
    return version


def audit_log(session: Session, *, subject: str | None = None, limit: int = 100, before_id: int | None = None
              ) -> list[AccessAudit]:
    q = select(AccessAudit)
    if subject:
        q = q.where(AccessAudit.subject == subject)
    if before_id:
        q = q.where(AccessAudit.id < before_id)
    return list(session.exec(q.order_by(AccessAudit.id.desc()).limit(limit)))  # type: ignore[union-attr]


# --- departments -----------------------------------------------------------------------------


def departments(session: Session) -> list[Department]:
    return list(session.exec(select(Department).order_by(Department.name)))


def department_exists(session: Session, name: str) -> bool:
    return session.get(Department, name) is not None


def add_department(session: Session, actor: str, name: str, description: str = "") -> tuple[Department, bool]:
    if not valid_department(name, allow_every=False):
        raise AccessInputError("name", f"department {name!r}: use 1 to 50 lower-case letters, digits, _ and -")
    existing = session.get(Department, name)
    if existing is not None:
        return existing, False
    row = Department(name=name, description=description, created_at=utcnow())
    session.add(row)
    _audit(session, actor, "department.add", f"department:{name}", None, {"name": name, "description": description})
    return row, True


def _known_department(session: Session, name: str, field: str = "department") -> str:
    if name == EVERY_DEPARTMENT:
        return name
    if not valid_department(name, allow_every=False):
        raise AccessInputError(field, f"department {name!r} is not a department name (or * for every department)")
    if not department_exists(session, name):
        known = ", ".join(d.name for d in departments(session))
        raise AccessInputError(field, f"unknown department {name!r}: known are {known} (add one with "
                                      f"`ticketflow department add`)")
    return name


# --- users and memberships -------------------------------------------------------------------


@dataclass
class UserView:
    name: str
    display_name: str
    created_at: datetime
    disabled_at: datetime | None
    memberships: list[tuple[str, str]]


def _membership_rows(session: Session, user: str) -> list[CasbinRule]:
    q = select(CasbinRule).where(CasbinRule.ptype == "g", CasbinRule.v0 == USER_SUBJECT + user)
    return list(session.exec(q.order_by(CasbinRule.v2, CasbinRule.v1)))


def memberships(session: Session, user: str) -> list[tuple[str, str]]:
    return [(r.v1 or "", r.v2 or "") for r in _membership_rows(session, user)]


def _user_view(session: Session, row: UserAccount) -> UserView:
    return UserView(row.name, row.display_name, row.created_at, row.disabled_at, memberships(session, row.name))


def _valid_user_name(name: str) -> str:
    if not re.fullmatch(USER_PATTERN, name or ""):
        raise AccessInputError("user", f"user name {name!r}: 1 to 100 letters, digits and . _ @ + -")
    return name


def get_user(session: Session, name: str) -> UserView | None:
    row = session.get(UserAccount, name)
    return _user_view(session, row) if row else None


def list_users(session: Session) -> list[UserView]:
    return [_user_view(session, r) for r in session.exec(select(UserAccount).order_by(UserAccount.name))]


def create_user(session: Session, actor: str, name: str, display_name: str = "") -> tuple[UserView, bool]:
    """Create the user; an existing one is returned unchanged (False)."""
    _valid_user_name(name)
    row = session.get(UserAccount, name)
    if row is not None:
        return _user_view(session, row), False
    row = UserAccount(name=name, display_name=display_name, created_at=utcnow())
    session.add(row)
    _audit(session, actor, "user.create", f"user:{name}", None, {"name": name, "display_name": display_name})
    return _user_view(session, row), True


def _existing_user(session: Session, name: str) -> UserAccount:
    row = session.get(UserAccount, name)
    if row is None:
        raise AccessInputError("user", f"unknown user {name!r}: create it first (`ticketflow user create {name}`)")
    return row


def disable_user(session: Session, actor: str, name: str) -> UserView:
    """Disable the user and revoke every token they hold; memberships stay for the record."""
    row = session.get(UserAccount, name)
    if row is None:
        raise AccessNotFound(f"no user {name}")
    if row.disabled_at is None:
        now = utcnow()
        row.disabled_at = now
        session.add(row)
        revoked = session.execute(
            update(ApiToken).where(ApiToken.user == name, ApiToken.revoked_at.is_(None)).values(revoked_at=now)  # type: ignore[union-attr]
        ).rowcount
        _audit(session, actor, "user.disable", f"user:{name}", {"disabled": False}, {"disabled": True,
                                                                                      "tokens_revoked": revoked})
    return _user_view(session, row)


def _valid_role(role: str) -> str:
    if role not in ROLES:
        raise AccessInputError("role", f"unknown role {role!r}: roles are {', '.join(sorted(ROLES))}")
    return role


def grant(session: Session, actor: str, user: str, role: str, department: str) -> tuple[list[tuple[str, str]], bool]:
    """Give `user` `role` in `department` (`*`: every department). Returns the user's
    memberships and whether anything changed."""
    _valid_role(role)
    _existing_user(session, user)
    _known_department(session, department)
    before = memberships(session, user)
    if (role, department) in before:
        return before, False
    session.add(CasbinRule(ptype="g", v0=USER_SUBJECT + user, v1=role, v2=department))
    session.flush()
    after = memberships(session, user)
    _audit(session, actor, "membership.grant", f"user:{user}", before, after)
    return after, True


def revoke(session: Session, actor: str, user: str, role: str, department: str) -> tuple[list[tuple[str, str]], bool]:
    _valid_role(role)
    _existing_user(session, user)
    if department != EVERY_DEPARTMENT and not valid_department(department, allow_every=False):
        raise AccessInputError("department", f"department {department!r} is not a department name")
    before = memberships(session, user)
    rows = [r for r in _membership_rows(session, user) if r.v1 == role and r.v2 == department]
    if not rows:
        return before, False
    for row in rows:
        session.delete(row)
    session.flush()
    after = memberships(session, user)
    _audit(session, actor, "membership.revoke", f"user:{user}", before, after)
    return after, True


# --- tokens ------------------------------------------------------------------------------------


@dataclass
class TokenView:
    id: int
    user: str
    label: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: ApiToken) -> TokenView:
        assert row.id is not None
        return cls(row.id, row.user, row.label, row.created_at, row.expires_at, row.revoked_at)

    def audit(self) -> dict[str, Any]:  # never the token or its hash
        return {"id": self.id, "user": self.user, "label": self.label,
                "expires_at": self.expires_at.isoformat() if self.expires_at else None,
                "revoked": self.revoked_at is not None}


def issue_token(session: Session, actor: str, user: str, *, label: str = "",
                expires_in: timedelta | None = None) -> tuple[str, TokenView]:
    """A new token for an existing, enabled user: the secret is returned once and stored
    only as its hash."""
    account = _existing_user(session, user)
    if account.disabled_at is not None:
        raise AccessInputError("user", f"user {user!r} is disabled")
    if expires_in is not None and expires_in <= timedelta(0):
        raise AccessInputError("expires_in", "expires_in must be positive")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    row = ApiToken(token_hash=hash_token(token), user=user, label=label, created_at=now,
                   expires_at=now + expires_in if expires_in else None)
    session.add(row)
    session.flush()
    view = TokenView.of(row)
    _audit(session, actor, "token.create", f"user:{user}", None, view.audit())
    return token, view


def list_tokens(session: Session, user: str | None = None, *, include_revoked: bool = False) -> list[TokenView]:
    q = select(ApiToken)
    if user:
        q = q.where(ApiToken.user == user)
    if not include_revoked:
        q = q.where(ApiToken.revoked_at.is_(None))  # type: ignore[union-attr]
    return [TokenView.of(r) for r in session.exec(q.order_by(ApiToken.id))]


def _token(session: Session, token_id: int) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None:
        raise AccessNotFound(f"no token {token_id}")
    return row


def revoke_token(session: Session, actor: str, token_id: int) -> TokenView:
    row = _token(session, token_id)
    if row.revoked_at is None:
        before = TokenView.of(row).audit()
        row.revoked_at = utcnow()
        session.add(row)
        _audit(session, actor, "token.revoke", f"user:{row.user}", before, TokenView.of(row).audit())
    return TokenView.of(row)


def rotate_token(session: Session, actor: str, token_id: int, *, expires_in: timedelta | None = None
                 ) -> tuple[str, TokenView]:
    """Revoke a token and issue its successor for the same user and label, in one step."""
    row = _token(session, token_id)
    if row.revoked_at is not None:
        raise AccessInputError("token", f"token {token_id} is revoked already; issue a new one")
    if expires_in is None and row.expires_at is not None:  # the successor lives as long as its predecessor did
        expires_in = _aware(row.expires_at) - _aware(row.created_at)
    revoke_token(session, actor, token_id)
    return issue_token(session, actor, row.user, label=row.label, expires_in=expires_in)


def user_for_token(session: Session, token_hash: str) -> str | None:
    """The user of a valid token, by its hash: known, not revoked, not expired, user enabled."""
    row = session.exec(
        select(ApiToken, UserAccount).join(UserAccount, UserAccount.name == ApiToken.user)  # type: ignore[arg-type]
        .where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None))  # type: ignore[union-attr]
    ).first()
    if row is None:
        return None
    tok, account = row
    if account.disabled_at is not None:
        return None
    if tok.expires_at is not None and _aware(tok.expires_at) <= utcnow():
        return None
    return tok.user


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def token_for(session: Session, user: str, role: Role | str, departments: list[str] | None = None,
              *, actor: str = CLI_ACTOR, label: str = "") -> str:
    """Create the user if needed, grant `role` in each of `departments`, and issue a token:
    what `ticketflow token create --user U --role R [--department D ...]` does.

    Agents and supervisors must name their departments (`*` for every one); other roles
    default to every department."""
    role = _valid_role(str(role.value if isinstance(role, Role) else role))
    departments = [d for d in (departments or []) if d != ""]
    if not departments:
        if role in (Role.agent.value, Role.supervisor.value):
            raise AccessInputError("department", f"the role {role} is held in named departments: give "
                                                 "--department D (repeat it for several, * for every department)")
        departments = [EVERY_DEPARTMENT]
    create_user(session, actor, user)
    for department in departments:
        grant(session, actor, user, role, department)
    token, _ = issue_token(session, actor, user, label=label or f"{role} token")
    return token


# --- policy rules ------------------------------------------------------------------------------


Rule = tuple[str, ...]


def rules(session: Session) -> list[Rule]:
    """The `p` rules and the role-to-role `g` rules, in a stable order."""
    rows = session.exec(select(CasbinRule).order_by(CasbinRule.ptype.desc(), CasbinRule.id))  # type: ignore[union-attr]
    return [(r.ptype, *r.values) for r in rows if r.ptype == "p" or (r.ptype == "g" and r.v0 in ROLES)]


def export_policy(session: Session) -> str:
    lines = ["# ticketflow policy, version %d: p, ROLE, OBJECT, ACTION, SCOPE, LIMIT / g, ROLE, ROLE, *"
             % current_version(session)]
    lines += [", ".join(rule) for rule in rules(session)]
    return "\n".join(lines) + "\n"


def parse_policy(text: str) -> list[Rule]:
    """Rules from a policy file; memberships belong in grants, not files. Raises
    AccessInputError naming the first bad line."""
    parsed: list[Rule] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = [f.strip() for f in next(csv.reader(io.StringIO(line), skipinitialspace=True))]
        where = f"line {number}"
        if fields[0] == "p":
            if len(fields) == 5:
                fields.append("")
            if len(fields) != 6:
                raise AccessInputError("policy", f"{where}: a p rule is p, ROLE, OBJECT, ACTION, SCOPE, LIMIT")
            _, role, obj, act, scope, limit = fields
            if role not in ROLES:
                raise AccessInputError("policy", f"{where}: unknown role {role!r}: roles are {', '.join(sorted(ROLES))}")
            if not obj or not act or not obj.replace("_", "").isalnum() or not act.replace("_", "").isalnum():
                raise AccessInputError("policy", f"{where}: object and action are single words")
            if scope not in SCOPES:
                raise AccessInputError("policy", f"{where}: unknown scope {scope!r}: scopes are {', '.join(SCOPES)}")
            if limit:
                try:
                    if float(limit) < 0:
                        raise ValueError
                except ValueError:
                    raise AccessInputError("policy", f"{where}: limit {limit!r} is not a non-negative number") from None
            parsed.append(("p", role, obj, act, scope, limit))
        elif fields[0] == "g":
            if len(fields) == 3:
                fields.append(EVERY_DEPARTMENT)
            if len(fields) != 4:
                raise AccessInputError("policy", f"{where}: a g rule is g, ROLE, INHERITED_ROLE, *")
            _, role, inherited, dom = fields
            if role not in ROLES:
                raise AccessInputError("policy", f"{where}: {role!r} is not a role; memberships of users are "
                                                 "granted with `ticketflow policy grant`, not imported")
            if inherited not in ROLES:
                raise AccessInputError("policy", f"{where}: unknown role {inherited!r}")
            if dom != EVERY_DEPARTMENT:
                raise AccessInputError("policy", f"{where}: role inheritance holds in every department (*)")
            parsed.append(("g", role, inherited, dom))
        else:
            raise AccessInputError("policy", f"{where}: lines start with p or g, not {fields[0]!r}")
    if not any(r[0] == "p" for r in parsed):
        raise AccessInputError("policy", "the file has no p rules: importing it would deny everything to everyone")
    return list(dict.fromkeys(parsed))


@dataclass
class PolicyDiff:
    added: list[Rule]
    removed: list[Rule]

    @property
    def empty(self) -> bool:
        return not self.added and not self.removed


def diff_policy(session: Session, new_rules: list[Rule]) -> PolicyDiff:
    current = rules(session)
    return PolicyDiff(added=[r for r in new_rules if r not in current], removed=[r for r in current if r not in new_rules])


def import_policy(session: Session, actor: str, text: str, *, dry_run: bool = False) -> PolicyDiff:
    """Replace the rules with those of `text` (memberships stay). Returns what changed."""
    new_rules = parse_policy(text)
    diff = diff_policy(session, new_rules)
    if dry_run or diff.empty:
        return diff
    before = rules(session)
    for row in session.exec(select(CasbinRule)):
        if row.ptype == "p" or (row.ptype == "g" and row.v0 in ROLES):
            session.delete(row)
    session.flush()
    for rule in new_rules:
        values = list(rule[1:]) + [None] * (6 - len(rule[1:]))
        session.add(CasbinRule(ptype=rule[0], v0=values[0], v1=values[1], v2=values[2], v3=values[3],
                               v4=values[4], v5=values[5]))
    session.flush()
    _audit(session, actor, "policy.import", "policy", [list(r) for r in before], [list(r) for r in new_rules])
    return diff


# --- routing ------------------------------------------------------------------------------------


def work_departments(session: Session, users: list[str], *, action: str = "claim") -> dict[str, set[str]]:
    """Departments (`*` for every one) in which each user holds a role that may `action`
    tasks: routing offers an agent only tasks of these, read in routing's own transaction
    from the same rows authorization loads."""
    if not users:
        return {}
    rows = list(session.exec(select(CasbinRule).where(CasbinRule.ptype.in_(("p", "g")))))  # type: ignore[attr-defined]
    roles = {r.v0 for r in rows if r.ptype == "p" and r.v1 == "task" and r.v2 == action
             and r.v3 in ("department", "all")}
    inherits = [(r.v0, r.v1) for r in rows if r.ptype == "g" and r.v0 in ROLES and r.v1 in ROLES]
    grown = True
    while grown:  # a role inheriting a role that may act may act too
        grown = False
        for role, parent in inherits:
            if parent in roles and role not in roles:
                roles.add(role)
                grown = True
    found: dict[str, set[str]] = {u: set() for u in users}
    for r in rows:
        user = (r.v0 or "").removeprefix(USER_SUBJECT)
        if r.ptype == "g" and (r.v0 or "").startswith(USER_SUBJECT) and user in found and r.v1 in roles and r.v2:
            found[user].add(r.v2)
    return found
