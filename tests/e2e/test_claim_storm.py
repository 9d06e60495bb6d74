"""Twenty agents grab the same hundred tasks at once through the API: every task ends up
with exactly one of them, every loser hears 409, and the read model and the workflows
agree on who won."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from api.auth import create_token
from api.main import create_app
from harness import eventually, ticket_body
from models.auth import Role
from policies.store import add_department
from settings import Settings
from worker import build_worker
from workflows.ticket import TicketWorkflow

N_AGENTS = 20
N_TASKS = 100


@pytest.mark.slow
async def test_two_thousand_concurrent_claims_give_each_task_exactly_one_agent(dev_env, db, tokens, task_queue):
    # No FAQ worker runs here; an enabled bot would make every ticket wait for one.
    settings = Settings(database_url=db.url, task_queue=task_queue, faq_enabled=False)
    app = create_app(settings, db=db, temporal=dev_env.client)
    queue = f"storm{uuid.uuid4().hex[:8]}"
    db.call(add_department, "tests", queue)
    agents = {f"{queue}-agent{i:02d}": db.call(create_token, user=f"{queue}-agent{i:02d}", role=Role.agent,
                                             department=queue) for i in range(N_AGENTS)}
    admin = {"Authorization": f"Bearer {tokens['admin']}"}

    with ThreadPoolExecutor(max_workers=settings.activity_threads) as executor:
        async with build_worker(dev_env.client, settings, db, executor):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=120) as http:
                opened = await asyncio.gather(*[
                    http.post("/tickets", json=ticket_body(department=queue, subject=f"storm {i}"), headers=admin)
                    for i in range(N_TASKS)
                ])
                assert all(r.status_code == 201 for r in opened)

                async def all_open():
                    r = await http.get("/tasks", params={"queue": queue, "status": "open", "limit": 200},
                                       headers=admin)
                    items = r.json()["items"]
                    return items if len(items) == N_TASKS else None

                tasks = await eventually(all_open, timeout=60)

                # every agent goes for every task, in its own random order, all at once
                claims = [(agent, task["id"]) for agent in agents for task in tasks]
                random.Random(7).shuffle(claims)
                responses = await asyncio.gather(*[
                    http.post(f"/tasks/{task_id}/claim", headers={"Authorization": f"Bearer {agents[agent]}"})
                    for agent, task_id in claims
                ])

                winners: dict[str, list[str]] = defaultdict(list)
                for (agent, task_id), r in zip(claims, responses):
                    assert r.status_code in (200, 409), (r.status_code, r.text)
                    if r.status_code == 200:
                        assert r.json()["assignee"] == agent
                        winners[task_id].append(agent)
                    else:
                        assert "already claimed by" in r.json()["detail"]
                assert Counter(len(w) for w in winners.values()) == {1: N_TASKS}
                assert len(responses) == N_AGENTS * N_TASKS

                # the read model agrees as soon as the calls have returned
                listed = (await http.get("/tasks", params={"queue": queue, "limit": 200}, headers=admin)).json()
                assert {t["id"]: (t["status"], t["assignee"]) for t in listed["items"]} == {
                    task_id: ("claimed", agents_[0]) for task_id, agents_ in winners.items()}
                # and so does every workflow
                for task in tasks:
                    held = await dev_env.client.get_workflow_handle(task["workflow_id"]).query(
                        TicketWorkflow.open_tasks)
                    assert [(t.task_id, t.assignee) for t in held] == [(task["id"], winners[task["id"]][0])]
