"""The API's Prometheus metrics: every request counted and timed by route, at ``GET /metrics``.

Routes are labelled by their template (``/tickets/{ticket_id}``), never by the path a caller
sent, so a label's values stay few and no id lands in the metrics; a path that matches no
route is ``unmatched``. What cases, tasks, the SLA clocks, the FAQ bot and the connectors do
is counted where it happens, on the workers (``TICKETFLOW_WORKER_METRICS_ADDRESS``).
"""

from __future__ import annotations

import time

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import GCCollector, PlatformCollector, ProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Up to 10 s; an event stream held open for minutes lands in +Inf, which says what it is.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ApiMetrics:
    """One registry per application (tests build many), with the process's own metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        for collector in (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=self.registry)
        self.requests = Counter("ticketflow_http_requests", "HTTP requests answered, by method, route and status",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("ticketflow_http_request_duration_seconds",
                                 "Time from a request's arrival to the end of its answer, by method and route",
                                 ["method", "route"], buckets=BUCKETS, registry=self.registry)

    def page(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts and times every HTTP request (a plain ASGI middleware: streamed answers pass
    through untouched)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers if the application raises before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)


router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response, summary="Prometheus metrics of this API process",
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "The Prometheus text format."}})
def metrics(request: Request) -> Response:
    """Requests by method, route and status, their duration, and this process's CPU, memory
    and garbage collection. No ticket data; turn off with `TICKETFLOW_METRICS_ENABLED=false`."""
    return Response(request.app.state.metrics.page(), media_type=CONTENT_TYPE_LATEST)


def install(app: FastAPI) -> None:
    """Count and time every request of ``app``; ``router`` serves the page."""
    app.state.metrics = ApiMetrics()
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
