"""Dependencies every route shares, as `Annotated` aliases, and the answers about access
every route gives the same way."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from temporalio.client import Client

from api.auth import TokenVerifier
from workflows import registry
from models.auth import AccessDecision, Principal, WebSession
from models.db import Database
from policies import Authorizer, Reach, Resource, people
from settings import Settings

_bearer = HTTPBearer(auto_error=False, description="A token from `ticketflow token create` or `POST /admin/tokens`.")

# The getters are `async` although they only read app state: FastAPI runs a plain `def`
# dependency on the thread pool, and three thread hops per request cost more CPU than the
# rest of a ticket's intake in the API process.


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_db(request: Request) -> Database:
    return request.app.state.db


async def get_authorizer(request: Request) -> Authorizer:
    """The process's authorizer, reloaded when the policy version in the database moved
    (checked at most every `policy_refresh_seconds`, so a change is in force everywhere
    within seconds)."""
    authorizer: Authorizer = request.app.state.authorizer
    await authorizer.arefresh()
    return authorizer


async def get_temporal(request: Request) -> Client:
    return await request.app.state.temporal.client()


_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


async def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The caller: by API token (`Authorization: Bearer`), else by the console's session
    cookie, whose changes must carry the session's CSRF token."""
    if credentials is None and request.cookies.get(people.COOKIE):
        return await _session_principal(request)
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token: send `Authorization: Bearer <token>` (create one with `ticketflow token create`)"
            " or sign in (`POST /auth/session`)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    verifier: TokenVerifier = request.app.state.tokens
    principal = await verifier.verify(credentials.credentials)
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "token is not valid, expired or was revoked",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


# Sent by the console when a page refreshes itself (live updates, the dashboard's timer): not
# the person's doing, so it does not keep an unattended session from going idle.
REFRESH_HEADER = "X-Console-Refresh"


async def live_session(request: Request) -> WebSession | None:
    """The live console session of the request's cookie, if any (its last-seen time kept,
    unless the page is only refreshing itself)."""
    token = request.cookies.get(people.COOKIE)
    if not token:
        return None
    settings: Settings = request.app.state.settings
    return await request.app.state.db.run(people.session_for, token, idle=settings.session_idle_timeout,
                                          max_age=settings.session_max_age,
                                          touch=REFRESH_HEADER not in request.headers)


async def _session_principal(request: Request) -> Principal:
    row = await live_session(request)
    if row is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "your session ended (signed out, idle or too old): sign in again",
                            headers={"WWW-Authenticate": "Bearer"})
    if request.method not in _SAFE_METHODS and not people.csrf_matches(row, request.headers.get("X-CSRF-Token")):
        raise HTTPException(status.HTTP_403_FORBIDDEN, people.CSRF_REFUSED)
    return Principal(name=row.user)


SettingsDep = Annotated[Settings, Depends(get_settings)]
DbDep = Annotated[Database, Depends(get_db)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
CurrentUser = Annotated[Principal, Depends(current_principal)]
AuthorizerDep = Annotated[Authorizer, Depends(get_authorizer)]


def forbidden(who: Principal, action: str, kind: str, where: str = "", why: str = "") -> HTTPException:
    place = f" in department {where}" if where else ""
    return HTTPException(
        status.HTTP_403_FORBIDDEN,
        f"{who.name} lacks the right {kind}:{action}{place}" + (f": {why}" if why else "")
        + " (an admin grants rights with `ticketflow policy grant`)",
    )


def require(authorizer: Authorizer, who: Principal, action: str, resource: Resource) -> AccessDecision:
    decision = authorizer.decide(who, action, resource)
    if not decision.allowed:
        raise forbidden(who, action, resource.kind, resource.department)
    return decision


def require_reach(authorizer: Authorizer, who: Principal, action: str, kind: str) -> Reach:
    reach = authorizer.reach(who, action, kind)
    if reach.nothing:
        raise forbidden(who, action, kind)
    return reach


def not_found(kind: str, ident: str) -> HTTPException:
    """The same answer for an object that does not exist and one the caller may not see, so
    ids cannot be probed."""
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no {kind} {ident} (or you may not see it)")


class ErrorDetail(BaseModel):
    detail: str


class InputProblem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class InputProblems(BaseModel):
    """FastAPI's own shape for invalid input, so clients read every 422 the same way."""

    detail: list[InputProblem]


def _described(text: str) -> dict[str, Any]:
    return {"description": text, "model": ErrorDetail}


UNAUTHENTICATED = {401: _described("No bearer token, or one that is unknown, expired or revoked.")}
# Answered by the app's handlers (api/main.py) for any route, with a Retry-After header.
UNAVAILABLE = {503: _described("The database or the workflow engine (Temporal) is unreachable; nothing was "
                               "changed, retry after `Retry-After` seconds.")}
FORBIDDEN = {403: _described("The caller's roles lack the right named in the message.")}
NOT_FOUND = {404: _described("No such object, or one the caller may not see: both answer the same.")}
CONFLICT = {409: _described("The object's state does not allow this now; the message says why.")}
REJECTED = {422: {"model": InputProblems,
                  "description": "The request names something unknown or malformed (`loc` says which field, "
                                 "`msg` what to fix); nothing was changed."}}


def refusal(status_code: int, text: str) -> dict[int, Any]:
    """A route's own documented refusal, answered as `{"detail": "..."}`."""
    return {status_code: _described(text)}


def answers(*groups: dict[int, Any]) -> dict[int | str, Any]:
    """`responses=` for a route: 401 and 503 always, plus the given groups."""
    merged: dict[int | str, Any] = {**UNAUTHENTICATED, **UNAVAILABLE}
    for group in groups:
        merged.update(group)
    return merged


def _case_type_filter(
    case_type: Annotated[str | None, Query(max_length=50, description="Only cases of this type (see GET /case-types)")]
    = None,
) -> str | None:
    if case_type is not None:
        try:
            registry.get(case_type)
        except registry.CaseTypeError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [
                {"loc": ["query", "case_type"], "msg": str(exc), "type": "value_error"}]) from None
    return case_type


CaseTypeFilter = Annotated[str | None, Depends(_case_type_filter)]
