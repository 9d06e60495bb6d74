"""A worker SIGKILLed while agents complete tasks with refunds, then started again: every
refunding completion makes exactly one refund in the ERP, and every ticket is resolved."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from api.auth import create_token
from api.main import create_app
from connectors.registry import ConnectorConfig, build_order_system
from harness import staff_ticket_body
from migrations import upgrade
from models.auth import Role
from models.db import Database
from models.task import Task
from models.ticket import Ticket
from sandbox.data import (
    DEMO_CUSTOMER_DELAYED,
    DEMO_CUSTOMER_DELIVERED,
    DEMO_CUSTOMER_LOST,
    DEMO_ORDER_DELAYED,
    DEMO_ORDER_DELIVERED,
    DEMO_ORDER_LOST,
)
from settings import Settings

ROOT = Path(__file__).resolve().parents[2]
ORDERS = [(DEMO_CUSTOMER_DELAYED, DEMO_ORDER_DELAYED), (DEMO_CUSTOMER_LOST, DEMO_ORDER_LOST),
          (DEMO_CUSTOMER_DELIVERED, DEMO_ORDER_DELIVERED)]
TICKETS = 12
AMOUNT = Decimal("5.00")


def start_worker(address: str, database_url: str, task_queue: str, sandbox, log: Path) -> subprocess.Popen:
    env = {**os.environ, "TICKETFLOW_TEMPORAL_ADDRESS": address, "TICKETFLOW_DATABASE_URL": database_url,
           "TICKETFLOW_TASK_QUEUE": task_queue, "TICKETFLOW_FAQ_ENABLED": "false",
           "TICKETFLOW_AUTO_ASSIGN": "false", "TICKETFLOW_ORDERS_URL": sandbox.urls["erp"],
           "TICKETFLOW_ORDERS_USERNAME": sandbox.erp_username, "TICKETFLOW_ORDERS_PASSWORD": sandbox.erp_password,
           "TICKETFLOW_CONNECTOR_TIMEOUT": "3"}
    return subprocess.Popen([sys.executable, str(ROOT / "worker.py")], cwd=ROOT, env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


@pytest.mark.timeout(300)
async def test_refunds_are_made_once_across_a_killed_worker(dev_env, task_queue, sandbox, tmp_path):
    url = f"sqlite:///{tmp_path / 'ticketflow.db'}"
    upgrade(url)
    db = Database(url)
    admin = {"Authorization": f"Bearer {db.call(create_token, user='desk', role=Role.admin, department='*')}"}
    ana = {"Authorization": f"Bearer {db.call(create_token, user='ana', role=Role.agent, department='logistics')}"}
    settings = Settings(database_url=url, task_queue=task_queue, faq_enabled=False, auto_assign=False)
    app = create_app(settings, db=db, temporal=dev_env.client)
    erp = build_order_system(ConnectorConfig(implementation="soap", base_url=sandbox.urls["erp"], timeout_seconds=5,
                                             username=sandbox.erp_username, password=sandbox.erp_password))
    refunded_before = {order: erp.get_order(order).refunded_total for _, order in ORDERS}

    def refunded() -> dict[str, Decimal]:
        return {order: erp.get_order(order).refunded_total - refunded_before[order] for _, order in ORDERS}

    address = dev_env.client.service_client.config.target_host
    log = tmp_path / "worker.log"
    worker = start_worker(address, url, task_queue, sandbox, log)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                                     timeout=120) as http:
            bodies = [staff_ticket_body(customer_id=customer, order_id=order, external_ref=uuid.uuid4().hex)
                      for customer, order in (ORDERS[i % len(ORDERS)] for i in range(TICKETS))]
            opened = await asyncio.gather(*(http.post("/tickets", json=b, headers=admin) for b in bodies))
            assert all(r.status_code == 201 for r in opened), [r.text for r in opened]
            ids = [r.json()["id"] for r in opened]

            def open_tasks() -> list[Task]:
                with db.session() as s:
                    return list(s.exec(select(Task).where(Task.ticket_id.in_(ids), Task.status == "open")))

            for _ in range(120):
                if len(open_tasks()) == TICKETS:
                    break
                await asyncio.sleep(0.5)
            tasks = open_tasks()
            assert len(tasks) == TICKETS
            for task in tasks:
                assert (await http.post(f"/tasks/{task.id}/claim", headers=ana)).status_code == 200

            async def complete(task: Task) -> int:
                body = {"outcome": "resolve", "reply": "Refunded 5.00 for the delay.",
                        "refund": {"amount": str(AMOUNT), "reason": "late parcel"}}
                r = await http.post(f"/tasks/{task.id}/complete", json=body, headers=ana)
                return r.status_code

            completing = [asyncio.create_task(complete(task)) for task in tasks]
            for _ in range(600):  # kill once some refunds are made, not all
                made = sum(refunded().values())
                if made >= AMOUNT * 2:
                    break
                await asyncio.sleep(0.05)
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
            assert sum(refunded().values()) < AMOUNT * TICKETS, "every refund was made before the kill"
            worker = start_worker(address, url, task_queue, sandbox, log)
            assert await asyncio.gather(*completing) == [200] * TICKETS

            def resolved() -> int:
                with db.session() as s:
                    return len(s.exec(select(Ticket.id).where(Ticket.id.in_(ids),
                                                              Ticket.status == "resolved")).all())

            for _ in range(240):
                if resolved() == TICKETS:
                    break
                await asyncio.sleep(0.5)
            assert resolved() == TICKETS
            per_order = TICKETS // len(ORDERS)
            assert refunded() == {order: AMOUNT * per_order for _, order in ORDERS}
            with db.session() as s:
                created = [e for t in s.exec(select(Ticket).where(Ticket.id.in_(ids)))
                           for e in t.timeline if e["kind"] == "refund_created"]
            assert len(created) == TICKETS
    finally:
        if worker.poll() is None:
            worker.terminate()
            worker.wait(15)
        erp.close()
        db.dispose()
