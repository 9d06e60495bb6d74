"""A worker process killed with SIGKILL while 50 tickets are in flight: after a restart every
ticket reaches its expected state, and the read model holds no duplicate rows."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlmodel import func, select

from api.main import create_app
from harness import eventually, staff_ticket_body
from models.task import Task
from models.ticket import Ticket
from settings import Settings

ROOT = Path(__file__).resolve().parents[2]
N_TICKETS = 50


def start_worker(address: str, database_url: str, task_queue: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "TICKETFLOW_TEMPORAL_ADDRESS": address, "TICKETFLOW_DATABASE_URL": database_url,
           "TICKETFLOW_TASK_QUEUE": task_queue}
    return subprocess.Popen([sys.executable, str(ROOT / "worker.py")], cwd=ROOT, env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


@pytest.mark.slow
async def test_sigkilled_worker_loses_no_ticket_and_duplicates_no_row(dev_env, db, tokens, task_queue, tmp_path):
    address = dev_env.client.service_client.config.target_host
    # No FAQ worker runs here (the bot has its own tests); an enabled bot would wait for one.
    settings = Settings(database_url=db.url, task_queue=task_queue, faq_enabled=False)
    app = create_app(settings, db=db, temporal=dev_env.client)
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    log = tmp_path / "worker.log"

    def counts(ids: set[str]) -> tuple[int, int]:
        def q(s):
            tickets = s.exec(select(func.count()).select_from(Ticket).where(Ticket.id.in_(ids))).one()
            tasks = s.exec(select(func.count()).select_from(Task).where(Task.ticket_id.in_(ids))).one()
            return tickets, tasks
        return db.call(q)

    worker = start_worker(address, db.url, task_queue, log)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            responses = await asyncio.gather(*[
                http.post("/tickets", json=staff_ticket_body(subject=f"crash test {i}"), headers=admin)
                for i in range(N_TICKETS)
            ])
            assert all(r.status_code == 201 for r in responses), [r.text for r in responses if r.status_code != 201]
            ids = {r.json()["id"] for r in responses}

            # Kill as soon as the worker is demonstrably mid-way through the batch.
            async def some_progress():
                return counts(ids)[1] >= 5
            await eventually(some_progress, timeout=60, interval=0.02)
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
            in_flight_at_kill = N_TICKETS - counts(ids)[1]
            assert in_flight_at_kill > 0, "the worker finished everything before it was killed"

            worker = start_worker(address, db.url, task_queue, log)

            async def all_waiting():
                rows = db.call(lambda s: s.exec(select(Ticket.status).where(Ticket.id.in_(ids))).all())
                return len(rows) == N_TICKETS and all(st == "awaiting_agent" for st in rows)
            await eventually(all_waiting, timeout=90, interval=0.2)
            assert counts(ids) == (N_TICKETS, N_TICKETS)  # one ticket row and one task each

            # and the restarted worker carries the workflows on: resolve ten of them
            tasks = db.call(lambda s: s.exec(select(Task).where(Task.ticket_id.in_(ids))).all())
            chosen = sorted(tasks, key=lambda t: t.id)[:10]
            for task in chosen:
                r = await http.post(f"/tasks/{task.id}/claim", headers=admin)
                assert r.status_code == 200, r.text
                r = await http.post(f"/tasks/{task.id}/complete", json={"outcome": "resolve", "reply": "Done."},
                                    headers=admin)
                assert r.status_code == 200, r.text
            chosen_ids = {t.ticket_id for t in chosen}

            async def resolved():
                rows = db.call(lambda s: s.exec(select(Ticket.status).where(Ticket.id.in_(chosen_ids))).all())
                return all(st == "resolved" for st in rows)
            await eventually(resolved, timeout=30)
            assert counts(ids) == (N_TICKETS, N_TICKETS)
    finally:
        if worker.poll() is None:
            worker.terminate()
            worker.wait(15)
