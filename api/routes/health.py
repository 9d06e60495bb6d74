from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

log = logging.getLogger("ticketflow.api.health")
# A readiness probe that flips on one dropped call makes load balancers shed a healthy API:
# Temporal is asked up to TEMPORAL_ATTEMPTS times, each bounded, before it counts as down,
# and the whole check is bounded by TEMPORAL_BUDGET seconds so a probe still gets an answer.
TEMPORAL_ATTEMPTS = 3
TEMPORAL_TIMEOUT = timedelta(seconds=2)
TEMPORAL_PAUSE = 0.2
TEMPORAL_BUDGET = 6.0
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
        serves = await asyncio.wait_for(_temporal_serves(request), TEMPORAL_BUDGET)
    except TimeoutError:
        log.warning("health check: Temporal did not answer within %.0f s", TEMPORAL_BUDGET)
        serves = False
    checks["temporal"] = "ok" if serves else "unavailable"
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if healthy else "degraded", "checks": checks},
                        status_code=200 if healthy else 503)


async def _temporal_serves(request: Request) -> bool:
    problem = ""
    for attempt in range(TEMPORAL_ATTEMPTS):
        if attempt:
            await asyncio.sleep(TEMPORAL_PAUSE)
        try:
            client = await request.app.state.temporal.client()
            if await client.service_client.check_health(timeout=TEMPORAL_TIMEOUT):
                return True
            problem = "the frontend says it is not serving"
        except Exception as exc:  # noqa: BLE001 - anything at all means "not ready"
            problem = str(exc) or type(exc).__name__
    log.warning("health check: Temporal unavailable after %d attempts: %s", TEMPORAL_ATTEMPTS, problem)
    return False
