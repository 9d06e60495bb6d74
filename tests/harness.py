"""Helpers shared by tests that drive the HTTP API."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import httpx

from models.db import Database
from settings import Settings


@dataclass
class Stack:
    http: httpx.AsyncClient
    db: Database
    settings: Settings
    client: object
    tokens: dict[str, str]

    def as_(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}



def ticket_body(**overrides) -> dict:
    body = {"customer_id": "cust-1", "subject": "Where is my parcel?", "body": "Ordered last week.",
            "department": "logistics"}
    body.update(overrides)
    return body


async def eventually(check, *, timeout: float = 30.0, interval: float = 0.1):
    """Poll `check` (async, returns a truthy value when done) until a deadline."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        await asyncio.sleep(interval)


async def open_task_for(stack: Stack, ticket_id: str, user: str = "ana") -> dict:
    async def check():
        r = await stack.http.get("/tasks", params={"status": "open", "limit": 200}, headers=stack.as_(user))
        return next((t for t in r.json()["items"] if t["ticket_id"] == ticket_id), None)

    return await eventually(check)


def unique_ref() -> str:
    return f"ref-{uuid.uuid4().hex}"
