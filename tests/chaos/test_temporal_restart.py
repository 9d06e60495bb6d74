"""The Temporal server killed (SIGKILL) while tickets are in flight, then started again on
its database file: the API says 503 with Retry-After meanwhile, the running worker picks up
where it was, and every ticket accepted before and after reaches an agent, once."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlmodel import func, select
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from api.auth import create_token
from api.main import create_app
from cli.embedded import start_dev_server, stop_process
from harness import staff_ticket_body
from migrations import upgrade
from models.auth import Role
from models.db import Database
from models.task import Task
from models.ticket import Ticket
from settings import Settings
from worker import build_worker

BEFORE, AFTER = 20, 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.timeout(300)
async def test_a_killed_temporal_server_loses_no_ticket(tmp_path, task_queue):
    port, ui_port = free_port(), free_port()
    server = start_dev_server(tmp_path / "temporal", port=port, ui_port=ui_port)
    url = f"sqlite:///{tmp_path / 'ticketflow.db'}"
    upgrade(url)
    db = Database(url)
    headers = {"Authorization": f"Bearer {db.call(create_token, user='intake', role=Role.admin, department='*')}"}
    settings = Settings(database_url=url, task_queue=task_queue, faq_enabled=False, temporal_port=port)
    client = await Client.connect(f"127.0.0.1:{port}", data_converter=pydantic_data_converter)
    app = create_app(settings, db=db, temporal=client)
    accepted: dict[str, str] = {}

    async def open_ticket(http: httpx.AsyncClient, ref: str) -> httpx.Response:
        r = await http.post("/tickets", json=staff_ticket_body(external_ref=ref), headers=headers)
        if r.status_code in (200, 201):
            assert accepted.setdefault(ref, r.json()["id"]) == r.json()["id"]
        return r

    try:
        with ThreadPoolExecutor(max_workers=settings.activity_threads) as executor:
            async with build_worker(client, settings, db, executor):
                async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                                             timeout=60) as http:
                    refs = [f"before-{uuid.uuid4().hex}" for _ in range(BEFORE)]
                    assert all(r.status_code == 201 for r in await asyncio.gather(
                        *(open_ticket(http, ref) for ref in refs)))
                    os.kill(server.pid, signal.SIGKILL)  # tickets are still on their way to agents
                    server.wait()

                    during = f"during-{uuid.uuid4().hex}"
                    refused = await open_ticket(http, during)
                    assert refused.status_code == 503 and refused.headers.get("Retry-After"), refused.text
                    await asyncio.sleep(3)

                    server = start_dev_server(tmp_path / "temporal", port=port, ui_port=ui_port)
                    for _ in range(60):  # the client honours Retry-After: the same ref again
                        if (await open_ticket(http, during)).status_code in (200, 201):
                            break
                        await asyncio.sleep(1)
                    refs = [f"after-{uuid.uuid4().hex}" for _ in range(AFTER)]
                    assert all(r.status_code == 201 for r in await asyncio.gather(
                        *(open_ticket(http, ref) for ref in refs)))
                    assert len(accepted) == BEFORE + 1 + AFTER

                    def with_task() -> int:
                        with db.session() as s:
                            return s.exec(select(func.count(func.distinct(Task.ticket_id))).where(
                                Task.ticket_id.in_(accepted.values()), Task.status == "open")).one()

                    for _ in range(120):
                        if with_task() == len(accepted):
                            break
                        await asyncio.sleep(1)
                    assert with_task() == len(accepted)
                    with db.session() as s:
                        rows = s.exec(select(Ticket.intake_key).where(Ticket.id.in_(accepted.values()))).all()
                        tasks = s.exec(select(func.count()).select_from(Task).where(
                            Task.ticket_id.in_(accepted.values()))).one()
                    assert len(rows) == len(set(rows)) == len(accepted) and tasks == len(accepted)
    finally:
        stop_process(server)
        db.dispose()
