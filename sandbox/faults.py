"""Run-time fault injection, the same for every sandbox service.

Each service owns a ``FaultInjector``, set over HTTP::

    POST /_admin/faults   {"fail_next": 2}                 next 2 requests fail, then heal
    POST /_admin/faults   {"error_rate": 0.3, "latency_ms": 200, "status_code": 503}
    POST /_admin/faults   {"timeout_rate": 1, "timeout_seconds": 30}
    POST /_admin/faults   {"malformed_rate": 1}            200 with a truncated body
    GET  /_admin/faults   current settings and counters
    POST /_admin/reset    no faults, counters zeroed, service data back to the seed

A POST to ``/_admin/faults`` replaces the whole configuration (unset fields are zero). Per
request: ``fail_next`` is consumed first; otherwise one random draw picks timeout, error
or malformed by their rates; ``latency_ms`` is added to every request. Paths under
``/_admin`` and ``/simulate`` (the sandbox's own control surface) are never faulted.

An injected timeout holds the request for ``timeout_seconds`` without sending a byte, then
answers normally (the client is expected to have given up). ``reset`` and stopping the
sandbox end held requests at once with a 503 that never touches the service's data.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

EXEMPT_PREFIXES = ("/_admin", "/simulate")

ErrorBody = Callable[[int], tuple[bytes, str]]
"""Renders an injected error: status code -> (body, content type)."""


class FaultSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    error_rate: float = Field(default=0.0, ge=0, le=1, description="Share of requests answered with status_code.")
    latency_ms: int = Field(default=0, ge=0, le=60_000, description="Added to every request.")
    malformed_rate: float = Field(default=0.0, ge=0, le=1, description="Share answered 200 with a truncated body.")
    timeout_rate: float = Field(default=0.0, ge=0, le=1, description="Share held for timeout_seconds.")
    timeout_seconds: float = Field(default=30.0, gt=0, le=600, description="How long a timed-out request hangs.")
    fail_next: int = Field(default=0, ge=0, le=10_000, description="The next N requests fail with status_code.")
    status_code: int = Field(default=500, ge=400, le=599, description="Status of injected errors.")

    @model_validator(mode="after")
    def _rates_fit(self) -> FaultSettings:
        if self.error_rate + self.malformed_rate + self.timeout_rate > 1:
            raise ValueError("error_rate + malformed_rate + timeout_rate must not exceed 1")
        return self


class FaultStatus(BaseModel):
    faults: FaultSettings
    requests_seen: int
    faults_injected: int


class Fault(StrEnum):
    none = "none"
    error = "error"
    timeout = "timeout"
    malformed = "malformed"


class FaultInjector:
    """Thread-safe: the admin endpoints and the faulted requests may run on any thread."""

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self._lock = threading.Lock()
        self._settings = FaultSettings()
        self._rng = random.Random(seed)
        self._requests_seen = 0
        self._faults_injected = 0
        self._release_generation = 0

    def configure(self, settings: FaultSettings) -> None:
        with self._lock:
            self._settings = settings

    def reset(self) -> None:
        with self._lock:
            self._settings = FaultSettings()
            self._rng = random.Random(self._seed)
            self._requests_seen = 0
            self._faults_injected = 0
        self.release_held()

    def release_held(self) -> None:
        """End every request currently held by an injected timeout."""
        with self._lock:
            self._release_generation += 1

    def status(self) -> FaultStatus:
        with self._lock:
            return FaultStatus(faults=self._settings, requests_seen=self._requests_seen,
                               faults_injected=self._faults_injected)

    def decide(self) -> tuple[Fault, FaultSettings]:
        """Count one request and choose its fault."""
        with self._lock:
            s = self._settings
            self._requests_seen += 1
            fault = Fault.none
            if s.fail_next > 0:
                self._settings = s.model_copy(update={"fail_next": s.fail_next - 1})
                fault = Fault.error
            else:
                draw = self._rng.random()
                if draw < s.timeout_rate:
                    fault = Fault.timeout
                elif draw < s.timeout_rate + s.error_rate:
                    fault = Fault.error
                elif draw < s.timeout_rate + s.error_rate + s.malformed_rate:
                    fault = Fault.malformed
            if fault is not Fault.none:
                self._faults_injected += 1
            return fault, s

    async def hold(self, seconds: float) -> bool:
        """Wait ``seconds``; ``False`` if released early by ``reset`` or shutdown."""
        with self._lock:
            generation = self._release_generation
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self._lock:
                if self._release_generation != generation:
                    return False
            await asyncio.sleep(0.05)
        return True


def json_error_body(status_code: int) -> tuple[bytes, str]:
    return (b'{"error": "injected fault: service unavailable"}', "application/json")


class FaultInjectionMiddleware:
    """ASGI middleware applying the injector's decision to each non-admin request."""

    def __init__(self, app: ASGIApp, injector: FaultInjector, error_body: ErrorBody = json_error_body) -> None:
        self.app = app
        self.injector = injector
        self.error_body = error_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        fault, settings = self.injector.decide()
        if settings.latency_ms:
            await asyncio.sleep(settings.latency_ms / 1000)
        if fault is Fault.timeout and not await self.injector.hold(settings.timeout_seconds):
            # Released by a reset: the request must not reach the freshly reset state.
            await self._error(send, 503)
            return
        if fault is Fault.error:
            await self._error(send, settings.status_code)
            return
        if fault is Fault.malformed:
            await self._truncated(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _error(self, send: Send, status_code: int) -> None:
        body, content_type = self.error_body(status_code)
        await _send_whole(send, status_code, [(b"content-type", content_type.encode())], body)

    async def _truncated(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The real answer cut in half: unbalanced JSON or unclosed XML, status 200."""
        start: Message = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        await _send_whole(send, 200, headers, body[: max(1, len(body) // 2)])


async def _send_whole(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
