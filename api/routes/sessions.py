"""Signing in for people: a password opens a server-side session held in an HttpOnly,
SameSite=Strict cookie; every request that changes something under that cookie carries the
session's CSRF token in ``X-CSRF-Token``. API tokens (``Authorization: Bearer``) stay what
integrations use and need no CSRF token."""

from __future__ import annotations

import threading

import anyio
from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, Field

from api.deps import DbDep, SettingsDep, live_session
from policies import people
from policies.store import AccessInputError

router = APIRouter(prefix="/auth", tags=["sign-in"])
COOKIE = people.COOKIE
# argon2 takes about 50 ms of CPU and 64 MiB per hash: at most this many at once per process,
# whoever sends how many sign-ins.
HASHING = threading.BoundedSemaphore(2)


def _hashing(fn, *args):  # noqa: ANN001, ANN202
    with HASHING:
        return fn(*args)


class SignIn(BaseModel):
    user: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=people.MAX_PASSWORD)


class SessionView(BaseModel):
    user: str
    csrf_token: str = Field(description="Send it as `X-CSRF-Token` on every request that changes something.")
    idle_timeout_seconds: int = Field(description="The session ends after this long without a request.")


class InviteRedeem(BaseModel):
    token: str = Field(min_length=1, max_length=200, description="The invite from `ticketflow user invite`.")
    password: str = Field(min_length=1, max_length=people.MAX_PASSWORD)


_WRONG = {"description": "Wrong user name or password."}


@router.post("/session", response_model=SessionView, summary="Sign in with a password",
             responses={401: _WRONG, 429: {"description": "Too many wrong passwords; `Retry-After` says how long."}})
async def sign_in(body: SignIn, response: Response, db: DbDep, settings: SettingsDep) -> SessionView:
    """Check the password and open a session (its secret in the `tf_session` cookie). From
    the fifth attempt in a row without success the name locks for 30 s, doubling up to 15
    minutes."""
    password_hash, wait = await db.run(people.sign_in_check, body.user)
    if wait is not None:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, f"too many attempts: try again in {wait} s",
                            headers={"Retry-After": str(wait)})
    matched = await anyio.to_thread.run_sync(_hashing, people.password_matches, password_hash, body.password)
    result = await db.run(people.record_sign_in, body.user, password_hash, matched, body.password)
    if not isinstance(result, people.SignedIn):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, people.WRONG)
    await db.run(people.prune_sessions, result.user, idle=settings.session_idle_timeout,
                 max_age=settings.session_max_age)
    response.set_cookie(COOKIE, result.token, httponly=True, samesite="strict", secure=settings.session_cookie_secure,
                        max_age=int(settings.session_max_age.total_seconds()), path="/")
    return SessionView(user=result.user, csrf_token=result.csrf_token,
                       idle_timeout_seconds=int(settings.session_idle_timeout.total_seconds()))


@router.get("/session", response_model=SessionView, summary="Who is signed in, and the CSRF token",
            responses={401: {"description": "No session, or it ended."}})
async def current_session(request: Request, settings: SettingsDep) -> SessionView:
    row = await live_session(request)
    if row is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "not signed in, or the session ended: sign in again")
    return SessionView(user=row.user, csrf_token=row.csrf_token,
                       idle_timeout_seconds=int(settings.session_idle_timeout.total_seconds()))


@router.delete("/session", status_code=status.HTTP_204_NO_CONTENT, summary="Sign out",
               responses={403: {"description": "The session's CSRF token is missing or wrong."}})
async def sign_out(request: Request, db: DbDep, settings: SettingsDep) -> Response:
    """End the session and clear its cookie; without a session there is nothing to end."""
    row = await live_session(request)
    if row is not None:
        if not people.csrf_matches(row, request.headers.get("X-CSRF-Token")):
            raise HTTPException(status.HTTP_403_FORBIDDEN, people.CSRF_REFUSED)
        await db.run(people.sign_out, request.cookies[COOKIE])
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=settings.session_cookie_secure)
    return response


@router.post("/invite", status_code=status.HTTP_204_NO_CONTENT, summary="Set a password with a one-time invite",
             responses={422: {"description": "The invite is unknown, used or expired, or the password too short."}})
async def redeem_invite(body: InviteRedeem, db: DbDep) -> Response:
    try:
        people.check_password(body.password)
        await db.run(people.invite_user, body.token)  # before any hashing: a made-up invite costs nothing
        hashed = await anyio.to_thread.run_sync(_hashing, people.hasher().hash, body.password)
        await db.run(people.redeem_invite, body.token, body.password, hashed=hashed)
    except AccessInputError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            [{"loc": ["body", exc.field], "msg": str(exc), "type": "value_error"}]) from exc
    return Response(status_code=status.HTTP_204_NO_CONTENT)
