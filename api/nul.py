"""No NUL character gets in: PostgreSQL's text cannot hold one, so an id, a filter or a
ticket's text with ``\\u0000`` in it failed deep down (a 500, or a projection retried for
ever). Requests whose path, query or JSON body carry one are refused at the door with 422,
saying where, before any route reads them."""

from __future__ import annotations

import json
import re
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# A JSON \u0000 escape: preceded by an even number of backslashes (an odd one would make it
# the text "\u0000", which is harmless).
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_WITH_BODY = {"POST", "PUT", "PATCH"}


def _refusal(where: str) -> bytes:
    return json.dumps({"detail": [{
        "loc": [where], "type": "value_error",
        "msg": "contains a NUL character (\\u0000), which no id, filter or text may hold: remove it",
    }]}).encode()


class RefuseNul:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"]:  # the path as decoded from its %-escapes
            await self._refuse(send, "path")
            return
        if b"\x00" in unquote_to_bytes(scope.get("query_string", b"")):
            await self._refuse(send, "query")
            return
        headers = dict(scope.get("headers") or [])
        if scope["method"] not in _WITH_BODY or b"json" not in headers.get(b"content-type", b""):
            await self.app(scope, receive, send)
            return
        # Read the (size-limited) body, look, and hand the route the same messages.
        messages: list[Message] = []
        body = b""
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        if _JSON_NUL.search(body) or b"\x00" in body:
            await self._refuse(send, "body")
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(send: Send, where: str) -> None:
        body = _refusal(where)
        await send({"type": "http.response.start", "status": 422,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
