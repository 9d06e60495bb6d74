"""Administration of access: users, departments, memberships, policy rules, tokens and the
access audit. Admins write; admins and auditors read.

Every change goes through `policies.store`, which writes its audit row (and, for rules and
memberships, bumps the policy version) in the same transaction: a refused change (422,
404, 409) leaves nothing behind, and an accepted one is in force in every process within
seconds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from api.deps import CONFLICT, FORBIDDEN, NOT_FOUND, REJECTED, AuthorizerDep, CurrentUser, DbDep, answers, require
from models.auth import Membership, Principal
from models.db import Database
from policies import Authorizer, Resource
from policies import store
from policies.store import AccessInputError, AccessNotFound, PolicyDiff, TokenView, UserView

router = APIRouter(prefix="/admin", tags=["admin"])

T = TypeVar("T")

# Token and audit ids are 32-bit integer columns on PostgreSQL (64-bit on SQLite): a larger
# number names no row, and the drivers refuse to even compare it, so it is invalid input.
ROW_ID_MAX = 2**31 - 1
TokenId = Annotated[int, Path(ge=1, le=ROW_ID_MAX)]


# --- contracts -------------------------------------------------------------------------------


class MembershipPublic(BaseModel):
    role: str
    department: str = Field(description="`*`: every department.")


class UserBase(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="Letters, digits and . _ @ + -; for customers, "
                                                                "their customer id.")
    display_name: str = Field(default="", max_length=200)


class UserCreate(UserBase):
    pass


class UserPublic(UserBase):
    created_at: datetime
    disabled_at: datetime | None
    memberships: list[MembershipPublic]

    @classmethod
    def of(cls, view: UserView) -> UserPublic:
        return cls(name=view.name, display_name=view.display_name, created_at=view.created_at,
                   disabled_at=view.disabled_at, memberships=_memberships(view.memberships))


class MembershipChange(BaseModel):
    user: str
    changed: bool = Field(description="False when the user held (or lacked) the membership already.")
    memberships: list[MembershipPublic] = Field(description="Everything the user holds after the change.")


class DepartmentBase(BaseModel):
    name: str = Field(min_length=1, max_length=50, description="Lower-case letters, digits, _ and -.")
    description: str = Field(default="", max_length=300)


class DepartmentCreate(DepartmentBase):
    pass


class DepartmentPublic(DepartmentBase):
    model_config = ConfigDict(from_attributes=True)

    created_at: datetime


class PolicyPublic(BaseModel):
    version: int = Field(description="Moves with every change to rules or memberships.")
    rules: list[list[str]] = Field(description="`p, ROLE, OBJECT, ACTION, SCOPE, LIMIT` and `g, ROLE, ROLE, *`, "
                                               "as in policies/policy.csv.")


class PolicyFile(BaseModel):
    policy: str = Field(max_length=1_000_000, description="A policy file's text, as `GET /admin/policy?format=csv` "
                                                          "gives it. Memberships are not part of it.")


class PolicyDiffPublic(BaseModel):
    version: int = Field(description="The policy version after the request.")
    added: list[list[str]]
    removed: list[list[str]]

    @classmethod
    def of(cls, diff: PolicyDiff, version: int) -> PolicyDiffPublic:
        return cls(version=version, added=[list(r) for r in diff.added], removed=[list(r) for r in diff.removed])


class TokenPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user: str
    label: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenIssued(TokenPublic):
    token: str = Field(description="The secret, shown this once: only its hash is stored.")

    @classmethod
    def of(cls, secret: str, view: TokenView) -> TokenIssued:
        return cls(**asdict(view), token=secret)


class TokenCreate(BaseModel):
    user: str = Field(min_length=1, max_length=100, description="An existing, enabled user.")
    label: str = Field(default="", max_length=200, description="What the token is for, e.g. `helpdesk sync`.")
    expires_in_days: int | None = Field(default=None, gt=0, le=3650, description="None: it never expires.")


class TokenRotate(BaseModel):
    expires_in_days: int | None = Field(default=None, gt=0, le=3650,
                                        description="Of the new token; none: it never expires.")


class AuditEntryPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    action: str = Field(description="e.g. membership.grant, token.revoke, policy.import")
    subject: str = Field(description="e.g. user:ana, department:billing, policy")
    before: Any
    after: Any
    policy_version: int


def _memberships(pairs: list[tuple[str, str]]) -> list[MembershipPublic]:
    return [MembershipPublic(role=role, department=department) for role, department in pairs]


def _days(days: int | None) -> timedelta | None:
    return timedelta(days=days) if days is not None else None


# --- the store, with its refusals as HTTP answers -----------------------------------------


async def _store(db: Database, fn: Callable[..., T], *args: Any, fields: dict[str, str] | None = None,
                 **kwargs: Any) -> T:
    """Run a store function in one transaction. Its refusals propagate out of `db.run`, so
    the transaction rolls back whole, and become 422 (naming the body field: `fields` maps
    the store's name for it to the body's) or 404."""
    try:
        return await db.run(fn, *args, **kwargs)
    except AccessInputError as exc:
        field = (fields or {}).get(exc.field, exc.field)
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            [{"loc": ["body", field], "msg": str(exc), "type": "value_error"}]) from exc
    except AccessNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc


def _reader(authorizer: Authorizer, user: Principal) -> None:
    require(authorizer, user, "read", Resource("access"))


def _writer(authorizer: Authorizer, user: Principal) -> None:
    require(authorizer, user, "write", Resource("access"))


# --- users -------------------------------------------------------------------------------


@router.get("/users", response_model=list[UserPublic], responses=answers(FORBIDDEN),
            summary="Every user with their memberships")
async def list_users(user: CurrentUser, db: DbDep, authorizer: AuthorizerDep) -> list[UserPublic]:
    _reader(authorizer, user)
    return [UserPublic.of(v) for v in await db.run(store.list_users)]


@router.post("/users", response_model=UserPublic, status_code=status.HTTP_201_CREATED,
             responses={**answers(FORBIDDEN, REJECTED),
                        200: {"model": UserPublic, "description": "The user existed: returned unchanged."}},
             summary="Create a user (no memberships, no token yet)")
async def create_user(body: UserCreate, user: CurrentUser, db: DbDep, authorizer: AuthorizerDep,
                      response: Response) -> UserPublic:
    _writer(authorizer, user)
    view, created = await _store(db, store.create_user, user.name, body.name, body.display_name,
                                 fields={"user": "name"})
    if not created:
        response.status_code = status.HTTP_200_OK
    return UserPublic.of(view)


@router.get("/users/{name}", response_model=UserPublic, responses=answers(FORBIDDEN, NOT_FOUND),
            summary="One user with their memberships")
async def get_user(name: str, user: CurrentUser, db: DbDep, authorizer: AuthorizerDep) -> UserPublic:
    _reader(authorizer, user)
    view = await db.run(store.get_user, name)
    if view is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {name} (create it with POST /admin/users)")
    return UserPublic.of(view)


@router.post("/users/{name}/disable", response_model=UserPublic, responses=answers(FORBIDDEN, NOT_FOUND),
             summary="Disable a user and revoke every token they hold (memberships stay, for the record)")
async def disable_user(name: str, user: CurrentUser, db: DbDep, authorizer: AuthorizerDep) -> UserPublic:
    _writer(authorizer, user)
    return UserPublic.of(await _store(db, store.disable_user, user.name, name))


# --- departments ---------------------------------------------------------------------------


@router.get("/departments", response_model=list[DepartmentPublic], responses=answers(FORBIDDEN),
            summary="Every department (a task queue, and a domain memberships name)")
async def list_departments(user: CurrentUser, db: DbDep, authorizer: AuthorizerDep) -> list[DepartmentPublic]:
    _reader(authorizer, user)
    return [DepartmentPublic.model_validate(d) for d in await db.run(store.departments)]


@router.post("/departments", response_model=DepartmentPublic, status_code=status.HTTP_201_CREATED,
             responses={**answers(FORBIDDEN, REJECTED),
                        200: {"model": DepartmentPublic, "description": "It existed: returned unchanged."}},
             summary="Add a department")
async def add_department(body: DepartmentCreate, user: CurrentUser, db: DbDep, authorizer: AuthorizerDep,
                         response: Response) -> DepartmentPublic:
    _writer(authorizer, user)
    row, created = await _store(db, store.add_department, user.name, body.name, body.description)
    if not created:
        response.status_code = status.HTTP_200_OK
    return DepartmentPublic.model_validate(row)


# --- memberships ---------------------------------------------------------------------------


@router.post("/memberships", response_model=MembershipChange, responses=answers(FORBIDDEN, REJECTED),
             summary="Grant a user a role in a department (`*`: every department)")
async def grant(body: Membership, user: CurrentUser, db: DbDep, authorizer: AuthorizerDep) -> MembershipChange:
    _writer(authorizer, user)
    after, changed = await _store(db, store.grant, user.name, body.user, body.role.value, body.department)
    return MembershipChange(user=body.user, changed=changed, memberships=_memberships(after))


@router.post("/memberships/revoke", response_model=MembershipChange, responses=answers(FORBIDDEN, REJECTED),
             summary="Take a role in a department away from a user")
async def revoke(body: Membership, user: CurrentUser, db: DbDep, authorizer: AuthorizerDep) -> MembershipChange:
    _writer(authorizer, user)
    after, changed = await _store(db, store.revoke, user.name, body.user, body.role.value, body.department)
    return MembershipChange(user=body.user, changed=changed, memberships=_memberships(after))


# --- policy rules --------------------------------------------------------------------------


def _policy(session: Session) -> PolicyPublic:
    return PolicyPublic(version=store.current_version(session), rules=[list(r) for r in store.rules(session)])


def _import(session: Session, actor: str, text: str, dry_run: bool) -> PolicyDiffPublic:
    diff = store.import_policy(session, actor, text, dry_run=dry_run)
    return PolicyDiffPublic.of(diff, store.current_version(session))


@router.get("/policy", response_model=PolicyPublic,
            responses={**answers(FORBIDDEN),
                       200: {"content": {"text/plain": {}},
                             "description": "The rules with their version; `?format=csv`: as a policy file."}},
            summary="The policy rules (memberships are per user: GET /admin/users)")
async def get_policy(
    user: CurrentUser, db: DbDep, authorizer: AuthorizerDep,
    format: Annotated[Literal["json", "csv"], Query(description="csv: a file `PUT /admin/policy` and "
                                                                "`ticketflow policy import` take back")] = "json",
) -> Any:
    _reader(authorizer, user)
    if format == "csv":
        return PlainTextResponse(await db.run(store.export_policy))
    return await db.run(_policy)


@router.post("/policy/diff", response_model=PolicyDiffPublic, responses=answers(FORBIDDEN, REJECTED),
             summary="What importing a policy file would add and remove; writes nothing")
async def diff_policy(body: PolicyFile, user: CurrentUser, db: DbDep, authorizer: AuthorizerDep
                      ) -> PolicyDiffPublic:
    _reader(authorizer, user)  # it writes nothing: auditors may compare a proposal too
    return await _store(db, _import, user.name, body.policy, dry_run=True)


@router.put("/policy", response_model=PolicyDiffPublic, responses=answers(FORBIDDEN, REJECTED),
            summary="Replace the rules with a policy file's; memberships stay. Returns what changed")
async def import_policy(body: PolicyFile, user: CurrentUser, db: DbDep, authorizer: AuthorizerDep
                        ) -> PolicyDiffPublic:
    _writer(authorizer, user)
    return await _store(db, _import, user.name, body.policy, dry_run=False)


# --- tokens --------------------------------------------------------------------------------


@router.get("/tokens", response_model=list[TokenPublic], responses=answers(FORBIDDEN),
            summary="API tokens (never their secrets), oldest first")
async def list_tokens(
    user: CurrentUser, db: DbDep, authorizer: AuthorizerDep,
    of: Annotated[str | None, Query(alias="user", max_length=100, description="Only this user's tokens")] = None,
    include_revoked: Annotated[bool, Query(description="Also revoked tokens")] = False,
) -> list[TokenPublic]:
    _reader(authorizer, user)
    return [TokenPublic.model_validate(t) for t in await db.run(store.list_tokens, of, include_revoked=include_revoked)]


@router.post("/tokens", response_model=TokenIssued, status_code=status.HTTP_201_CREATED,
             responses=answers(FORBIDDEN, REJECTED),
             summary="Issue a token to a user; the secret is in this answer only")
async def issue_token(body: TokenCreate, user: CurrentUser, db: DbDep, authorizer: AuthorizerDep) -> TokenIssued:
    _writer(authorizer, user)
    secret, view = await _store(db, store.issue_token, user.name, body.user, label=body.label,
                                expires_in=_days(body.expires_in_days))
    return TokenIssued.of(secret, view)


@router.post("/tokens/{token_id}/revoke", response_model=TokenPublic, responses=answers(FORBIDDEN, NOT_FOUND),
             summary="Revoke a token (it stops working within seconds everywhere); revoking again changes nothing")
async def revoke_token(token_id: TokenId, user: CurrentUser, db: DbDep, authorizer: AuthorizerDep) -> TokenPublic:
    _writer(authorizer, user)
    return TokenPublic.model_validate(await _store(db, store.revoke_token, user.name, token_id))


@router.post("/tokens/{token_id}/rotate", response_model=TokenIssued, status_code=status.HTTP_201_CREATED,
             responses=answers(FORBIDDEN, NOT_FOUND, CONFLICT, REJECTED),
             summary="Revoke a token and issue its successor (same user and label) in one step")
async def rotate_token(token_id: TokenId, user: CurrentUser, db: DbDep, authorizer: AuthorizerDep,
                       body: TokenRotate | None = None) -> TokenIssued:
    _writer(authorizer, user)
    try:
        secret, view = await db.run(store.rotate_token, user.name, token_id,
                                    expires_in=_days(body.expires_in_days if body else None))
    except AccessNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except AccessInputError as exc:
        # The store refuses a revoked token: a matter of the token's state, not of the input.
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return TokenIssued.of(secret, view)


# --- audit ---------------------------------------------------------------------------------


@router.get("/audit", response_model=list[AuditEntryPublic], responses=answers(FORBIDDEN),
            summary="Every change to access, newest first")
async def audit(
    user: CurrentUser, db: DbDep, authorizer: AuthorizerDep,
    subject: Annotated[str | None, Query(max_length=200, description="e.g. user:ana, department:billing, policy")
                       ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: Annotated[int | None, Query(ge=1, le=ROW_ID_MAX, description="The next page: the last id of this one")
                         ] = None,
) -> list[AuditEntryPublic]:
    _reader(authorizer, user)
    rows = await db.run(store.audit_log, subject=subject, limit=limit, before_id=before_id)
    return [AuditEntryPublic.model_validate(r) for r in rows]
