"""Helpers shared by tests that drive the HTTP API."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import uvicorn

from api.auth import create_token
from models.auth import Role
from models.db import Database
from policies.store import add_department
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
    """A ticket as a customer opens it: they choose no department (triage does)."""
    body = {"customer_id": "cust-1", "subject": "Where is my parcel?", "body": "Ordered last week."}
    body.update(overrides)
    return body


def staff_ticket_body(**overrides) -> dict:
    """A ticket as staff or an integration opens it for a customer, into logistics."""
    return ticket_body(**{"department": "logistics", **overrides})


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


async def resolved_ticket(stack: Stack) -> tuple[dict, dict]:
    """A ticket of cust-1 in logistics, opened by an admin, its task claimed and resolved by
    ana; returns the ticket and its task once the ticket shows resolved."""
    ticket = (await stack.http.post("/tickets", json=staff_ticket_body(customer_id="cust-1"),
                                    headers=stack.as_("admin"))).json()
    task = await open_task_for(stack, ticket["id"], user="sam")
    assert (await stack.http.post(f"/tasks/{task['id']}/claim", headers=stack.as_("ana"))).is_success
    r = await stack.http.post(f"/tasks/{task['id']}/complete", json={"outcome": "resolve", "reply": "On its way."},
                              headers=stack.as_("ana"))
    assert r.is_success, r.text

    async def resolved():
        r = await stack.http.get(f"/tickets/{ticket['id']}", headers=stack.as_("sam"))
        return r.json()["status"] == "resolved"

    await eventually(resolved)
    return ticket, task


def unique_ref() -> str:
    return f"ref-{uuid.uuid4().hex}"


def queue_name(db: Database) -> str:
    """A department of its own for one test, so routing never hands its tasks to another's."""
    name = f"q{uuid.uuid4().hex[:10]}"
    db.call(add_department, "tests", name)
    return name


def person(db: Database, role: Role, department: str | list[str] = "*") -> tuple[str, dict[str, str]]:
    """A new user holding `role` in `department` (several: a list; created if missing), and
    the headers that authenticate as them."""
    departments = [department] if isinstance(department, str) else department
    departments = [d or "*" for d in departments]
    for name in departments:
        if name != "*":
            db.call(add_department, "tests", name)
    user = f"{role.value}-{uuid.uuid4().hex[:8]}"
    token = db.call(create_token, user=user, role=role, department=departments)
    return user, {"Authorization": f"Bearer {token}"}


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # pytest owns the signals
        yield


@contextlib.asynccontextmanager
async def serve(app) -> AsyncIterator[httpx.AsyncClient]:  # noqa: ANN001
    """`app` behind a real HTTP server on loopback (streams need one); a client for it."""
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off",
                                    timeout_graceful_shutdown=1))
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        return server.started

    await eventually(started, timeout=10, interval=0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            yield http
    finally:
        server.should_exit = True
        await task
