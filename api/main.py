"""The FastAPI application."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import threading
from collections.abc import Callable
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import Client
from temporalio.service import RPCError

from api.auth import TokenVerifier
from api.deps import REJECTED
from api.routes import admin, agents, cases, codec, events, explain, health, tasks, tickets, webhooks
from api.routes import faq, sessions
from api import metrics
from api.docs import serve_docs
from api.nul import RefuseNul
from console import pages as console
from api.temporal import TemporalGateway, WorkflowEngineUnavailable, is_unavailable
from encryption import data_converter
from models.db import Database, DatabaseUnavailable
from models.readmodel import InvalidCursor
from policies import Authorizer
from policies.intake import load_intake_rules
from settings import Settings

log = logging.getLogger("ticketflow.api")

# How long a stopping API process waits for open requests. Event streams never finish by
# themselves, so without a limit Ctrl-C would wait for every console to disconnect.
SHUTDOWN_GRACE_SECONDS = 5

DESCRIPTION = """
Every customer issue is a durable workflow. Customers and integrations open tickets and
add messages; agents work tasks from their queues; everyone reads tickets from a fast read
model; admins manage users, tokens and the access policy under `/admin`. All endpoints but
`/healthz` and the signed webhooks need `Authorization: Bearer <token>`.

A ticket or task the caller may not see answers 404, exactly like one that does not exist;
an action the caller's roles do not allow on an object they can see answers 403 naming the
missing right.
"""


def _end_streams_on_stop_signals() -> Callable[[], None]:
    """Chain onto the server's Ctrl-C / SIGTERM handlers so open event streams end as soon as
    the stop begins: uvicorn's graceful stop waits for open responses, and a stream never
    finishes by itself. Returns what puts the previous handlers back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {}

    def chained(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(events.end_streams)
        handler = previous.get(signum)
        if callable(handler):
            handler(signum, frame)

    for signum in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(signum)
        if callable(handler):  # a server that handles this signal (not the default action)
            previous[signum] = handler
            signal.signal(signum, chained)

    def restore() -> None:
        for signum, handler in previous.items():
            if signal.getsignal(signum) is chained:
                signal.signal(signum, handler)

    return restore


def create_app(settings: Settings, *, db: Database | None = None, temporal: Client | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        restore = _end_streams_on_stop_signals()
        # Everything imported and built so far lives as long as the process. Frozen, the
        # collector stops walking those ~150k objects on every full collection: a 70 ms pause
        # that otherwise lands on whichever requests are in flight.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            restore()
            if db is None:
                await app.state.db.aclose()

    # A wrong intake rule stops the API here, saying which, rather than misroute chats later.
    load_intake_rules(settings.intake_rules_file)
    app = FastAPI(title="ticketflow", version="0.1.0", description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    serve_docs(app)  # /docs and /redoc with their assets from the installation, not a CDN
    app.state.settings = settings
    app.state.db = db or Database(settings.effective_database_url)
    app.state.authorizer = Authorizer.from_database(app.state.db, refresh_seconds=settings.policy_refresh_seconds)
    app.state.tokens = TokenVerifier(app.state.db)
    # A client handed in (tests, embedding) brings its own converter; otherwise the
    # deployment's, which encrypts payloads when keys are configured.
    converter = temporal.data_converter if temporal is not None else data_converter(settings)
    app.state.temporal = TemporalGateway(
        settings.temporal_address or f"127.0.0.1:{settings.temporal_port}", settings.temporal_namespace, temporal,
        converter=converter,
    )
    app.state.codec = converter.payload_codec
    app.add_middleware(RefuseNul)  # PostgreSQL holds no NUL in text: refused with 422 at the door
    app.add_middleware(CORSMiddleware, allow_origins=settings.codec_cors_origins, allow_methods=["POST"],
                       allow_headers=["Authorization", "Content-Type", "X-Namespace"])

    @app.exception_handler(DatabaseUnavailable)
    async def _db_down(_: Request, exc: DatabaseUnavailable) -> JSONResponse:
        log.warning("database unavailable: %s", exc)
        return JSONResponse(
            {"detail": "the ticket database is unreachable; nothing was changed, retry shortly"},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "5"},
        )

    @app.exception_handler(WorkflowEngineUnavailable)
    async def _temporal_down(_: Request, exc: WorkflowEngineUnavailable) -> JSONResponse:
        log.warning("%s", exc)
        return JSONResponse(
            {"detail": "the workflow engine (Temporal) is unreachable; nothing was changed, retry shortly"},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "5"},
        )

    @app.exception_handler(RPCError)
    async def _temporal_error(_: Request, exc: RPCError) -> JSONResponse:
        if is_unavailable(exc):
            return await _temporal_down(_, WorkflowEngineUnavailable(str(exc)))
        log.error("unexpected Temporal error: %s (%s)", exc, exc.status)
        return JSONResponse({"detail": "the workflow engine refused the request"}, status_code=502)

    @app.exception_handler(InvalidCursor)
    async def _bad_cursor(_: Request, exc: InvalidCursor) -> JSONResponse:
        return JSONResponse({"detail": [{"loc": ["query", "cursor"], "msg": str(exc), "type": "value_error"}]},
                            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)

    routers = [health.router, tickets.router, cases.case_router(), tasks.router, webhooks.router, agents.router, events.router,
               faq.router, admin.router, codec.router, explain.router, sessions.router]
    if settings.metrics_enabled:
        metrics.install(app)
        routers.append(metrics.router)
    for router in routers:
        app.include_router(router)
    console.install(app)  # the people's pages under /console (not part of the API's schema)
    routes = [route for router in routers for route in router.routes if isinstance(route, APIRoute)]
    # The NUL guard (api/nul.py) may refuse any request with 422, so every route says so.
    for route in routes:
        if 422 not in route.responses and "422" not in route.responses:
            route.responses[422] = REJECTED[422]

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == status.HTTP_400_BAD_REQUEST and exc.detail == "There was an error parsing the body":
            # A body that is not JSON is the same kind of mistake as JSON of the wrong shape.
            return JSONResponse({"detail": [{"loc": ["body"], "msg": "the body is not valid JSON",
                                             "type": "json_invalid"}]},
                                status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
        headers = dict(exc.headers or {})
        if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
            # Each method of a path is its own route, and the router names only the first
            # one it tried: say every method the path serves.
            methods = {m for r in routes if r.path_regex.match(request.url.path) for m in r.methods}
            headers["Allow"] = ", ".join(sorted(methods))
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)
    return app


def app_from_settings() -> FastAPI:
    """The app as configured by the environment (for `uvicorn --factory` and `ticketflow api`)."""
    from settings import get_settings

    return create_app(get_settings())
