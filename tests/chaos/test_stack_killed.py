"""The whole `ticketflow up` stack SIGKILLed with 200 tickets in flight, then started again
on its data directory: every ticket accepted before the kill reaches an agent or the bot,
and none is opened twice or given two tasks."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx
import pytest

from stack_runner import Up

TICKETS = 200
SETTLED = {"awaiting_agent", "in_progress", "bot_answered", "resolved", "closed"}


async def all_tickets(http: httpx.AsyncClient, headers: dict) -> list[dict]:
    items, cursor = [], None
    while True:
        r = await http.get("/tickets", params={"limit": 100, **({"cursor": cursor} if cursor else {})},
                           headers=headers)
        assert r.status_code == 200, r.text
        page = r.json()
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return items


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_a_killed_stack_restarts_with_every_accepted_ticket(tmp_path):
    up = Up(tmp_path / "data", tmp_path / "up.log")
    try:
        await up.start()
        admin = {"Authorization": f"Bearer {up.tokens()['admin']}"}
        async with httpx.AsyncClient(base_url=up.url, timeout=30) as http:
            gate = asyncio.Semaphore(20)

            async def open_one(i: int) -> dict:
                async with gate:
                    r = await http.post("/tickets", headers=admin, json={
                        "customer_id": "CUST-0001", "subject": f"Parcel {i}", "body": "Where is my parcel?",
                        "department": "logistics", "external_ref": f"chaos-{uuid.uuid4().hex}"})
                    assert r.status_code == 201, r.text
                    return r.json()

            accepted = await asyncio.gather(*(open_one(i) for i in range(TICKETS)))
            before = {t["id"]: t["status"] for t in await all_tickets(http, admin)}
            in_flight = sum(1 for t in accepted if before.get(t["id"], "new") not in SETTLED)
            up.kill()  # API, worker, Temporal and the sandbox, all at once

        await up.start()
        async with httpx.AsyncClient(base_url=up.url, timeout=30) as http:
            ids = {t["id"] for t in accepted}
            for _ in range(300):
                mine = [t for t in await all_tickets(http, admin) if t["id"] in ids]
                if len(mine) == TICKETS and all(t["status"] in SETTLED for t in mine):
                    break
                await asyncio.sleep(1)
            assert len(mine) == TICKETS, f"{TICKETS - len(mine)} accepted tickets are missing"
            stuck = [t["id"] for t in mine if t["status"] not in SETTLED]
            assert not stuck, f"{len(stuck)} tickets never reached an agent or the bot"
            tasks = []
            cursor = None
            while True:
                r = await http.get("/tasks", params={"limit": 100, **({"cursor": cursor} if cursor else {})},
                                   headers=admin)
                tasks += [t for t in r.json()["items"] if t["ticket_id"] in ids]
                cursor = r.json().get("next_cursor")
                if not cursor:
                    break
            assert all(n == 1 for n in Counter(t["ticket_id"] for t in tasks).values())
        print(f"\n{in_flight} of {TICKETS} tickets were still on their way when the stack was killed")
    finally:
        up.kill()
