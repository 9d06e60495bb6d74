from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.temporal import WorkflowEngineUnavailable

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Readiness: is the database and Temporal reachable?")
async def healthz(request: Request) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        await request.app.state.db.run(lambda s: s.exec(text("SELECT 1")))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["database"] = f"unavailable: {exc}"
    try:
        client = await request.app.state.temporal.client()
        await client.service_client.check_health()
        checks["temporal"] = "ok"
    except (WorkflowEngineUnavailable, Exception) as exc:  # noqa: BLE001
        checks["temporal"] = f"unavailable: {exc}"
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if healthy else "degraded", "checks": checks},
                        status_code=200 if healthy else 503)
