"""The agents' inbox (GET /tasks): filters, the three sorts and their cursors, department
scoping; and the supervisor's and agent's task actions reassign and notes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete

from harness import eventually, person, queue_name, ticket_body
from models import readmodel
from models.auth import Role
from models.task import Task, TaskNote, TaskOutcome, TaskPublic, TaskSnapshot, TaskStatus
from models.ticket import Priority

PRIORITIES = list(Priority)



def seed_inbox(db, queue: str, me: str, now: datetime, count: int = 41) -> list[TaskSnapshot]:
    """Tasks with ties everywhere: three share each creation time, priorities and due times
    repeat, every fifth has no due time. Written through the real projection."""
    t0 = now - timedelta(days=1)
    tasks = []
    for i in range(count):
        status, assignee = TaskStatus.open, None
        if i % 4 == 1:
            status, assignee = TaskStatus.claimed, me if i % 8 == 1 else "someone-else"
        elif i % 9 == 2:
            status, assignee = TaskStatus.completed, me
        task = TaskSnapshot(
            task_id=f"{queue}-t{i:03d}", ticket_id=f"{queue}-{i:03d}", workflow_id=f"ticket-{queue}-{i:03d}",
            queue=queue, priority=PRIORITIES[i % 4], status=status, assignee=assignee,
            created_at=t0 + timedelta(seconds=i // 3), revision=1,
            due_at=None if i % 5 == 0 else now + timedelta(hours=(i * 7) % 11 - 5, minutes=30),
            skills=["Carriers"] if i % 3 == 0 else ["refunds"] if i % 3 == 1 else [],
        )
        db.call(readmodel.upsert_task, task)
        tasks.append(task)
    return tasks


SORT_KEYS = {
    "created": lambda t: (t.created_at, t.task_id),
    "priority": lambda t: (-t.priority.rank, t.created_at, t.task_id),
    "due": lambda t: (t.due_at is None, t.due_at or t.created_at, t.created_at, t.task_id),
}


@pytest.fixture
async def inbox(stack):
    queue = queue_name(stack.db)
    me, headers = person(stack.db, Role.agent, queue)
    now = datetime.now(UTC)
    yield queue, me, headers, now, seed_inbox(stack.db, queue, me, now)
    # The database lives for the whole session: leave no open tasks for other tests' inboxes.
    stack.db.call(lambda s: s.execute(delete(Task).where(Task.queue == queue)))


async def all_pages(stack, headers, limit: int, **params) -> tuple[list[str], int]:
    ids, pages, cursor = [], 0, None
    while True:
        r = await stack.http.get("/tasks", params={**params, "limit": limit, **({"cursor": cursor} if cursor else {})},
                                 headers=headers)
        assert r.status_code == 200, r.text
        page = r.json()
        ids += [t["id"] for t in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            return ids, pages
        assert len(page["items"]) == limit


@pytest.mark.parametrize("sort", ["created", "priority", "due"])
@pytest.mark.parametrize("limit", [1, 4, 7, 41, 200])
async def test_every_page_of_every_sort_in_order_without_repeats_or_gaps(stack, inbox, sort, limit):
    queue, _, _, _, tasks = inbox
    ids, pages = await all_pages(stack, stack.as_("sam"), limit, queue=queue, sort=sort)
    assert ids == [t.task_id for t in sorted(tasks, key=SORT_KEYS[sort])]
    assert pages == -(-len(tasks) // limit)


async def test_created_is_the_default_sort(stack, inbox):
    queue, _, _, _, tasks = inbox
    ids, _ = await all_pages(stack, stack.as_("sam"), 10, queue=queue)
    assert ids == [t.task_id for t in sorted(tasks, key=SORT_KEYS["created"])]


FILTERS = {
    "open": ({"status": "open"}, lambda t, me, now: t.status == TaskStatus.open),
    "mine": ({"assignee": "me"}, lambda t, me, now: t.assignee == me),
    "high": ({"priority": "high"}, lambda t, me, now: t.priority == Priority.high),
    "overdue": ({"overdue": "true"},
                lambda t, me, now: t.due_at is not None and t.due_at < now
                and t.status in (TaskStatus.open, TaskStatus.claimed)),
    "skill, any case": ({"skill": "carriers"}, lambda t, me, now: "Carriers" in t.skills),
    "combined": ({"status": "claimed", "skill": "refunds", "priority": "normal"},
                 lambda t, me, now: t.status == TaskStatus.claimed and "refunds" in t.skills
                 and t.priority == Priority.normal),
}


@pytest.mark.parametrize("name", FILTERS)
@pytest.mark.parametrize("sort", ["created", "priority", "due"])
async def test_filters_keep_exactly_the_matching_tasks_in_sort_order(stack, inbox, name, sort):
    queue, me, headers, now, tasks = inbox
    params, keep = FILTERS[name]
    ids, _ = await all_pages(stack, headers, 3, sort=sort, **params)
    expected = [t.task_id for t in sorted(tasks, key=SORT_KEYS[sort]) if keep(t, me, now)]
    assert expected and ids == expected


async def test_the_inbox_json_is_exactly_the_tasks_public_form(stack, inbox):
    """GET /tasks takes each task's JSON from the database; it must say what TaskPublic says."""
    queue, me, _, now, _ = inbox
    full = TaskSnapshot(
        task_id=f"{queue}-full", ticket_id=f"{queue}-full", workflow_id=f"ticket-{queue}-full", queue=queue,
        priority=Priority.urgent, status=TaskStatus.completed, assignee=me, created_at=now - timedelta(days=2),
        claimed_at=now - timedelta(hours=3, microseconds=17), completed_at=now.replace(microsecond=0),
        outcome=TaskOutcome.escalate, reply="Sent on.", allowed_outcomes=[TaskOutcome.resolve, TaskOutcome.escalate],
        revision=4, context={"subject": "Zoë's \"late\" parcel", "order": {"id": "O-1", "lines": [1, 2.5, None]}},
        skills=["refunds", "Deutsch"], language="de-AT", customer_tier="vip", due_at=now - timedelta(minutes=1),
        notes=[TaskNote(author=me, text="called back\nno answer", at=now)], routing="Assigned to x. Lowest load.",
    )
    stack.db.call(readmodel.upsert_task, full)
    served = (await stack.http.get("/tasks", params={"queue": queue, "limit": 200},
                                   headers=stack.as_("sam"))).json()["items"]
    stored, _ = stack.db.call(readmodel.list_tasks, limit=200, queue=queue)
    assert all(set(item) == set(TaskPublic.model_fields) for item in served)
    assert [TaskPublic.model_validate(item) for item in served] == stored
    assert next(i for i in served if i["id"] == full.task_id)["context"] == full.context


async def test_agents_only_ever_see_their_department(stack, inbox):
    queue, _, headers, _, tasks = inbox
    ids, _ = await all_pages(stack, headers, 50)  # no queue asked: their own
    assert set(ids) == {t.task_id for t in tasks}
    _, outsider = person(stack.db, Role.agent, f"other{uuid.uuid4().hex[:6]}")
    for params in ({}, {"queue": queue}, {"queue": queue, "sort": "due"}):
        r = await stack.http.get("/tasks", params=params, headers=outsider)
        assert r.status_code == 200 and r.json()["items"] == []
    _, customer = person(stack.db, Role.customer)
    assert (await stack.http.get("/tasks", params={"queue": queue}, headers=customer)).status_code == 403


async def test_a_cursor_only_works_with_the_sort_it_was_made_for(stack, inbox):
    queue = inbox[0]
    page = (await stack.http.get("/tasks", params={"queue": queue, "sort": "due", "limit": 5},
                                 headers=stack.as_("sam"))).json()
    r = await stack.http.get("/tasks", params={"queue": queue, "sort": "priority", "cursor": page["next_cursor"]},
                             headers=stack.as_("sam"))
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["query", "cursor"] and "sort=due" in r.json()["detail"][0]["msg"]
    r = await stack.http.get("/tasks", params={"queue": queue, "cursor": page["next_cursor"]}, headers=stack.as_("sam"))
    assert r.status_code == 422


AT = "2026-01-01T00:00:00+00:00"


@pytest.mark.parametrize(("sort", "cursor"), [
    ("created", "not-a-cursor"),
    ("due", readmodel.encode_cursor("due", "yesterday", AT, "t1")),
    ("priority", readmodel.encode_cursor("priority", "high", AT, "t1")),
    ("created", readmodel.encode_cursor("shuffle", None, AT, "t1")),
    ("created", readmodel.encode_cursor("created", None, AT)),
    ("created", readmodel.encode_cursor("created", None, "noon", "t1")),
])
async def test_a_damaged_cursor_is_422(stack, sort, cursor):
    r = await stack.http.get("/tasks", params={"cursor": cursor, "sort": sort}, headers=stack.as_("sam"))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "cursor"]


@pytest.mark.parametrize("params", [{"sort": "newest"}, {"priority": "critical"}, {"overdue": "maybe"},
                                    {"limit": 0}, {"limit": 201}])
async def test_bad_inbox_parameters_are_422(stack, params):
    r = await stack.http.get("/tasks", params=params, headers=stack.as_("sam"))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][0] == "query"


# --- reassign and notes, through real ticket workflows ---------------------------------------


@pytest.fixture
async def task(stack):
    """An open task of a fresh queue, and two agents who work that queue."""
    queue = queue_name(stack.db)
    r = await stack.http.post("/tickets", json=ticket_body(department=queue), headers=stack.as_("admin"))
    ticket_id = r.json()["id"]
    agents = []
    for _ in range(2):
        name, headers = person(stack.db, Role.agent, queue)
        r = await stack.http.put(f"/agents/{name}", json={"queues": [queue]}, headers=stack.as_("sam"))
        assert r.status_code == 201
        agents.append((name, headers))

    async def waiting():
        items = (await stack.http.get("/tasks", params={"queue": queue}, headers=stack.as_("sam"))).json()["items"]
        return next((t for t in items if t["ticket_id"] == ticket_id and t["routing"]), None)

    return await eventually(waiting, timeout=30), agents


async def test_a_supervisor_reassigns_an_open_then_a_claimed_task(stack, task):
    task, [(ana, ana_h), (bob, _)] = task
    r = await stack.http.post(f"/tasks/{task['id']}/reassign", json={"agent": ana}, headers=stack.as_("sam"))
    assert r.status_code == 200, r.text
    assert (r.json()["assignee"], r.json()["status"]) == (ana, "claimed")
    assert [t["id"] for t in (await stack.http.get("/tasks", params={"assignee": "me"},
                                                   headers=ana_h)).json()["items"]] == [task["id"]]
    r = await stack.http.post(f"/tasks/{task['id']}/reassign", json={"agent": bob}, headers=stack.as_("admin"))
    assert r.status_code == 200 and r.json()["assignee"] == bob
    timeline = (await stack.http.get(f"/tickets/{task['ticket_id']}", headers=stack.as_("sam"))).json()["timeline"]
    assert any(e["kind"] == "task_reassigned" and e["detail"] == f"from {ana} to {bob} by admin" for e in timeline)


async def test_reassign_refusals(stack, task):
    task, [(ana, ana_h), (bob, bob_h)] = task
    url = f"/tasks/{task['id']}/reassign"
    # agents may not, even in the task's own queue
    assert (await stack.http.post(url, json={"agent": ana}, headers=ana_h)).status_code == 403
    assert (await stack.http.post("/tasks/no-such-task/reassign", json={"agent": ana},
                                  headers=stack.as_("sam"))).status_code == 404
    r = await stack.http.post(url, json={"agent": "nobody-known"}, headers=stack.as_("sam"))
    assert r.status_code == 422 and "PUT /agents/nobody-known" in r.json()["detail"][0]["msg"]
    assert r.json()["detail"][0]["loc"] == ["body", "agent"]
    outsider, _ = person(stack.db, Role.agent, "elsewhere")
    await stack.http.put(f"/agents/{outsider}", json={"queues": ["elsewhere"]}, headers=stack.as_("sam"))
    r = await stack.http.post(url, json={"agent": outsider}, headers=stack.as_("sam"))
    assert r.status_code == 422 and "does not work queue" in r.json()["detail"][0]["msg"]
    assert (await stack.http.post(url, json={}, headers=stack.as_("sam"))).status_code == 422
    # none of that changed the task
    assert (await stack.http.get("/tasks", params={"queue": task["queue"]},
                                 headers=stack.as_("sam"))).json()["items"][0]["assignee"] is None

    assert (await stack.http.post(url, json={"agent": ana}, headers=stack.as_("sam"))).status_code == 200
    r = await stack.http.post(url, json={"agent": ana}, headers=stack.as_("sam"))
    assert r.status_code == 409 and "already with" in r.json()["detail"]
    r = await stack.http.post(f"/tasks/{task['id']}/complete", json={"outcome": "resolve", "reply": "Done."},
                              headers=ana_h)
    assert r.status_code == 200
    r = await stack.http.post(url, json={"agent": bob}, headers=stack.as_("sam"))
    assert r.status_code == 409 and "completed" in r.json()["detail"]


async def test_anyone_who_may_read_a_task_adds_notes(stack, task):
    task, [(ana, ana_h), _] = task
    url = f"/tasks/{task['id']}/notes"
    r = await stack.http.post(url, json={"text": "Customer called twice."}, headers=ana_h)
    assert r.status_code == 201, r.text
    r = await stack.http.post(url, json={"text": "Check the carrier."}, headers=stack.as_("sam"))
    assert r.status_code == 201
    assert [(n["author"], n["text"]) for n in r.json()["notes"]] == [(ana, "Customer called twice."),
                                                                     ("sam", "Check the carrier.")]
    listed = (await stack.http.get("/tasks", params={"queue": task["queue"]}, headers=ana_h)).json()["items"]
    assert [n["text"] for n in listed[0]["notes"]] == ["Customer called twice.", "Check the carrier."]


async def test_note_refusals(stack, task):
    task, _ = task
    url = f"/tasks/{task['id']}/notes"
    _, outsider = person(stack.db, Role.agent, "elsewhere")
    _, customer = person(stack.db, Role.customer)
    # a task they may not read answers like one that does not exist
    assert (await stack.http.post(url, json={"text": "hi"}, headers=outsider)).status_code == 404
    assert (await stack.http.post(url, json={"text": "hi"}, headers=customer)).status_code == 404
    assert (await stack.http.post("/tasks/no-such-task/notes", json={"text": "hi"},
                                  headers=stack.as_("sam"))).status_code == 404
    for bad in ({"text": "   "}, {"text": ""}, {"text": "x" * 10_001}, {}):
        r = await stack.http.post(url, json=bad, headers=stack.as_("sam"))
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][:2] == ["body", "text"]
    listed = (await stack.http.get("/tasks", params={"queue": task["queue"]}, headers=stack.as_("sam"))).json()
    assert listed["items"][0]["notes"] == []


async def test_actions_on_a_closed_ticket_are_409(stack, task):
    task, [(ana, _), _] = task
    await stack.client.get_workflow_handle(task["workflow_id"]).terminate("closed for the test")
    r = await stack.http.post(f"/tasks/{task['id']}/notes", json={"text": "late"}, headers=stack.as_("sam"))
    assert r.status_code == 409 and "closed ticket" in r.json()["detail"]
    r = await stack.http.post(f"/tasks/{task['id']}/reassign", json={"agent": ana}, headers=stack.as_("sam"))
    assert r.status_code == 409
