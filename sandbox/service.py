"""What every sandbox service has in common: the ``/_admin`` endpoints, fault injection
around everything else, and credential checks."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable

from fastapi import APIRouter, FastAPI, HTTPException, Request

from sandbox.faults import ErrorBody, FaultInjectionMiddleware, FaultInjector, FaultSettings, FaultStatus, json_error_body


def service_app(
    title: str,
    *,
    reset_state: Callable[[], None],
    seed: int,
    error_body: ErrorBody = json_error_body,
) -> FastAPI:
    """A FastAPI app with the admin surface; ``app.state.injector`` holds its faults."""
    injector = FaultInjector(seed)
    app = FastAPI(title=title, docs_url="/_admin/docs", redoc_url=None, openapi_url="/_admin/openapi.json")
    app.state.injector = injector

    admin = APIRouter(prefix="/_admin", tags=["sandbox admin"])

    @admin.get("/faults")
    async def get_faults() -> FaultStatus:
        return injector.status()

    @admin.post("/faults")
    async def set_faults(settings: FaultSettings) -> FaultStatus:
        injector.configure(settings)
        return injector.status()

    @admin.post("/reset")
    async def reset() -> FaultStatus:
        injector.reset()
        reset_state()
        return injector.status()

    app.include_router(admin)
    app.add_middleware(FaultInjectionMiddleware, injector=injector, error_body=error_body)
    return app


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def require_bearer(request: Request, api_key: str) -> None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not _same(token, api_key):
        raise HTTPException(401, "missing or wrong API key", headers={"WWW-Authenticate": "Bearer"})


def basic_auth_ok(authorization: str | None, username: str, password: str) -> bool:
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return _same(user, username) & _same(secret, password)
