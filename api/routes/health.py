from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

log = logging.getLogger("ticketflow.api.health")
router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    checks: dict[str, Literal["ok", "unavailable"]]


@router.get("/healthz", response_model=Health,
            responses={503: {"model": Health, "description": "The database or Temporal is unreachable; `checks` "
                                                             "says which."}},
            summary="Readiness: is the database and Temporal reachable?")
async def healthz(request: Request) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        await request.app.state.db.run(lambda s: s.exec(text("SELECT 1")))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - anything at all means "not ready"
        # Anyone may call this: the reason (hosts, users, driver messages) goes to the log.
        log.warning("health check: database unavailable: %s", exc)
        checks["database"] = "unavailable"
    try:
        client = await request.app.state.temporal.client()
        await client.service_client.check_health()
        checks["temporal"] = "ok"
    except Exception as exc:  # noqa: BLE001
        log.warning("health check: Temporal unavailable: %s", exc)
        checks["temporal"] = "unavailable"
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if healthy else "degraded", "checks": checks},
                        status_code=200 if healthy else 503)
