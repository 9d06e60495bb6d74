"""GET /events: live changes as Server-Sent Events, read with httpx streaming from the API
served in-process on a loopback port (a real HTTP server, so disconnects are real too)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from api.routes import events as events_module
from api.routes.events import _events
import harness
from harness import eventually, open_task_for, queue_name, ticket_body
from models.auth import Role
from models.db import DatabaseUnavailable, utcnow
from models.events import ChangeEvent


def person(stack, role: Role, department: str = "") -> dict[str, str]:
    return harness.person(stack.db, role, department)[1]


class Stream:
    """One open event stream, parsed into events ({"id", "event", "data"}) and comments."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()
        self.comments: list[str] = []

    async def next_event(self, timeout: float = 10.0) -> dict:
        event: dict = {}
        async with asyncio.timeout(timeout):
            async for line in self.lines:
                if line.startswith(":"):
                    self.comments.append(line[1:].strip())
                elif line == "":
                    if "data" in event:
                        event["data"] = json.loads(event["data"])
                        return event
                    event = {}
                else:
                    key, _, value = line.partition(": ")
                    event[key] = value
        raise AssertionError("the stream ended")

    async def until(self, matches, timeout: float = 15.0) -> tuple[dict, list[dict]]:
        """Read events until one matches; returns it and every event read before it."""
        seen = []
        async with asyncio.timeout(timeout):
            while True:
                event = await self.next_event(timeout)
                if matches(event):
                    return event, seen
                seen.append(event)


@contextlib.asynccontextmanager
async def stream(http: httpx.AsyncClient, headers: dict, **params) -> AsyncIterator[Stream]:
    async with http.stream("GET", "/events", headers=headers, params=params) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Stream(response)


def is_task(task_id: str, status: str):
    return lambda e: e["event"] == "task" and e["data"]["task_id"] == task_id and e["data"]["status"] == status


async def new_task(stack, queue: str, **overrides) -> dict:
    r = await stack.http.post("/tickets", json=ticket_body(department=queue, **overrides), headers=stack.as_("admin"))
    assert r.status_code == 201
    return await open_task_for(stack, r.json()["id"], user="sam")


async def test_a_claim_shows_on_the_agents_stream_and_not_on_another_departments(stack, served):
    http, _ = served
    mine, theirs = queue_name(stack.db), queue_name(stack.db)
    agent, outsider = person(stack, Role.agent, mine), person(stack, Role.agent, theirs)
    async with stream(http, agent) as a_stream, stream(http, outsider) as o_stream:
        task = await new_task(stack, mine)
        assert (await stack.http.post(f"/tasks/{task['id']}/claim", headers=agent)).status_code == 200
        claimed, before = await a_stream.until(is_task(task["id"], "claimed"))
        assert claimed["data"]["payload"]["assignee"].startswith("agent-")
        assert int(claimed["id"]) > max([0] + [int(e["id"]) for e in before])
        assert any(e["event"] == "ticket" and e["data"]["ticket_id"] == task["ticket_id"] for e in before)
        assert "customer_id" not in claimed["data"]

        # the outsider's stream carries their own queue's news, and nothing of ours
        other = await new_task(stack, theirs)
        _, seen = await o_stream.until(is_task(other["id"], "open"))
        assert all(e["data"]["queue"] == theirs for e in seen)


async def test_supervisors_see_every_queue_and_may_narrow_it(stack, served):
    http, _ = served
    first, second = queue_name(stack.db), queue_name(stack.db)
    async with stream(http, stack.as_("sam")) as everything, stream(http, stack.as_("sam"), queue=second) as narrow:
        a, b = await new_task(stack, first), await new_task(stack, second)
        await everything.until(is_task(a["id"], "open"))
        await everything.until(is_task(b["id"], "open"))
        _, seen = await narrow.until(is_task(b["id"], "open"))
        assert all(e["data"]["queue"] == second for e in seen)


async def test_customers_follow_only_their_own_tickets(stack, served):
    http, _ = served
    queue = queue_name(stack.db)
    async with stream(http, stack.as_("cust-1")) as own:
        other = await stack.http.post("/tickets", json=ticket_body(customer_id="cust-2", department=queue),
                                      headers=stack.as_("admin"))
        mine = await stack.http.post("/tickets", json=ticket_body(customer_id="cust-1", department=queue),
                                     headers=stack.as_("admin"))
        event, seen = await own.until(lambda e: e["data"]["ticket_id"] == mine.json()["id"])
        for e in [*seen, event]:
            assert e["event"] == "ticket" and e["data"]["ticket_id"] != other.json()["id"]
    assert (await http.get("/events", headers=person(stack, Role.agent, queue),
                           params={"queue": "someone-elses"})).status_code == 403
    assert (await http.get("/events")).status_code == 401


async def test_a_client_resumes_where_it_left_off(stack, served):
    http, _ = served
    queue = queue_name(stack.db)
    agent = person(stack, Role.agent, queue)
    async with stream(http, agent) as first:
        task = await new_task(stack, queue)
        last, _ = await first.until(is_task(task["id"], "open"))
    # while nobody listens, the task is claimed and a note added
    await stack.http.post(f"/tasks/{task['id']}/claim", headers=agent)
    await stack.http.post(f"/tasks/{task['id']}/notes", json={"text": "on it"}, headers=agent)

    for resume in ({"headers": {**agent, "Last-Event-ID": last["id"]}}, {"headers": agent, "after": last["id"]}):
        async with stream(http, resume["headers"], **({"after": resume["after"]} if "after" in resume else {})) as s:
            claimed, before = await s.until(is_task(task["id"], "claimed"))
            ids = [int(e["id"]) for e in [*before, claimed]]
            assert ids == sorted(set(ids)) and ids[0] > int(last["id"])
            noted, _ = await s.until(lambda e: e["event"] == "task" and e["data"]["task_id"] == task["id"]
                                     and e["data"]["revision"] > claimed["data"]["revision"])
            assert noted["data"]["status"] == "claimed"

    r = await http.get("/events", headers={**agent, "Last-Event-ID": "yesterday"})
    assert r.status_code == 422 and "Last-Event-ID" in r.json()["detail"][0]["msg"]


async def test_heartbeats_keep_a_quiet_stream_open(stack, served, monkeypatch):
    monkeypatch.setattr(events_module, "HEARTBEAT_SECONDS", 0.2)
    http, _ = served
    async with stream(http, person(stack, Role.agent, queue_name(stack.db))) as quiet:
        async def beat():
            line = await anext(quiet.lines)
            return line == ": keep-alive"

        await eventually(beat, timeout=5, interval=0)


async def test_one_tailer_serves_every_stream_and_stops_when_they_leave(stack, served):
    http, app = served
    queue = queue_name(stack.db)
    headers = [person(stack, Role.agent, queue) for _ in range(5)]
    async with contextlib.AsyncExitStack() as streams:
        opened = [await streams.enter_async_context(stream(http, h)) for h in headers]
        task = await new_task(stack, queue)
        for s in opened:
            await s.until(is_task(task["id"], "open"))
        feed = app.state.change_feed
        assert len(feed.subscribers) == 5
        polls_before = feed.polls
        await asyncio.sleep(1.0)
        # one query per poll interval for all five streams, not five
        assert feed.polls - polls_before <= 1.0 / events_module.POLL_SECONDS + 1

    async def tailer_stopped():
        return not feed.subscribers and feed._task is not None and feed._task.done()

    await eventually(tailer_stopped, timeout=5)


async def test_a_stream_that_cannot_reach_the_database_ends_with_a_hint_to_reconnect():
    # The 200 has gone out when the stream joins the feed: it cannot become a 503 any more.
    class Unreachable:
        async def subscribe(self, queues, customer_id, case_type=None):  # noqa: ANN001, ANN202
            raise DatabaseUnavailable("connection refused")

    chunks = [chunk async for chunk in _events(Unreachable(), None, None, None)]
    assert chunks == ["retry: 5000\n: the database is unreachable; reconnect shortly\n\n"]


async def test_the_feed_starts_behind_its_newest_changes_so_a_late_commit_is_not_lost(stack, served):
    """On PostgreSQL an event's id is handed out at insert and becomes visible at commit, so a
    lower id can appear after a higher one. The tailer starts a little behind the newest
    events; a change committed just before a stream joins still reaches it."""
    http, app = served
    queue = queue_name(stack.db)
    stack.db.call(lambda s: s.add(ChangeEvent(at=utcnow(), kind="task", ticket_id="late", task_id="late-task",
                                              queue=queue, status="open", revision=1, payload={})))
    async with stream(http, stack.as_("sam"), queue=queue) as s:
        event = await s.next_event()
        assert event["data"]["task_id"] == "late-task"
