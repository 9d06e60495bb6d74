"""Agents through the HTTP API: profiles, presence, and who may touch them. Each test uses
its own queue and people, so routing in one test never hands out another test's tasks."""

from __future__ import annotations

import uuid

import pytest

from harness import eventually, person, queue_name, ticket_body
from models.auth import Role




PROFILE = {"skills": ["refunds", "carriers"], "languages": ["en", "de"], "capacity": 3, "senior": True}


async def put_agent(stack, agent_id: str, queue: str, **fields) -> dict:
    r = await stack.http.put(f"/agents/{agent_id}", json={**PROFILE, "queues": [queue], **fields},
                             headers=stack.as_("sam"))
    assert r.status_code in (200, 201), r.text
    return r.json()


async def test_a_supervisor_creates_then_replaces_a_profile_and_presence_is_kept(stack):
    queue = queue_name(stack.db)
    name, agent = person(stack.db, Role.agent, queue)
    r = await stack.http.put(f"/agents/{name}", json={**PROFILE, "queues": [queue]}, headers=stack.as_("sam"))
    assert r.status_code == 201, r.text
    created = r.json()
    assert created | {"presence_changed_at": None} == {
        "id": name, "skills": ["carriers", "refunds"], "languages": ["de", "en"], "queues": [queue], "capacity": 3,
        "senior": True, "presence": "offline", "presence_changed_at": None, "load": 0}

    assert (await stack.http.put("/agents/me/presence", json={"presence": "away"}, headers=agent)).status_code == 200
    r = await stack.http.put(f"/agents/{name}", json={"queues": [queue], "capacity": 7}, headers=stack.as_("admin"))
    assert r.status_code == 200
    assert r.json()["capacity"] == 7 and r.json()["presence"] == "away" and r.json()["skills"] == []
    assert (await stack.http.get(f"/agents/{name}", headers=stack.as_("sam"))).json()["capacity"] == 7


async def test_list_shows_load_and_presence_and_filters(stack):
    queue, other = queue_name(stack.db), queue_name(stack.db)
    ana, ana_h = person(stack.db, Role.agent, queue)
    bob, _ = person(stack.db, Role.agent, queue)
    gil, _ = person(stack.db, Role.agent, other)
    for name, q in ((ana, queue), (bob, queue), (gil, other)):
        await put_agent(stack, name, q)
    await stack.http.put("/agents/me/presence", json={"presence": "online"}, headers=ana_h)
    ticket = (await stack.http.post("/tickets", json=ticket_body(department=queue), headers=stack.as_("admin"))).json()

    async def ana_holds_it():
        items = (await stack.http.get("/tasks", params={"queue": queue}, headers=stack.as_("sam"))).json()["items"]
        return next((t for t in items if t["ticket_id"] == ticket["id"] and t["assignee"] == ana), None)

    await eventually(ana_holds_it)  # routed to her: she is the only one online

    listed = (await stack.http.get("/agents", params={"queue": queue}, headers=stack.as_("sam"))).json()
    assert [(a["id"], a["presence"], a["load"]) for a in listed] == sorted(
        [(ana, "online", 1), (bob, "offline", 0)])
    online = (await stack.http.get("/agents", params={"queue": queue, "presence": "online"},
                                   headers=stack.as_("admin"))).json()
    assert [a["id"] for a in online] == [ana]
    everyone = {a["id"] for a in (await stack.http.get("/agents", headers=stack.as_("sam"))).json()}
    assert {ana, bob, gil} <= everyone


@pytest.mark.parametrize(("body", "field"), [
    ({"capacity": -1}, "capacity"),
    ({"capacity": 101}, "capacity"),
    ({"queues": ["Billing Team"]}, "queues"),
    ({"skills": [""]}, "skills"),
    ({"senior": "sometimes"}, "senior"),
])
async def test_bad_profiles_are_422_with_the_field_named(stack, body, field):
    r = await stack.http.put(f"/agents/x-{uuid.uuid4().hex[:6]}", json={"queues": ["billing"], **body},
                             headers=stack.as_("sam"))
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][:2] == ["body", field]


async def test_me_cannot_be_an_agent_id(stack):
    r = await stack.http.put("/agents/me", json={"queues": ["billing"]}, headers=stack.as_("admin"))
    assert r.status_code == 422 and "'me'" in r.json()["detail"][0]["msg"]


async def test_only_supervisors_and_admins_manage_and_list_agents(stack):
    queue = queue_name(stack.db)
    name, agent = person(stack.db, Role.agent, queue)
    await put_agent(stack, name, queue)
    _, customer = person(stack.db, Role.customer)
    for who in (agent, customer):
        assert (await stack.http.put(f"/agents/{name}", json={"queues": [queue], "capacity": 100},
                                     headers=who)).status_code == 403
        assert (await stack.http.get("/agents", headers=who)).status_code == 403
    assert (await stack.http.get(f"/agents/{name}", headers=customer)).status_code == 404
    assert (await stack.http.get("/agents/me", headers=customer)).status_code == 403
    # an agent reads their own profile, not a colleague's
    assert (await stack.http.get(f"/agents/{name}", headers=agent)).status_code == 200
    assert (await stack.http.get("/agents/me", headers=agent)).json()["capacity"] == 3
    colleague, _ = person(stack.db, Role.agent, queue)
    await put_agent(stack, colleague, queue)
    assert (await stack.http.get(f"/agents/{colleague}", headers=agent)).status_code == 404
    # nothing changed by the refused calls
    assert (await stack.http.get(f"/agents/{name}", headers=stack.as_("sam"))).json()["capacity"] == 3
    assert (await stack.http.get("/agents")).status_code == 401


async def test_unknown_agents_are_404_and_say_who_creates_them(stack):
    assert (await stack.http.get("/agents/nobody-here", headers=stack.as_("sam"))).status_code == 404
    _, agent = person(stack.db, Role.agent, queue_name(stack.db))
    r = await stack.http.get("/agents/me", headers=agent)
    assert r.status_code == 404 and "admin" in r.json()["detail"]
    r = await stack.http.put("/agents/me/presence", json={"presence": "online"}, headers=agent)
    assert r.status_code == 404 and "PUT /agents/" in r.json()["detail"]


async def test_presence_is_set_by_the_agent_for_themselves_only(stack):
    queue = queue_name(stack.db)
    name, agent = person(stack.db, Role.agent, queue)
    await put_agent(stack, name, queue)
    r = await stack.http.put("/agents/me/presence", json={"presence": "away"}, headers=agent)
    assert r.status_code == 200 and r.json()["presence"] == "away" and r.json()["presence_changed_at"]
    assert (await stack.http.put("/agents/me/presence", json={"presence": "asleep"},
                                 headers=agent)).status_code == 422
    _, customer = person(stack.db, Role.customer)
    assert (await stack.http.put("/agents/me/presence", json={"presence": "online"},
                                 headers=customer)).status_code == 403
    # a supervisor setting presence acts on their own profile, never on the agent's
    assert (await stack.http.put("/agents/me/presence", json={"presence": "online"},
                                 headers=stack.as_("sam"))).status_code == 404
    assert (await stack.http.get(f"/agents/{name}", headers=stack.as_("sam"))).json()["presence"] == "away"


async def _open_tasks(stack, queue: str, n: int) -> list[dict]:
    ids = []
    for i in range(n):
        r = await stack.http.post("/tickets", json=ticket_body(department=queue, subject=f"parcel {i}"),
                                  headers=stack.as_("admin"))
        ids.append(r.json()["id"])

    async def all_waiting():
        items = (await stack.http.get("/tasks", params={"queue": queue, "status": "open"},
                                      headers=stack.as_("sam"))).json()["items"]
        # routed once (nobody was online), so nothing else will pick them up by itself
        waiting = [t for t in items if t["ticket_id"] in ids and t["routing"]]
        return waiting if len(waiting) == n else None

    return await eventually(all_waiting, timeout=30)


async def test_going_online_takes_queued_tasks_up_to_capacity(stack):
    queue = queue_name(stack.db)
    name, agent = person(stack.db, Role.agent, queue)
    await put_agent(stack, name, queue, capacity=2)
    tasks = await _open_tasks(stack, queue, 3)

    r = await stack.http.put("/agents/me/presence", json={"presence": "online"}, headers=agent)
    assert r.status_code == 200 and r.json()["presence"] == "online" and r.json()["load"] == 2

    mine = (await stack.http.get("/tasks", params={"assignee": "me"}, headers=agent)).json()["items"]
    assert len(mine) == 2 and {t["id"] for t in mine} < {t["id"] for t in tasks}
    assert all(t["status"] == "claimed" and t["routing"].startswith(f"Assigned to {name}") for t in mine)


async def test_raising_an_online_agents_capacity_offers_them_waiting_tasks(stack):
    queue = queue_name(stack.db)
    name, agent = person(stack.db, Role.agent, queue)
    await put_agent(stack, name, queue, capacity=1)
    tasks = await _open_tasks(stack, queue, 3)
    assert (await stack.http.put("/agents/me/presence", json={"presence": "online"},
                                 headers=agent)).json()["load"] == 1

    raised = await put_agent(stack, name, queue, capacity=3)
    assert raised["load"] == 3 and raised["presence"] == "online"
    mine = (await stack.http.get("/tasks", params={"assignee": "me"}, headers=agent)).json()["items"]
    assert {t["id"] for t in mine} == {t["id"] for t in tasks}

    # an offline agent's profile change routes nothing to them
    other, _ = person(stack.db, Role.agent, queue)
    await put_agent(stack, other, queue, capacity=1)
    waiting = await _open_tasks(stack, queue, 1)
    assert (await put_agent(stack, other, queue, capacity=5))["load"] == 0
    task = (await stack.http.get("/tasks", params={"queue": queue, "status": "open"},
                                 headers=stack.as_("sam"))).json()["items"]
    assert [t["id"] for t in task] == [waiting[0]["id"]]


async def test_going_offline_hands_back_every_task(stack):
    queue = queue_name(stack.db)
    name, agent = person(stack.db, Role.agent, queue)
    await put_agent(stack, name, queue)
    tasks = await _open_tasks(stack, queue, 2)
    for task in tasks:
        assert (await stack.http.post(f"/tasks/{task['id']}/claim", headers=agent)).status_code == 200
    assert (await stack.http.get("/agents/me", headers=agent)).json()["load"] == 2

    r = await stack.http.put("/agents/me/presence", json={"presence": "offline"}, headers=agent)
    assert r.status_code == 200 and r.json()["presence"] == "offline" and r.json()["load"] == 0
    items = (await stack.http.get("/tasks", params={"queue": queue}, headers=stack.as_("sam"))).json()["items"]
    assert {(t["id"], t["status"], t["assignee"]) for t in items} == {(t["id"], "open", None) for t in tasks}
    ticket = (await stack.http.get(f"/tickets/{tasks[0]['ticket_id']}", headers=stack.as_("sam"))).json()
    assert any(e["kind"] == "task_released" and "went offline" in e["detail"] for e in ticket["timeline"])
