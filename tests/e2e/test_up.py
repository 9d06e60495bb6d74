"""`ticketflow up`, the README's run command, as someone runs it: the whole stack in one
process tree on the embedded defaults, stopped with Ctrl-C and started again.

A first start seeds demo data and opens the demo tickets; a customer writes in through the
sandbox chat platform; Ctrl-C stops everything even while a console follows `GET /events`.
The second start keeps every ticket, opens no demo ticket twice, and a ticket that was
waiting for an agent when the stack stopped is worked to resolution."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys

import httpx
import pytest

from harness import eventually
from stack_runner import ROOT, START_TIMEOUT, Up


async def tickets(http: httpx.AsyncClient, token: str) -> dict[str, dict]:
    r = await http.get("/tickets", params={"limit": 100}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return {t["id"]: t for t in r.json()["items"]}


async def follow_events(url: str, token: str, opened: asyncio.Event) -> str:
    """A console following the live stream until the server goes away; what it read."""
    seen = ""
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(5, read=None)) as http:
        try:
            async with http.stream("GET", "/events", headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status_code == 200
                async for chunk in r.aiter_text():
                    seen += chunk
                    opened.set()
        except httpx.HTTPError:
            pass  # the server closed the stream while stopping
    return seen


@pytest.mark.slow
async def test_up_serves_everything_stops_on_ctrl_c_and_carries_on_at_the_next_start(tmp_path):
    up = Up(tmp_path / "var", tmp_path / "up.log")
    try:
        await up.start()
        tokens = up.tokens()
        assert set(tokens) >= {"admin", "sam", "ana", "ben", "CUST-0001"}
        admin = tokens["admin"]
        async with httpx.AsyncClient(base_url=up.url, timeout=30) as http:
            assert (await http.get("/healthz")).status_code == 200

            async def demo_tickets_worked():
                found = await tickets(http, admin)
                return found if len(found) == 3 and all(t["status"] != "new" for t in found.values()) else None

            demo = await eventually(demo_tickets_worked, timeout=90)

            # A customer writes in on the sandbox chat platform; its webhook opens a ticket.
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{up.sandbox_port + 3}") as chat:
                r = await chat.post("/simulate/inbound", json={
                    "conversation_id": "C-UP-1", "customer_id": "CUST-0003",
                    "text": "My parcel for order ORD-1003 shows delivered but nothing arrived."})
            assert r.status_code == 200 and r.json()["delivered"], r.text

            async def chat_ticket():
                found = await tickets(http, admin)
                return found if len(found) == 4 else None

            before = await eventually(chat_ticket, timeout=60)

            # Both kinds of process serve Prometheus metrics, at the addresses `up` prints.
            assert f"{up.url}/metrics (API), http://{up.worker_metrics}/metrics (worker)" in up.output()
            api_metrics = (await http.get("/metrics")).text
            assert 'ticketflow_http_requests_total{method="GET",route="/tickets",status="200"}' in api_metrics

            async def worker_counted():
                page = (await http.get(f"http://{up.worker_metrics}/metrics")).text
                opened = [line for line in page.splitlines() if line.startswith("ticketflow_cases_opened_total")]
                return page if sum(float(line.rsplit(" ", 1)[1]) for line in opened) >= 4 else None

            worker_page = await eventually(worker_counted, timeout=30)
            assert 'ticketflow_connector_calls_total{' in worker_page and 'system="erp"' in worker_page
            assert "temporal_workflow_task_" in worker_page

            # The console's address and the demo agent's and supervisor's passwords are printed,
            # and the supervisor signs in to the dashboard with hers.
            assert f"console  {up.url}/console" in up.output()
            passwords = up.passwords()
            for user, role in (("ana", "agent"), ("sam", "supervisor")):
                assert re.search(rf"{user} +{re.escape(passwords[user])} +{role}", up.output()), up.output()
            signed_in = await http.post("/auth/session", json={"user": "sam", "password": passwords["sam"]})
            assert signed_in.status_code == 200 and "tf_session" in signed_in.cookies
            assert (await http.get("/console/dashboard")).status_code == 200

            opened = asyncio.Event()
            console = asyncio.create_task(follow_events(up.url, tokens["sam"], opened))
            await asyncio.wait_for(opened.wait(), 10)

        assert await up.interrupt() == 0
        await asyncio.wait_for(console, 10)  # the open stream did not hold the stop up
        assert "Traceback" not in up.output(), up.output()
        keys = (up.data_dir / "payload-keys.json").read_text()
        signing = (up.data_dir / "audit-signing-key.pem").read_bytes()
        printed = up.log.read_text()
        assert "HTTP Request:" not in printed and "setup plugin" not in printed  # no line per request or plugin
        assert "payload-keys.json (created now: back it up)" in up.log.read_text()
        assert "audit-signing-key.pem (created now: back it up)" in up.log.read_text()

        await up.start()
        assert (up.data_dir / "payload-keys.json").read_text() == keys  # the same key, not a new one
        assert (up.data_dir / "audit-signing-key.pem").read_bytes() == signing
        assert up.tokens() == tokens  # the same demo people
        async with httpx.AsyncClient(base_url=up.url, timeout=30) as http:
            after = await tickets(http, admin)
            assert set(after) == set(before)  # nothing lost, no demo ticket opened twice
            assert set(demo) < set(after)

            # A ticket left waiting for an agent is worked to the end by the new worker.
            sam = {"Authorization": f"Bearer {tokens['sam']}"}
            waiting = (await http.get("/tasks", params={"status": "open", "limit": 100}, headers=sam)).json()["items"]
            assert waiting, after
            task = waiting[0]
            assert (await http.post(f"/tasks/{task['id']}/claim", headers=sam)).status_code == 200
            r = await http.post(f"/tasks/{task['id']}/complete", headers=sam,
                                json={"outcome": "resolve", "reply": "Found it: it arrives tomorrow."})
            assert r.status_code == 200, r.text

            async def resolved():
                ticket = (await tickets(http, admin))[task["ticket_id"]]
                return ticket if ticket["status"] == "resolved" else None

            await eventually(resolved, timeout=30)
        assert await up.interrupt() == 0
    finally:
        up.kill()


@pytest.mark.slow
async def test_ctrl_c_while_the_demo_is_being_set_up_stops_up(tmp_path):
    """Ctrl-C in the first seconds, while `up` opens the demo: it used to print "stopped"
    and then hang for good, the worker cancelled after Temporal was gone."""
    up = Up(tmp_path / "var", tmp_path / "up.log")
    try:
        up.proc = subprocess.Popen([sys.executable, "-m", "cli.main", "up"], cwd=ROOT, env=up.env,
                                   stdout=up.log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)

        async def answering() -> bool:
            assert up.proc.poll() is None, up.output()
            try:
                async with httpx.AsyncClient(timeout=1) as http:
                    return (await http.get(f"{up.url}/healthz")).status_code in (200, 503)
            except httpx.HTTPError:
                return False

        await eventually(answering, timeout=START_TIMEOUT, interval=0.05)
        assert "demo tokens" not in up.log.read_text()  # still setting the demo up
        assert await up.interrupt() == 0
        assert "Traceback" not in up.output(), up.output()
    finally:
        up.kill()
