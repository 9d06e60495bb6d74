"""A lean HTTP/1.1 client for the benchmarks' load generators.

The load generator shares this machine's cores with the servers it measures. httpx spends a
few milliseconds of CPU per request once hundreds are in flight, so at 200 requests/s the
generator itself became the bottleneck and its queueing showed up as server latency. This
client does only what the benchmarks need: GET and POST with a JSON body over loopback
keep-alive connections, one request per connection at a time, a new connection whenever
none is idle (so an open loop never waits for the client). A GET that finds its idle
connection closed by the server takes another; a POST is never sent twice.
"""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import urlencode


IDLE_SECONDS = 2.0  # reuse a kept-alive connection only this long after its last answer


class HttpError(Exception):
    pass


class _ClosedWhileIdle(Exception):
    """A kept-alive connection the server had closed: nothing was answered on it."""


class Response:
    __slots__ = ("status_code", "content")

    def __init__(self, status_code: int, content: bytes) -> None:
        self.status_code = status_code
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")

    def json(self):  # noqa: ANN201
        return json.loads(self.content)


class LeanClient:
    def __init__(self, host: str, port: int, headers: dict[str, str] | None = None, timeout: float = 30) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.headers = headers or {}
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self._all: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> "LeanClient":
        return self

    async def __aexit__(self, *exc) -> None:  # noqa: ANN002
        await self.aclose()

    async def aclose(self) -> None:
        for writer in list(self._all):
            writer.close()
        self._all.clear()
        self._idle.clear()

    async def get(self, path: str, params: dict | None = None, headers: dict[str, str] | None = None) -> Response:
        if params:
            path = f"{path}?{urlencode(params)}"
        return await self.request("GET", path, b"", headers)

    async def post(self, path: str, json_body: object, headers: dict[str, str] | None = None) -> Response:
        return await self.request("POST", path, json.dumps(json_body).encode(), headers,
                                  content_type="application/json")

    async def request(self, method: str, path: str, body: bytes, headers: dict[str, str] | None,
                      content_type: str | None = None) -> Response:
        try:
            return await asyncio.wait_for(self._request(method, path, body, headers, content_type), self.timeout)
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
            raise HttpError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc

    async def _request(self, method: str, path: str, body: bytes, headers: dict[str, str] | None,
                       content_type: str | None) -> Response:
        while method == "GET" and (idle := self._take_idle()) is not None:
            try:
                return await self._exchange(*idle, method, path, body, headers, content_type)
            except _ClosedWhileIdle:
                continue  # the server closed it after its keep-alive timeout: take another
        # Anything else is never sent twice: it goes on a connection used moments ago, or a new one.
        idle = self._take_idle()
        if idle is not None:
            reader, writer = idle
        else:
            reader, writer = await asyncio.open_connection(self.host, self.port)
            self._all.add(writer)
        try:
            return await self._exchange(reader, writer, method, path, body, headers, content_type)
        except _ClosedWhileIdle as exc:
            raise HttpError(f"{method} {path}: the server closed the connection without answering") from exc

    def _take_idle(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """An idle connection, dropping those the server has closed or soon will (its
        keep-alive timeout, 5 s for uvicorn)."""
        now = time.monotonic()
        while self._idle:
            reader, writer, since = self._idle.pop()
            if not reader.at_eof() and now - since < IDLE_SECONDS:
                return reader, writer
            writer.close()
            self._all.discard(writer)
        return None

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, method: str, path: str,
                        body: bytes, headers: dict[str, str] | None, content_type: str | None) -> Response:
        try:
            return await self._send_and_read(reader, writer, method, path, body, headers, content_type)
        except BaseException:
            writer.close()  # in an unknown state: never reused
            self._all.discard(writer)
            raise

    async def _send_and_read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, method: str,
                             path: str, body: bytes, headers: dict[str, str] | None,
                             content_type: str | None) -> Response:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        lines += [f"{k}: {v}" for k, v in {**self.headers, **(headers or {})}.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        try:
            status_line = await reader.readline()
        except ConnectionResetError as exc:
            raise _ClosedWhileIdle from exc
        if not status_line:
            raise _ClosedWhileIdle
        status = int(status_line.split(b" ", 2)[1])
        length, keep_alive, chunked = 0, True, False
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = value == b"chunked"
            elif name == b"connection" and value == b"close":
                keep_alive = False
        if chunked:
            parts = []
            while size := int((await reader.readline()).split(b";")[0], 16):
                parts.append(await reader.readexactly(size))
                await reader.readline()
            await reader.readline()  # the blank line after the last chunk (no trailers sent)
            content = b"".join(parts)
        else:
            content = await reader.readexactly(length) if length else b""
        if keep_alive:
            self._idle.append((reader, writer, time.monotonic()))
        else:
            writer.close()
            self._all.discard(writer)
        return Response(status, content)
