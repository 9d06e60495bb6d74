"""The console's pages over HTTP, on SQLite and PostgreSQL: who sees what, the filters, the
ticket view's customer picture and suggestions, the dashboard's door, the two languages,
and what a page refuses.

Rows are written straight into the read model; the pages need no workflow engine."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from api.main import create_app
from console import i18n
from console.messages import untranslated
from faq import knowledge_base as kb
from models.db import Database, utcnow
from models.enums import Priority
from models.faq import FaqEntry
from models.task import Task
from models.ticket import Ticket
from policies import people
from policies.store import add_department, create_user, grant
from settings import Settings

PASSWORD = "correct horse battery"


class World:
    """One department of the test's own, its agent and supervisor, and an agent elsewhere."""

    def __init__(self, db: Database) -> None:
        run = uuid.uuid4().hex[:8]
        self.db = db
        self.dept, self.other = f"desk-{run}", f"far-{run}"
        self.agent, self.boss, self.stranger = f"ag-{run}", f"sv-{run}", f"st-{run}"
        self.entry = f"where-{run}"

        def setup(session) -> None:  # noqa: ANN001
            for dept in (self.dept, self.other):
                add_department(session, "test", dept)
            for user, role, dept in ((self.agent, "agent", self.dept), (self.boss, "supervisor", self.dept),
                                     (self.stranger, "agent", self.other)):
                create_user(session, "test", user)
                grant(session, "test", user, role, dept)
                people.set_password(session, "test", user, PASSWORD)
            kb.create_entry(session, FaqEntry(
                id=self.entry, questions=[f"Where is my parcel {run}?"],
                answer="Your parcel {{ shipment.tracking_number }} is {{ shipment.status }}."))

        db.call(setup)

    def ticket(self, *, department: str | None = None, subject: str = "My parcel is late",
               priority: Priority = Priority.normal, status: str = "open", due_in: timedelta | None = None,
               created_ago: timedelta = timedelta(minutes=5), queue: str | None = None) -> str:
        ticket_id = uuid.uuid4().hex
        now = utcnow()
        department = department or self.dept
        context = _context(self.entry)
        ticket = Ticket(
            id=ticket_id, workflow_id=f"ticket-{ticket_id}", customer_id="CUST-0001", subject=subject,
            body="Where is it?", channel="web", order_id="ORD-1001", priority=priority.value, department=department,
            status="awaiting_agent", opened_at=now - created_ago, updated_at=now - created_ago, revision=1,
            conversation=[{"id": "m1", "direction": "in", "author": "CUST-0001", "text": "Where is it? <b>now</b>",
                           "at": (now - created_ago).isoformat()}],
            timeline=[{"at": (now - created_ago).isoformat(), "kind": "opened", "detail": "via web", "data": {}}],
            context=context)
        task = Task(id=f"{ticket_id}-t1", ticket_id=ticket_id, workflow_id=f"ticket-{ticket_id}", kind="handle_ticket",
                    queue=queue or department, priority=priority.value, priority_rank=priority.rank, status=status,
                    assignee=self.agent if status in ("claimed", "completed") else None, created_at=now - created_ago,
                    allowed_outcomes=["resolve", "ask_customer", "escalate", "transfer"],
                    context={"subject": subject, **{k: context[k] for k in ("customer360", "faq")}},
                    due_at=now + due_in if due_in is not None else None)

        def write(session) -> None:  # noqa: ANN001
            session.add(ticket)
            session.add(task)

        self.db.call(write)
        return ticket_id


def _context(entry_id: str) -> dict[str, Any]:
    return {
        "customer360": {
            "customer_id": "CUST-0001",
            "customer": {"id": "CUST-0001", "name": "Mia Keller", "email": "", "tier": "standard"},
            "orders": [{"id": "ORD-1001", "customer_id": "CUST-0001", "status": "shipped", "placed_at": "2026-11-20T10:00:00Z",
                        "currency": "EUR", "total": "163.99", "refunded_total": "20.00",
                        "lines": [{"sku": "HP", "description": "Wireless headphones", "quantity": 1, "unit_price": "129.00"}],
                        "tracking_number": "SBX1", "carrier": "Sandbox Express"}],
            "shipments": [{"tracking_number": "SBX1", "carrier": "Sandbox Express", "status": "in_transit",
                           "events": [{"time": "2026-11-29T01:00:00Z", "location": "Hamburg depot",
                                       "description": "Delayed: capacity shortage", "status": "in_transit"}],
                           "delay_hours": 50, "is_delayed": True, "delay_days": 3}],
            "external_tickets": [],
            "gaps": [{"system": "helpdesk", "reason": "timed out after 2.5 s", "error_type": "Unavailable"}],
        },
        "faq": {"decision": "escalate", "confidence": 0.4,
                "suggestions": [{"entry_id": entry_id, "question": "Where is my parcel?", "score": 0.71}]},
        "sla": {"status": "running", "first_response_due": "2030-01-01T10:00:00+00:00", "resolution_due": None,
                "breached": []},
    }


@pytest.fixture
def world(db) -> World:
    return World(db)


@pytest.fixture
async def http(db):
    app = create_app(Settings(database_url=db.url, policy_refresh_seconds=0), db=db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        yield client


async def signed_in(http: httpx.AsyncClient, user: str) -> httpx.AsyncClient:
    r = await http.post("/auth/session", json={"user": user, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return http


def rows(html: str) -> list[str]:
    return re.findall(r'<tr data-task="[^"]+" data-ticket="([^"]+)"', html)


async def test_a_page_without_a_session_sends_the_person_to_sign_in_and_back(http, world):
    r = await http.get("/console/inbox?priority=high")
    assert r.status_code == 303
    assert r.headers["location"] == "/console/sign-in?next=%2Fconsole%2Finbox%3Fpriority%3Dhigh"
    page = await http.get(r.headers["location"])
    assert page.status_code == 200 and 'data-next="/console/inbox?priority=high"' in page.text


@pytest.mark.parametrize("target", ["https://evil.example/x", "//evil.example/console", "/console\\@evil", "/admin"])
async def test_sign_in_never_sends_a_person_to_another_site(http, target):
    page = await http.get("/console/sign-in", params={"next": target})
    assert 'data-next="/console/inbox"' in page.text


async def test_the_inbox_lists_the_agents_queues_only_and_filters_them(http, world):
    mine = world.ticket(subject="Lost parcel", priority=Priority.high)
    normal = world.ticket(subject="Late parcel")
    elsewhere = world.ticket(department=world.other, subject="Not for you")
    await signed_in(http, world.agent)

    listed = rows((await http.get("/console/inbox", params={"queue": world.dept})).text)
    assert mine in listed and normal in listed and elsewhere not in listed
    high = rows((await http.get("/console/inbox", params={"queue": world.dept, "priority": "high"})).text)
    assert high == [mine]
    foreign = await http.get("/console/inbox", params={"queue": world.other})
    assert foreign.status_code == 400 and elsewhere not in rows(foreign.text)
    assert f"queue &#39;{world.other}&#39;: you work {world.dept}" in foreign.text


async def test_a_wrong_filter_says_what_to_fix_and_shows_the_rest(http, world):
    world.ticket()
    await signed_in(http, world.agent)
    r = await http.get("/console/inbox", params={"priority": "asap", "sort": "alphabet", "due_within": "-3"})
    assert r.status_code == 400
    for problem in ("priority &#39;asap&#39;: one of low, normal, high, urgent",
                    "sort &#39;alphabet&#39;: one of created, due, priority", "due_within &#39;-3&#39;: minutes"):
        assert problem in r.text
    assert rows(r.text)  # the list still shows, unfiltered by what was wrong
    bad_cursor = await http.get("/console/inbox", params={"cursor": "not-a-cursor"})
    assert bad_cursor.status_code == 400 and rows(bad_cursor.text)


async def test_the_inbox_pages_through_every_task_once(http, world):
    made = {world.ticket(subject=f"Parcel {i}", created_ago=timedelta(minutes=200 - i)) for i in range(57)}
    await signed_in(http, world.agent)
    seen: list[str] = []
    url = f"/console/inbox?queue={world.dept}"
    while url:
        html = (await http.get(url)).text
        seen += rows(html)
        nxt = re.search(r'<a href="(/console/inbox\?[^"]+)" rel="next"', html)
        url = nxt.group(1).replace("&amp;", "&") if nxt else ""
    assert len(seen) == len(set(seen)) == 57 and set(seen) == made


async def test_due_within_and_overdue_drill_down_to_the_tasks_behind_the_dashboard(http, world):
    late = world.ticket(due_in=timedelta(minutes=-5))
    soon = world.ticket(due_in=timedelta(minutes=10))  # and one due in 5 hours, in neither list
    world.ticket(due_in=timedelta(hours=5))
    await signed_in(http, world.boss)
    overdue = rows((await http.get("/console/inbox", params={"queue": world.dept, "overdue": "1", "status": "active"})).text)
    within = rows((await http.get("/console/inbox", params={"queue": world.dept, "due_within": "30",
                                                             "status": "active"})).text)
    # at risk, as the dashboard counts it: due from now until then, not already late
    assert overdue == [late] and within == [soon]


async def test_the_ticket_page_shows_the_whole_picture_escaped(http, world):
    ticket_id = world.ticket(subject="<script>alert(1)</script>")
    await signed_in(http, world.agent)
    r = await http.get(f"/console/tickets/{ticket_id}")
    assert r.status_code == 200, r.text
    html = r.text
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Where is it? &lt;b&gt;now&lt;/b&gt;" in html  # the customer's words, never markup
    assert 'data-order="ORD-1001"' in html and "Wireless headphones" in html
    assert 'class="shipment delayed"' in html and "late by 3 days" in html and "Delayed: capacity shortage" in html
    assert "Could not reach helpdesk: timed out after 2.5 s" in html
    # the suggestion's template is filled in with this ticket's parcel, ready to insert
    assert 'data-text="Your parcel SBX1 is in transit."' in html and "0.71" in html
    assert "Left to refund on the order: 143.99." in html
    assert 'data-action="claim"' in html


async def test_a_ticket_of_another_department_is_not_found_alike_an_unknown_one(http, world):
    foreign = world.ticket(department=world.other)
    await signed_in(http, world.agent)
    hidden = await http.get(f"/console/tickets/{foreign}")
    unknown = await http.get(f"/console/tickets/{uuid.uuid4().hex}")
    assert hidden.status_code == unknown.status_code == 404
    assert "or you may not see it" in hidden.text and "Not for you" not in hidden.text


async def test_the_dashboard_is_for_supervisors_and_counts_their_departments(http, world):
    world.ticket(priority=Priority.urgent, due_in=timedelta(minutes=-1))
    world.ticket(priority=Priority.urgent, due_in=timedelta(minutes=10))
    world.ticket(department=world.other, due_in=timedelta(minutes=-1))
    await signed_in(http, world.agent)
    refused = await http.get("/console/dashboard")
    assert refused.status_code == 403 and "for supervisors" in refused.text
    assert 'href="/console/dashboard"' not in (await http.get("/console/inbox")).text

    http.cookies.clear()
    await signed_in(http, world.boss)
    board = await http.get("/console/dashboard")
    assert board.status_code == 200, board.text
    html = board.text
    assert f"Departments: {world.dept}" in html and world.other not in html
    assert '<span class="count" data-figure="breached">1</span>' in html
    assert '<span class="count" data-figure="at-risk">1</span>' in html


async def test_the_console_speaks_the_browsers_language_until_the_person_switches(http, world):
    world.ticket()
    await signed_in(http, world.agent)
    zh = await http.get("/console/inbox", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    assert '<html lang="zh-Hans">' in zh.text and "收件箱" in zh.text and "主题" in zh.text
    script = json.loads(re.search(r'<script type="application/json" id="messages">(.*?)</script>', zh.text).group(1))
    assert "到期" in zh.text and script["due_in"] == "%(time)s 后到期"  # the script's texts too

    switched = await http.get("/console/language", params={"to": "en", "next": "/console/inbox"})
    assert switched.status_code == 303 and switched.headers["location"] == "/console/inbox"
    en = await http.get("/console/inbox", headers={"Accept-Language": "zh-CN"})
    assert '<html lang="en">' in en.text and "Subject" in en.text
    assert (await http.get("/console/language", params={"to": "klingon"})).status_code == 422


def test_every_text_of_the_console_has_a_chinese_translation():
    assert untranslated("zh-Hans") == []
    assert i18n.translations("zh-Hans").gettext("Inbox") == "收件箱"


@pytest.mark.parametrize(("header", "chosen"), [
    ("zh-TW,en;q=0.5", "zh-Hans"), ("de-DE,en;q=0.7,zh;q=0.9", "zh-Hans"), ("fr, en-GB;q=0.8", "en"),
    ("fr", None), ("", None), ("zh;q=0, en;q=0.1", "en"), ("en;q=abc, zh", "zh-Hans"),
])
def test_accept_language_picks_the_best_language_the_console_speaks(header, chosen):
    assert i18n.from_accept_language(header) == chosen


async def test_pages_forbid_framing_and_foreign_scripts_and_are_not_cached(http, world):
    await signed_in(http, world.agent)
    r = await http.get("/console/inbox")
    policy = r.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert r.headers["cache-control"] == "no-store"
    assert re.findall(r'(?:src|href)="(https?:)?//', r.text) == []
    script = await http.get(re.search(r'src="(/console/static/console\.js\?v=\w+)"', r.text).group(1))
    assert script.status_code == 200 and "EventSource" in script.text


async def test_open_or_claimed_pages_through_those_only_however_many_are_done(http, world):
    for i in range(60):
        world.ticket(status="completed", created_ago=timedelta(hours=10, minutes=i))
    live = {world.ticket(), world.ticket(status="claimed"), world.ticket()}
    await signed_in(http, world.agent)
    page = await http.get("/console/inbox", params={"queue": world.dept, "status": "active"})
    assert set(rows(page.text)) == live and 'rel="next"' not in page.text
    # "mine" alone lists what the agent holds, not the open tasks nobody holds
    mine = rows((await http.get("/console/inbox", params={"queue": world.dept, "mine": "1"})).text)
    assert len(mine) == 1 and mine[0] in live


async def test_a_ticket_transferred_to_another_queue_opens_for_the_agents_of_that_queue(http, world):
    moved = world.ticket(queue=world.other)  # the ticket keeps its department, its task moved on
    await signed_in(http, world.stranger)
    assert rows((await http.get("/console/inbox")).text) == [moved]
    page = await http.get(f"/console/tickets/{moved}")
    assert page.status_code == 200 and 'data-action="claim"' in page.text


async def test_a_customer_is_told_the_console_is_for_staff(http, world, db):
    name = f"cust-{uuid.uuid4().hex[:8]}"

    def customer(session) -> None:  # noqa: ANN001
        create_user(session, "test", name)
        grant(session, "test", name, "customer", "*")
        people.set_password(session, "test", name, PASSWORD)

    db.call(customer)
    await signed_in(http, name)
    for path, said in (("/console/inbox", "The console is for support staff"),
                       ("/console/dashboard", "The dashboard is for supervisors")):
        r = await http.get(path)
        assert r.status_code == 403 and said in r.text, path
    assert (await http.get(f"/console/tickets/{world.ticket()}")).status_code == 404


async def test_a_page_refreshing_itself_does_not_keep_an_idle_session_alive(http, world, db):
    from sqlmodel import select

    from models.auth import WebSession

    await signed_in(http, world.agent)
    long_ago = utcnow() - timedelta(minutes=20)

    def age(session) -> None:  # noqa: ANN001
        for row in session.exec(select(WebSession).where(WebSession.user == world.agent)):
            row.last_seen_at = long_ago
            session.add(row)

    def last_seen(session):  # noqa: ANN001, ANN202
        return session.exec(select(WebSession.last_seen_at).where(WebSession.user == world.agent)).one()

    db.call(age)
    assert (await http.get("/console/inbox", headers={"X-Console-Refresh": "1"})).status_code == 200
    assert abs((db.call(last_seen) - long_ago).total_seconds()) < 1  # the refresh was not the person
    assert (await http.get("/console/inbox")).status_code == 200
    assert db.call(last_seen) > long_ago + timedelta(minutes=19)  # a page the person opened is
