"""The FastAPI application."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from temporalio.client import Client
from temporalio.service import RPCError

from api.auth import TokenVerifier
from api.routes import agents, events, health, tasks, tickets, webhooks
from api.routes import faq
from api.temporal import TemporalGateway, WorkflowEngineUnavailable, is_unavailable
from models.db import Database, DatabaseUnavailable
from models.readmodel import InvalidCursor
from policies import Authorizer
from settings import Settings

log = logging.getLogger("ticketflow.api")

DESCRIPTION = """
Every customer issue is a durable workflow. Customers and integrations open tickets and
add messages; agents work tasks from their queues; everyone reads tickets from a fast read
model. All endpoints but `/healthz` need `Authorization: Bearer <token>`.
"""


def create_app(settings: Settings, *, db: Database | None = None, temporal: Client | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        if db is None:
            app.state.db.dispose()

    app = FastAPI(title="ticketflow", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.db = db or Database(settings.effective_database_url)
    app.state.authorizer = Authorizer()
    app.state.tokens = TokenVerifier(app.state.db)
    app.state.temporal = TemporalGateway(
        settings.temporal_address or f"127.0.0.1:{settings.temporal_port}", settings.temporal_namespace, temporal
    )

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

    app.include_router(health.router)
    app.include_router(tickets.router)
    app.include_router(tasks.router)
    app.include_router(webhooks.router)
    app.include_router(agents.router)
    app.include_router(events.router)
    app.include_router(faq.router)
    return app


def app_from_settings() -> FastAPI:
    """The app as configured by the environment (for `uvicorn --factory` and `ticketflow api`)."""
    from settings import get_settings

    return create_app(get_settings())
