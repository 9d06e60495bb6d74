"""Plumbing shared by the REST connectors: one ``httpx.Client`` per connector, no
library retries, and every failure turned into a ``connectors.errors`` type.

``httpx.Client`` is documented as safe to share between threads, so one connector object
serves the whole activity thread pool.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from connectors.errors import (
    ConnectorError,
    InvalidRequest,
    MalformedResponse,
    Timeout,
    Unavailable,
    error_class_for_status,
)
from connectors.registry import ConnectorConfig

ModelT = TypeVar("ModelT", bound=BaseModel)

_EXCERPT = 300


def path_segment(value: str) -> str:
    """``value`` escaped for use as one URL path segment ("a/b" must not become two)."""
    return quote(value, safe="")


def _error_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:_EXCERPT]
    if isinstance(body, dict):
        for key in ("detail", "error", "message"):
            if key in body:
                return str(body[key])[:_EXCERPT]
    return str(body)[:_EXCERPT]


def error_for_status(system: str, response: httpx.Response) -> ConnectorError | None:
    """The error a non-2xx response stands for, or ``None`` for a success."""
    status = response.status_code
    if 200 <= status < 300:
        return None
    request = response.request
    message = f"{request.method} {request.url.path} answered {status}: {_error_detail(response)}"
    kind = error_class_for_status(status)
    return kind(system, message, status_code=status)


class RestConnector:
    """Base of the httpx connectors. Subclasses set ``system`` and call ``_call``."""

    system: ClassVar[str]

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        api_key: str | None = None,
        username: str | None = None,
        password: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``timeout`` bounds each phase of a request (connect, each read, write) in
        seconds. ``api_key`` is sent as a bearer token, ``username``/``password`` as HTTP
        basic auth. ``transport`` is for tests (``httpx.MockTransport``)."""
        headers = {"Accept": "application/json", "User-Agent": "ticketflow-connector"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._timeout = timeout
        self._client = httpx.Client(
            base_url=base_url,
            timeout=httpx.Timeout(timeout),
            headers=headers,
            auth=httpx.BasicAuth(username, password or "") if username is not None else None,
            # retries=0 is httpx's default; spelled out because Temporal owns retries.
            transport=transport or httpx.HTTPTransport(retries=0),
            follow_redirects=False,
        )

    @classmethod
    def from_config(cls, config: ConnectorConfig) -> Self:
        return cls(
            config.base_url,
            timeout=config.timeout_seconds,
            api_key=config.api_key.get_secret_value() if config.api_key else None,
            username=config.username,
            password=config.password.get_secret_value() if config.password else None,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """Send one request and return its decoded JSON body."""
        try:
            response = self._client.request(method, path, params=params, json=json, headers=headers)
        except httpx.TimeoutException as exc:
            raise Timeout(self.system, f"{method} {path}: no answer within {self._timeout}s") from exc
        except httpx.UnsupportedProtocol as exc:
            raise InvalidRequest(self.system, f"bad base URL in settings: {exc}") from exc
        except httpx.TransportError as exc:
            raise Unavailable(self.system, f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        error = error_for_status(self.system, response)
        if error is not None:
            raise error
        try:
            return response.json()
        except ValueError as exc:
            raise MalformedResponse(
                self.system,
                f"{method} {path} answered {response.status_code} with a body that is not JSON: "
                f"{response.text[:_EXCERPT]!r}",
                status_code=response.status_code,
            ) from exc

    def _parse(self, model: type[ModelT], data: Any) -> ModelT:
        """``data`` validated as ``model``; a schema mismatch is the system's fault."""
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            raise MalformedResponse(
                self.system,
                f"{model.__name__} does not match the expected schema "
                f"({exc.error_count()} error(s), first at {where}: {first['msg']})",
            ) from exc
