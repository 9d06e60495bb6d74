"""Dependencies every route shares, as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from temporalio.client import Client

from api.auth import TokenVerifier
from models.auth import Principal
from models.db import Database
from policies import Authorizer, Resource
from settings import Settings

_bearer = HTTPBearer(auto_error=False, description="A token from `ticketflow token create`.")

# The getters are `async` although they only read app state: FastAPI runs a plain `def`
# dependency on the thread pool, and three thread hops per request cost more CPU than the
# rest of a ticket's intake in the API process.


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_db(request: Request) -> Database:
    return request.app.state.db


async def get_authorizer(request: Request) -> Authorizer:
    return request.app.state.authorizer


async def get_temporal(request: Request) -> Client:
    return await request.app.state.temporal.client()


async def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token: send `Authorization: Bearer <token>` (create one with `ticketflow token create`)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    verifier: TokenVerifier = request.app.state.tokens
    principal = await verifier.verify(credentials.credentials)
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "token is not valid or was revoked", headers={"WWW-Authenticate": "Bearer"}
        )
    return principal


SettingsDep = Annotated[Settings, Depends(get_settings)]
DbDep = Annotated[Database, Depends(get_db)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
CurrentUser = Annotated[Principal, Depends(current_principal)]
AuthorizerDep = Annotated[Authorizer, Depends(get_authorizer)]


def require(authorizer: Authorizer, who: Principal, action: str, resource: Resource) -> None:
    if not authorizer.allowed(who, action, resource):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"role {who.role.value} may not {action} this {resource.kind}"
        )


def require_scope(authorizer: Authorizer, who: Principal, action: str, kind: str) -> str:
    scope = authorizer.scope(who, action, kind)
    if scope is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {who.role.value} may not {action} {kind}s")
    return scope
