"""Authentication, and what callers see when Temporal or the database is down."""

from __future__ import annotations

import socket

import httpx
import pytest
from sqlmodel import select

from api.main import create_app
from harness import person, ticket_body, unique_ref
from models.auth import Role
from models import readmodel
from models.db import Database
from models.ticket import Ticket
from routing import Presence
from settings import Settings


async def test_every_endpoint_but_healthz_needs_a_token(stack):
    assert (await stack.http.get("/healthz")).status_code == 200
    for method, path in [("get", "/tickets"), ("post", "/tickets"), ("get", "/tickets/x"), ("get", "/tasks"),
                         ("post", "/tasks/x/claim"), ("post", "/tickets/x/messages")]:
        r = await stack.http.request(method.upper(), path, json={})
        assert r.status_code == 401, (method, path, r.status_code)
        assert r.headers["www-authenticate"] == "Bearer"
    r = await stack.http.get("/tickets", headers={"Authorization": "Bearer tf_not-a-real-token"})
    assert r.status_code == 401 and "not valid" in r.json()["detail"]
    r = await stack.http.get("/tickets", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert r.status_code == 401


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_temporal_down_is_503_and_writes_no_ticket(db, tokens):
    settings = Settings(database_url=db.url, temporal_address=f"127.0.0.1:{_closed_port()}")
    app = create_app(settings, db=db)
    ref = unique_ref()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        r = await http.post("/tickets", json=ticket_body(external_ref=ref),
                            headers={"Authorization": f"Bearer {tokens['admin']}"})
        assert r.status_code == 503 and "Temporal" in r.json()["detail"]
        assert r.headers["retry-after"]
        health = await http.get("/healthz")
        assert health.status_code == 503 and health.json()["checks"]["database"] == "ok"
    assert db.call(lambda s: s.exec(select(Ticket).where(Ticket.external_ref == ref)).first()) is None


async def test_database_down_is_503(dev_env, tokens):
    dead = Database(f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/test?connect_timeout=2")
    app = create_app(Settings(database_url=dead.url), db=dead, temporal=dev_env.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        r = await http.post("/tickets", json=ticket_body(), headers={"Authorization": f"Bearer {tokens['admin']}"})
        assert r.status_code == 503 and "database" in r.json()["detail"]
    dead.dispose()


async def test_ticket_is_readable_before_its_projection_lands(stack, monkeypatch):
    """The workflow is the read model's only writer; until its first projection lands, reads
    of a new ticket are answered by the workflow itself, so the caller never sees a 404 for
    a ticket it was just told exists."""
    from models import readmodel

    real_run = stack.db.run

    async def projection_not_landed_yet(fn, *args, **kwargs):
        if fn is readmodel.get_ticket:
            return None
        return await real_run(fn, *args, **kwargs)

    ref = unique_ref()
    first = await stack.http.post("/tickets", json=ticket_body(external_ref=ref), headers=stack.as_("cust-1"))
    assert first.status_code == 201
    monkeypatch.setattr(stack.db, "run", projection_not_landed_yet)
    r = await stack.http.get(f"/tickets/{first.json()['id']}", headers=stack.as_("cust-1"))
    assert r.status_code == 200 and r.json()["external_ref"] == ref
    assert (await stack.http.get(f"/tickets/{first.json()['id']}", headers=stack.as_("cust-2"))).status_code == 404
    retry = await stack.http.post("/tickets", json=ticket_body(external_ref=ref), headers=stack.as_("cust-1"))
    assert retry.status_code == 200 and retry.json()["id"] == first.json()["id"]


async def test_agent_profiles_are_kept_while_temporal_is_down(db, tokens):
    """Only offering waiting tasks needs Temporal: a profile edit, even of an online agent,
    is saved and the tasks are offered at the next chance."""
    settings = Settings(database_url=db.url, temporal_address=f"127.0.0.1:{_closed_port()}")
    app = create_app(settings, db=db)
    name, _ = person(db, Role.agent, "general")
    profile = {"skills": ["refunds"], "languages": ["en"], "queues": ["general"], "capacity": 2}
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        assert (await http.put(f"/agents/{name}", json=profile, headers=admin)).status_code == 201
        db.call(readmodel.set_presence, name, Presence.online)
        r = await http.put(f"/agents/{name}", json={**profile, "capacity": 4}, headers=admin)
        assert r.status_code == 200 and r.json()["capacity"] == 4
    assert db.call(readmodel.get_agent, name).capacity == 4


class _FlakyHealth:
    """A Temporal frontend whose health call fails `failures` times, then serves."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def check_health(self, **_: object) -> bool:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError("operation was canceled")
        return True


class _Gateway:
    def __init__(self, service: _FlakyHealth) -> None:
        self.service_client = service

    async def client(self) -> _Gateway:
        return self


@pytest.mark.parametrize(("failures", "status"), [(1, 200), (2, 200), (3, 503)])
async def test_health_does_not_flip_on_one_dropped_temporal_call(db, failures, status):
    """A readiness probe that answers 503 on a single dropped call makes a load balancer
    shed a healthy API; Temporal counts as down only when every attempt fails."""
    from api.routes import health

    app = create_app(Settings(database_url=db.url), db=db)
    service = _FlakyHealth(failures)
    app.state.temporal = _Gateway(service)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        r = await http.get("/healthz")
    assert r.status_code == status
    assert r.json()["checks"]["temporal"] == ("ok" if status == 200 else "unavailable")
    assert service.calls == min(failures + 1, health.TEMPORAL_ATTEMPTS)
