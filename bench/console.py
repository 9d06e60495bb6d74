"""Console benchmark: server time of the agents' pages under load, and intake to inbox row.

Two measurements, each skippable (`--skip-pages`, `--skip-intake`):

1. Page server time. Seeds `--tasks` open tasks (default 10,000) with their tickets into a
   fresh SQLite file (or with `--database-url`, a scratch schema in PostgreSQL, dropped at
   the end) through the real projection (`models.readmodel.upsert_ticket` / `upsert_task`),
   spread over four departments. Rows are shaped like those a real ticket leaves (copied
   from one `ticketflow up` produced): a task's context carries the subject, the order, the
   customer360 (customer, 1-2 orders with lines, a shipment with 4-6 scan events, earlier
   helpdesk tickets, sometimes a gap) and the FAQ bot's suggestions; the ticket row has its
   conversation, timeline, SLA and the same context, so the ticket page renders in full
   (the demo knowledge base is imported so suggestions resolve, one of them a template
   filled in with the order's facts). Creates `--agents` agent users (default 50; one
   department each, every fifth in two), with passwords, and signs each in over HTTP
   (POST /auth/session) for its `tf_session` cookie.
   The API (`api.main.create_app`, no Temporal: the pages never call it) runs in a process
   of its own under uvicorn on a loopback port, wrapped in an ASGI middleware that times
   every request from the moment the app is called to the last byte of its response: the
   server time. The agents, in this process, each loop for `--duration` s: load a page,
   think `--think` s (uniform), repeat. The pages: the inbox with default filters (page 1),
   the inbox sorted by due time, the next page of the last inbox they loaded (following its
   "Next page" link, pages 2-5), and the ticket page of a random ticket of their
   departments. A warm-up of `--warmup-seconds` is not counted.
   Prints count, p50, p99 and max of the server time per kind of page (target: p99 < 50 ms)
   and, for context, what the agents saw (client latency, which adds the HTTP exchange and
   this process's own scheduling) and the server's CPU time per request.

2. Intake to inbox row. Starts the whole stack (`ticketflow up`: Temporal dev server,
   sandbox systems, worker with the FAQ model, API; payloads encrypted) as a subprocess in
   its own process group with its own data directory and free ports, through the runner the
   tests use (tests/stack_runner.py), signs in as the demo agent `ana`
   (logistics) with her demo password, and does what console.js does on an open inbox:
   follow GET /events with the session cookie and, on each task or ticket event, fetch
   /console/inbox again 100 ms later (events meanwhile join that fetch; one fetch at a
   time, and a change during one fetches once more). Then opens `--tickets` tickets (default 40) in
   logistics with the admin's demo token, one every `--interval` s, each a question the FAQ
   bot cannot answer, so each ends in a task for ana's queue. For each: delay = when the
   inbox HTML holding its row (`data-ticket="<id>"`) arrived - when its POST /tickets was
   sent, split into intake -> first task event of the ticket on the stream, and that
   event -> the page with the row. `--warmup` tickets first are not counted.
   Prints p50, p95, p99 and max (target: p99 < 1 s) and the split. Ctrl-C (SIGINT to its
   process group) stops the stack at the end, SIGKILL if it does not stop.

Nothing is downloaded. About 2 minutes with the defaults on 2 cores (seeding ~45 s, the
pages 35 s, the stack's start ~10 s, the tickets ~25 s).
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bench.inbox import cpu_seconds, drop_schema, free_port, pct, scratch_schema  # noqa: E402
from bench.loadgen import HttpError, LeanClient  # noqa: E402
from cli.embedded import wait_for_port  # noqa: E402
from stack_runner import Up  # noqa: E402 - `ticketflow up` run as the tests run it

PAGE_TARGET_MS = 50.0
INTAKE_TARGET_MS = 1000.0
DEPARTMENTS = ("logistics", "general", "returns", "billing")
PASSWORD = "bench-console-password"  # every simulated agent's (12 characters at least)
PAGE_SIZE = 50  # console.pages.PAGE_SIZE
KIND_HEADER = "x-bench-kind"  # the driver names the kind of page; the server's middleware files it so
TIMINGS_PATH = "/__bench/timings"  # answered by the middleware, never by the app
KINDS = ("inbox, default filters", "inbox, sort=due", "inbox, next page (2-5)", "ticket page")
ROW = re.compile(r'<tr data-task="[^"]+" data-ticket="([^"]+)"')
NEXT = re.compile(r'<a href="([^"]+)" rel="next">')


# --- realistic rows ----------------------------------------------------------------------------
# Shapes as a real ticket leaves them: the projection of a ticket that `ticketflow up` gathered
# (sandbox ERP, carrier and helpdesk) and the FAQ bot escalated.

FIRST = ["Mia", "Jonas", "Lea", "Finn", "Emma", "Paul", "Hannah", "Ben", "Sofia", "Elias", "Marie", "Noah",
         "Clara", "Luis", "Ida", "Felix", "Lina", "Anton", "Greta", "Oskar"]
LAST = ["Keller", "Schmidt", "Novak", "Weber", "Fischer", "Kowalski", "Meyer", "Wagner", "Becker", "Hoffmann",
        "Jansen", "Dubois", "Rossi", "Berg", "Lindqvist", "Horvat"]
PRODUCTS = [("SKU-HEADPH", "Wireless headphones", "129.00"), ("SKU-CHARGR", "USB-C charger 65 W", "34.99"),
            ("SKU-MUG2", "Ceramic mug, set of 2", "18.00"), ("SKU-KETTLE", "Electric kettle 1.7 l", "49.90"),
            ("SKU-LAMP", "Desk lamp, dimmable", "39.00"), ("SKU-BACKPK", "Commuter backpack 20 l", "79.00"),
            ("SKU-SHOE42", "Running shoes, size 42", "119.95"), ("SKU-TOWEL", "Bath towel, organic cotton", "24.50"),
            ("SKU-SPEAKR", "Bluetooth speaker", "59.00"), ("SKU-CABLE", "HDMI cable 2 m", "12.99")]
ROUTE = [("Warehouse Erfurt", "Shipping label created", "label_created"),
         ("Warehouse Erfurt", "Parcel picked up by carrier", "in_transit"),
         ("Frankfurt sorting centre", "Arrived at sorting facility", "in_transit"),
         ("Hamburg depot", "Arrived at sorting facility", "in_transit"),
         ("Hamburg depot", "Delayed: capacity shortage at sorting facility", "exception"),
         ("Berlin delivery station", "Arrived at delivery station", "in_transit"),
         ("Berlin", "Out for delivery", "out_for_delivery")]
EARLIER = ["Mug arrived chipped", "Invoice address wrong", "Charger stopped working", "Late delivery",
           "Question about returns"]
FAQ_ENTRIES = [("parcel-not-received", "The courier says the package was delivered but it is not here"),
               ("track-parcel", "Where is my parcel?"),  # a template: filled in with the order's shipment
               ("invoice", "Please send me a receipt for my order"),
               ("change-address", "Please change the address on my order"),
               ("refund-status", "When will I get my refund?"), ("damaged-item", "My item arrived damaged"),
               ("return-item", "How do I return an item?"), ("double-charge", "I was charged twice")]
QUESTIONS = {
    "logistics": [("Note from the courier", "Your courier left a note in Polish and I cannot read it, what does it "
                                            "say about my delivery slot?"),
                  ("Parcel stuck in Hamburg", "Tracking for {order} has said Hamburg depot for three days. Is it lost?"),
                  ("Deliver to my office instead", "Can the driver bring {order} to my office on Friday afternoon?")],
    "general": [("Gift note", "Order {order} is a present: can you take the prices off the packing slip?"),
                ("Account merge", "I have two accounts with different emails, please merge them.")],
    "returns": [("Wrong size", "The shoes in {order} are too small, I want to send them back for a 43."),
                ("Return label missing", "There was no return label in the box of {order}.")],
    "billing": [("Charged twice", "My card shows two payments for {order}."),
                ("VAT on invoice", "The invoice for {order} has no VAT number on it, my company needs one.")],
}


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def customer360(rng: random.Random, customer: int, order_id: str, opened: datetime) -> dict:
    cid = f"CUST-{customer:05d}"
    first, last = FIRST[customer % len(FIRST)], LAST[customer // len(FIRST) % len(LAST)]
    orders, shipments = [], []
    for k in range(rng.choice([1, 1, 2])):
        oid = order_id if k == 0 else f"ORD-{rng.randrange(10_000, 99_999)}"
        placed = opened - timedelta(days=rng.uniform(2, 8) + 30 * k)
        lines = [{"sku": sku, "description": desc, "quantity": rng.choice([1, 1, 2]), "unit_price": price}
                 for sku, desc, price in rng.sample(PRODUCTS, rng.choice([1, 2, 2, 3]))]
        total = sum(float(line["unit_price"]) * line["quantity"] for line in lines)
        tracking = f"SBX{rng.randrange(10**8, 10**9)}"
        orders.append({"id": oid, "customer_id": cid, "status": "shipped" if k == 0 else "delivered",
                       "external_status": "SHIPPED" if k == 0 else "DELIVERED", "placed_at": iso(placed),
                       "currency": "EUR", "total": f"{total:.2f}",
                       "refunded_total": "0.00" if rng.random() < 0.9 else f"{total / 4:.2f}",
                       "lines": lines, "tracking_number": tracking, "carrier": "Sandbox Express"})
        if k == 0:
            n = rng.randint(4, 6)
            scans = [{"time": iso(placed + timedelta(hours=6 + 14 * j)), "location": loc, "description": desc,
                      "status": status} for j, (loc, desc, status) in enumerate(ROUTE[:n])]
            promised = placed + timedelta(days=4)
            delay = max(0.0, (opened - promised).total_seconds() / 3600)
            shipments.append({"tracking_number": tracking, "carrier": "Sandbox Express", "status": scans[-1]["status"],
                              "events": scans, "promised_delivery": iso(promised),
                              "estimated_delivery": iso(promised + timedelta(days=2)), "delivered_at": None,
                              "delay_hours": round(delay, 1), "is_delayed": delay > 0,
                              "delay_days": int(-(-delay // 24))})
    gaps, earlier = [], []
    if rng.random() < 0.1:
        gaps.append({"system": "helpdesk", "reason": "timed out after 2.5 s", "error_type": "Unavailable"})
    else:
        earlier = [{"id": f"HD-{rng.randrange(1000, 9999)}", "customer_id": cid, "subject": subject,
                    "status": rng.choice(["solved", "closed", "open"]), "created_at": iso(opened - timedelta(days=40)),
                    "url": f"http://127.0.0.1:8103/api/v2/tickets/HD-{customer}", "ticketflow_ticket_id": None}
                   for subject in rng.sample(EARLIER, rng.choice([0, 1, 1, 2]))]
    return {"customer_id": cid,
            "customer": {"id": cid, "name": f"{first} {last}",
                         "email": f"{first.lower()}.{last.lower()}@example.com" if rng.random() < 0.8 else "",
                         "tier": "vip" if rng.random() < 0.1 else "standard",
                         "customer_since": iso(opened - timedelta(days=rng.randint(30, 1500)))},
            "orders": orders, "shipments": shipments, "external_tickets": earlier, "gaps": gaps,
            "collected_at": iso(opened + timedelta(milliseconds=80))}


def faq_context(rng: random.Random) -> dict:
    picks = rng.sample(FAQ_ENTRIES, 4)
    scores = sorted((round(rng.uniform(0.3, 0.6), 4) for _ in picks), reverse=True)
    return {"index_version": "92ea7e0a4a2cecb41798", "decision": "escalate", "confidence": scores[0] + 0.005,
            "suggestions": [{"entry_id": entry, "question": question, "score": s, "semantic_score": s,
                             "lexical_score": round(s * rng.uniform(0.2, 0.9), 4)}
                            for (entry, question), s in zip(picks, scores)],
            "answer": "Please check with your neighbours and any safe place you named. If the parcel is still missing "
                      "48 hours after it was marked delivered, reply to this message and we will open an "
                      "investigation with the carrier.", "reason": None}


def ticket_and_task(rng: random.Random, i: int, now: datetime):  # noqa: ANN201 - (TicketSnapshot, TaskSnapshot)
    from models.enums import Priority
    from models.task import TaskSnapshot
    from models.ticket import TicketSnapshot

    department = DEPARTMENTS[i % len(DEPARTMENTS)]
    ticket_id = f"{rng.getrandbits(128):032x}"
    order_id = f"ORD-{100_000 + i}"
    subject, body = rng.choice(QUESTIONS[department])
    body = body.format(order=order_id)
    opened = now - timedelta(hours=rng.uniform(0.1, 72))  # a backlog of three days
    task_at = opened + timedelta(milliseconds=130)
    priority = rng.choices(list(Priority), weights=[2, 6, 2, 1])[0]
    picture = customer360(rng, rng.randrange(4000), order_id, opened)
    faq = faq_context(rng)
    due = None if rng.random() < 0.1 else opened + timedelta(hours=rng.choice([4, 8, 8, 24]))
    sla = {"policy": {"priority": priority.value, "department": None, "tier": None,
                      "target": {"first_response": "PT8H", "resolution": "P2D"}},
           "status": "running" if due is None or due > now else "breached",
           "first_response_due": due.isoformat() if due else None,
           "resolution_due": (opened + timedelta(days=4)).isoformat(),
           "breached": ["first_response"] if due is not None and due < now else []} if due else {}
    conversation = [{"id": f"{ticket_id}-opening", "direction": "in", "author": picture["customer_id"], "text": body,
                     "at": opened}]
    if rng.random() < 0.3:
        conversation.append({"id": f"{ticket_id}-m2", "direction": "in", "author": picture["customer_id"],
                             "text": "Any news on this? I have been waiting for a while.",
                             "at": opened + timedelta(hours=rng.uniform(1, 20))})
    n_orders, n_ships = len(picture["orders"]), len(picture["shipments"])
    timeline = [
        {"at": opened, "kind": "opened", "detail": "via web", "data": {"department": department,
                                                                      "priority": priority.value}},
        {"at": opened + timedelta(milliseconds=80), "kind": "context_gathered",
         "detail": f"{n_orders} orders, {n_ships} shipments, {len(picture['external_tickets'])} earlier tickets",
         "data": {"gaps": len(picture["gaps"])}},
        {"at": opened + timedelta(milliseconds=80), "kind": "sla_started",
         "detail": "first_response: 8h of business time", "data": {"target": "first_response"}},
        {"at": opened + timedelta(milliseconds=80), "kind": "sla_started",
         "detail": "resolution: 48h of business time", "data": {"target": "resolution"}},
        {"at": task_at, "kind": "faq_no_answer",
         "detail": f"{faq['suggestions'][0]['entry_id']}: confidence {faq['confidence']} vs threshold 0.9",
         "data": {"entry_id": faq["suggestions"][0]["entry_id"], "confidence": faq["confidence"], "threshold": 0.9,
                  "index_version": faq["index_version"], "decision": "escalate"}},
        {"at": task_at, "kind": "status", "detail": "new -> awaiting_agent", "data": {}},
        {"at": task_at, "kind": "task_created", "detail": f"handle_ticket in queue {department}",
         "data": {"task_id": f"{ticket_id}-t1", "priority": priority.value}},
    ]
    ticket = TicketSnapshot(
        ticket_id=ticket_id, workflow_id=f"ticket-{ticket_id}", customer_id=picture["customer_id"], subject=subject,
        body=body, channel="web", order_id=order_id, priority=priority, department=department, external_ref=None,
        status="awaiting_agent", opened_at=opened, updated_at=task_at, revision=7, conversation=conversation,
        timeline=timeline, context={"customer360": picture, "sla": sla, "faq": faq} if sla else
        {"customer360": picture, "faq": faq})
    task = TaskSnapshot(
        task_id=f"{ticket_id}-t1", ticket_id=ticket_id, workflow_id=f"ticket-{ticket_id}", queue=department,
        priority=priority, created_at=task_at, revision=1, language=rng.choice(["en", "en", "de"]),
        skills=rng.sample(["carriers", "refunds", "german"], k=rng.choice([0, 0, 1])),
        customer_tier=picture["customer"]["tier"], due_at=due,
        context={"subject": subject, "order_id": order_id, "customer360": picture, "faq": faq},
        routing="Stays queued: 12 agents could handle it, but none is free (3 away, 9 at capacity).")
    return ticket, task


def seed(db, n_tasks: int, rng: random.Random) -> dict[str, list[str]]:  # noqa: ANN001 - models.db.Database
    """Tickets with one open task each, through the projection, in a few large transactions.
    Returns the ticket ids of each department."""
    from models import readmodel

    now = datetime.now(UTC)
    by_department: dict[str, list[str]] = defaultdict(list)
    for start in range(0, n_tasks, 1000):
        rows = [ticket_and_task(rng, i, now) for i in range(start, min(n_tasks, start + 1000))]

        def write(session, rows=rows) -> None:  # noqa: ANN001
            for ticket, task in rows:
                readmodel.upsert_ticket(session, ticket)
                readmodel.upsert_task(session, task)

        db.call(write)
        for ticket, _ in rows:
            by_department[ticket.department].append(ticket.ticket_id)
    return by_department


def seed_people(db, n_agents: int) -> list[tuple[str, list[str]]]:  # noqa: ANN001
    """Departments, the demo knowledge base (so the suggestions resolve) and agents: users
    with a password and an agent role in one department (every fifth in two), and a routing
    profile. Returns (user, departments)."""
    from faq.knowledge_base import seed_demo_kb
    from models.agent import Agent
    from models.db import utcnow
    from policies import people
    from policies.store import add_department, create_user, grant

    for department in DEPARTMENTS:
        db.call(add_department, "bench", department)
    seed_demo_kb(db, publish_index=False)  # the pages read entries, never the index
    agents = []
    for k in range(n_agents):
        departments = [DEPARTMENTS[k % len(DEPARTMENTS)]]
        if k % 5 == 0:
            departments.append(DEPARTMENTS[(k + 1) % len(DEPARTMENTS)])
        user = f"agent-{k:02d}"

        def setup(session, user=user, departments=departments) -> None:  # noqa: ANN001
            create_user(session, "bench", user)
            for department in departments:
                grant(session, "bench", user, "agent", department)
            people.set_password(session, "bench", user, PASSWORD)
            session.add(Agent(id=user, queues=departments, skills=["carriers"], languages=["en", "de"], capacity=5,
                              presence="online", updated_at=utcnow()))

        db.call(setup)
        agents.append((user, departments))
    return agents


# --- the server, timed by a middleware -----------------------------------------------------------


class ServerTiming:
    """ASGI middleware: how long each request took from the app being called to the last
    byte of its response, filed under the kind the driver named in `x-bench-kind`.
    GET /__bench/timings answers what was filed (`?reset=1`: and forgets it)."""

    def __init__(self, app) -> None:  # noqa: ANN001
        self.app = app
        self.timings: dict[str, list[float]] = defaultdict(list)

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == TIMINGS_PATH:
            await self._answer(scope, send)
            return
        kind = dict(scope["headers"]).get(KIND_HEADER.encode(), b"other").decode()
        start = time.perf_counter()
        done = False

        async def timed_send(message) -> None:  # noqa: ANN001
            nonlocal done
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body") and not done:
                done = True
                self.timings[kind].append((time.perf_counter() - start) * 1000)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            if not done:
                self.timings[kind + " (no response)"].append((time.perf_counter() - start) * 1000)

    async def _answer(self, scope, send) -> None:  # noqa: ANN001
        body = json.dumps(self.timings).encode()
        if b"reset=1" in scope.get("query_string", b""):
            self.timings = defaultdict(list)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def serve(port: int, db_url: str) -> None:
    """The API as `ticketflow api` serves it (one uvicorn process), with no Temporal behind it."""
    import uvicorn

    from api.main import SHUTDOWN_GRACE_SECONDS, create_app
    from models.db import Database
    from settings import Settings

    settings = Settings(_env_file=None, database_url=db_url, payload_encryption=False,
                        temporal_address=f"127.0.0.1:{free_port()}")  # nothing listens there; pages never ask
    app = create_app(settings, db=Database(db_url))
    uvicorn.run(ServerTiming(app), host="127.0.0.1", port=port, log_level="warning",
                timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS)


def session_cookie(response: httpx.Response) -> str:
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name.strip() == "tf_session":
            return rest.split(";", 1)[0]
    raise RuntimeError(f"POST /auth/session set no tf_session cookie: {response.status_code} {response.text[:200]}")


async def sign_in(http: httpx.AsyncClient, user: str, password: str) -> str:
    r = await http.post("/auth/session", json={"user": user, "password": password})
    if r.status_code != 200:
        raise RuntimeError(f"sign-in of {user}: {r.status_code} {r.text[:200]}")
    return session_cookie(r)


# --- measurement 1: the pages ------------------------------------------------------------------


class Agents:
    """Simulated agents, each with its own session and keep-alive connection, loading pages
    with think time between them."""

    def __init__(self, port: int, sessions: list[tuple[str, list[str], str]], tickets: dict[str, list[str]],
                 think: tuple[float, float], rng: random.Random) -> None:
        self.port, self.sessions, self.tickets, self.think, self.rng = port, sessions, tickets, think, rng
        self.client_ms: dict[str, list[float]] = defaultdict(list)
        self.failures: list[str] = []
        self.incomplete = 0  # pages answered 200 without what they must show

    def _next(self, state: dict, departments: list[str]) -> tuple[str, str]:
        r = self.rng.random()
        if r < 0.30:
            return KINDS[3], f"/console/tickets/{self.rng.choice(self.tickets[self.rng.choice(departments)])}"
        if r < 0.55 and state["next"] and state["depth"] < 5:
            return KINDS[2], state["next"]
        if r < 0.75:
            return KINDS[1], "/console/inbox?sort=due"
        return KINDS[0], "/console/inbox"

    async def _one(self, user: str, departments: list[str], cookie: str, until: float, record: list[bool]) -> None:
        state = {"next": None, "depth": 0}
        async with LeanClient("127.0.0.1", self.port, headers={"Cookie": f"tf_session={cookie}"}) as http:
            await asyncio.sleep(self.rng.uniform(0, self.think[1]))  # agents do not all start at once
            while time.monotonic() < until:
                kind, path = self._next(state, departments)
                t0 = time.perf_counter()
                try:
                    r = await http.request("GET", path, b"", {KIND_HEADER: kind})
                except HttpError as exc:
                    self.failures.append(f"{user}: {exc}")
                    continue
                elapsed = (time.perf_counter() - t0) * 1000
                if r.status_code != 200:
                    self.failures.append(f"{user}: GET {path} -> {r.status_code} {r.text[:200]}")
                else:
                    if record[0]:
                        self.client_ms[kind].append(elapsed)
                    page = r.text
                    if kind == KINDS[3]:
                        self.incomplete += 'class="shipment' not in page or 'class="suggestion' not in page
                    else:
                        self.incomplete += len(ROW.findall(page)) != PAGE_SIZE
                        link = NEXT.search(page)
                        state["next"] = html.unescape(link.group(1)) if link else None
                        state["depth"] = state["depth"] + 1 if kind == KINDS[2] else 1
                await asyncio.sleep(self.rng.uniform(*self.think))

    async def run(self, warmup: float, duration: float, on_measuring) -> None:  # noqa: ANN001
        record = [False]
        until = time.monotonic() + warmup + duration
        runs = [asyncio.create_task(self._one(user, departments, cookie, until, record))
                for user, departments, cookie in self.sessions]
        await asyncio.sleep(warmup)
        await on_measuring()
        record[0] = True
        await asyncio.gather(*runs)


def describe_db(url: str) -> str:
    return "PostgreSQL" if url.startswith("postgresql") else "SQLite file, WAL"


async def measure_pages(args: argparse.Namespace, work: Path) -> bool:
    from migrations import upgrade
    from models.db import Database

    rng = random.Random(args.seed)
    schema = None
    if args.database_url:
        db_url, schema = scratch_schema(args.database_url)
    else:
        db_url = f"sqlite:///{work / 'ticketflow.db'}"
    server = None
    try:
        t0 = time.perf_counter()
        upgrade(db_url)
        db = Database(db_url)
        agents = seed_people(db, args.agents)
        people_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        tickets = seed(db, args.tasks, rng)
        seeded = time.perf_counter() - t0
        db.dispose()
        print(f"seeded {args.tasks} tickets with an open task each over {len(DEPARTMENTS)} departments in "
              f"{seeded:.1f} s ({describe_db(db_url)}); {args.agents} agents with passwords in {people_s:.1f} s")

        port = free_port()
        log = work / "api.log"
        with log.open("wb") as out:
            server = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve", str(port),
                                       "--serve-database", db_url], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL)
        try:
            wait_for_port("127.0.0.1", port, 60, server)
        except Exception:
            print(log.read_text()[-3000:])
            raise
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            t0 = time.perf_counter()
            cookies = await asyncio.gather(*(sign_in(http, user, PASSWORD) for user, _ in agents))
            signed = time.perf_counter() - t0
            sessions = [(user, departments, cookie) for (user, departments), cookie in zip(agents, cookies)]
            print(f"{len(sessions)} agents signed in over HTTP (POST /auth/session) in {signed:.1f} s")
            driver = Agents(port, sessions, tickets, (args.think_min, args.think_max), rng)
            cpu = {}

            async def start_measuring() -> None:
                await http.get(TIMINGS_PATH, params={"reset": 1})
                cpu["before"] = cpu_seconds(server.pid)

            load_start = os.getloadavg()
            await driver.run(args.warmup_seconds, args.duration, start_measuring)
            cpu_after = cpu_seconds(server.pid)
            timings = (await http.get(TIMINGS_PATH)).json()
        load_end = os.getloadavg()

        served = sum(len(timings.get(k, [])) for k in KINDS)
        print(f"{args.agents} agents, think {args.think_min:g}-{args.think_max:g} s, {args.duration:.0f} s measured "
              f"after {args.warmup_seconds:.0f} s warm-up: {served} pages, {served / args.duration:.1f} pages/s; "
              f"API in a process of its own (uvicorn, one event loop), the agents in this one")
        print("server time (ASGI middleware: app called -> last byte of the response), ms; client latency, ms")
        print(f"  {'page':<24} {'count':>6} {'p50':>7} {'p99':>7} {'max':>7}   {'client p50':>10} {'p99':>7} "
              f"{'max':>7}   p99 < {PAGE_TARGET_MS:.0f} ms")
        met = True
        everything: list[float] = []
        for kind in KINDS:
            server_ms, client_ms = timings.get(kind, []), driver.client_ms.get(kind, [])
            if not server_ms:
                print(f"  {kind:<24} no pages")
                met = False
                continue
            everything += server_ms
            ok = pct(server_ms, 0.99) < PAGE_TARGET_MS
            met &= ok
            print(f"  {kind:<24} {len(server_ms):6d} {pct(server_ms, .5):7.1f} {pct(server_ms, .99):7.1f} "
                  f"{max(server_ms):7.1f}   {pct(client_ms, .5):10.1f} {pct(client_ms, .99):7.1f} "
                  f"{max(client_ms):7.1f}   {'met' if ok else 'NOT met'}")
        if everything:
            print(f"  {'all pages':<24} {len(everything):6d} {pct(everything, .5):7.1f} {pct(everything, .99):7.1f} "
                  f"{max(everything):7.1f}")
        others = {k: len(v) for k, v in timings.items() if k not in KINDS}
        if cpu.get("before") is not None and cpu_after is not None and served:
            print(f"server CPU per page: {(cpu_after - cpu['before']) * 1000 / served:.1f} ms "
                  f"({(cpu_after - cpu['before']) / args.duration * 100:.0f}% of one core over the run)")
        print(f"failures: {len(driver.failures)}; pages missing rows, shipment or suggestions: {driver.incomplete}"
              + (f"; other requests: {others}" if others else ""))
        for failure in driver.failures[:3]:
            print(f"  {failure}")
        print(f"machine: {os.cpu_count()} CPUs; load average {load_start[0]:.2f} at the start, {load_end[0]:.2f} at "
              f"the end (the API, the agents and anything else running share them)")
        print(f"target: server p99 < {PAGE_TARGET_MS:.0f} ms for every page: {'met' if met else 'NOT met'}")
        return met and not driver.failures
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        if schema:
            drop_schema(args.database_url, schema)


# --- measurement 2: intake to the inbox row -------------------------------------------------------

class OpenInbox:
    """An agent's open inbox as console.js keeps it: follows /events and, on a task or
    ticket event, fetches the page again 100 ms later (events meanwhile join that refresh:
    at most one waits at a time), marked `X-Console-Refresh`; one fetch at a time, and a
    change during one fetches once more. Remembers, by the monotonic clock of this process,
    when each ticket's first task event arrived and when the first page holding its row did."""

    DEBOUNCE = 0.1  # console.js: schedule(delay = 100)

    def __init__(self, base_url: str, cookie: str) -> None:
        headers = {"Cookie": f"tf_session={cookie}"}
        self.pages = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30)
        self.stream = httpx.AsyncClient(base_url=base_url, headers={**headers, "Accept": "text/event-stream"},
                                        timeout=httpx.Timeout(30, read=None))
        self.first_task_event: dict[str, float] = {}
        self.first_row: dict[str, float] = {}
        self.fetch_ms: list[float] = []
        self.rows_on_page = 0
        self.open = asyncio.Event()
        self._refreshing = self._again = False
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task] = set()
        self.errors: list[str] = []

    def schedule(self, delay: float = DEBOUNCE) -> None:
        if self._timer is not None:  # at most one refresh waits at a time
            return
        self._timer = asyncio.get_running_loop().call_later(delay, self._start_refresh)

    def _start_refresh(self) -> None:
        self._timer = None
        task = asyncio.create_task(self.refresh())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def refresh(self) -> None:
        if self._refreshing:
            self._again = True
            return
        self._refreshing = True
        try:
            t0 = time.perf_counter()
            r = await self.pages.get("/console/inbox", headers={"X-Console-Refresh": "1"})  # the page's own refresh
            arrived = time.perf_counter()
            if r.status_code != 200:
                self.errors.append(f"GET /console/inbox -> {r.status_code} {r.text[:200]}")
                return
            self.fetch_ms.append((arrived - t0) * 1000)
            rows = ROW.findall(r.text)
            self.rows_on_page = len(rows)
            for ticket_id in rows:
                self.first_row.setdefault(ticket_id, arrived)
        except httpx.HTTPError as exc:
            self.errors.append(f"GET /console/inbox: {exc!r}")
        finally:
            self._refreshing = False
            if self._again:
                self._again = False
                self.schedule()

    async def follow(self) -> None:
        async with self.stream.stream("GET", "/events") as r:
            if r.status_code != 200:
                await r.aread()
                raise RuntimeError(f"GET /events -> {r.status_code} {r.text[:200]}")
            self.open.set()
            self.schedule()  # what changed between the page's rendering and the stream's start
            kind, data = None, []
            async for line in r.aiter_lines():
                if line:
                    field, _, value = line.partition(":")
                    if field == "event":
                        kind = value.strip()
                    elif field == "data":
                        data.append(value[1:] if value.startswith(" ") else value)
                    continue
                if kind in ("task", "ticket") and data:
                    at = time.perf_counter()
                    change = json.loads("\n".join(data))
                    if kind == "task":
                        self.first_task_event.setdefault(change["ticket_id"], at)
                    self.schedule()
                kind, data = None, []

    async def aclose(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        await self.pages.aclose()
        await self.stream.aclose()


POLISH_NOTE = [
    "Your courier left a note in Polish and I cannot read it, what does it say about my delivery slot?",
    "There is a card from your driver in my letterbox, written in Polish. Which delivery slot did he pick for me?",
    "The delivery note your courier left is in Polish only. Can you tell me what time window it gives?",
    "I found a handwritten Polish note from the courier on my door. Does it mean he comes back tomorrow morning?",
    "Can someone translate the courier's note? It is in Polish and seems to mention my delivery slot.",
]


def intake_payload(i: int) -> dict:
    return {"customer_id": "CUST-0001", "order_id": "ORD-1001", "department": "logistics",
            "subject": f"Courier's note in Polish ({i})", "body": f"{POLISH_NOTE[i % len(POLISH_NOTE)]} (#{i})"}


async def measure_intake(args: argparse.Namespace, work: Path) -> bool:
    (work / "stack").mkdir()
    up = Up(work / "stack" / "data", work / "stack" / "up.log")
    t0 = time.perf_counter()
    inbox = None
    follower = None
    try:
        await up.start()
        started = time.perf_counter() - t0
        tokens, passwords = up.tokens(), up.passwords()
        async with httpx.AsyncClient(base_url=up.url, timeout=30) as http:
            cookie = await sign_in(http, "ana", passwords["ana"])
        inbox = OpenInbox(up.url, cookie)
        follower = asyncio.create_task(inbox.follow())
        await asyncio.wait_for(inbox.open.wait(), 30)
        await asyncio.sleep(1.0)  # the first fetch, after the stream opened
        room = PAGE_SIZE - inbox.rows_on_page
        if args.warmup + args.tickets > room:
            raise SystemExit(f"ana's inbox (page 1, oldest first) has room for {room} more rows: lower --tickets "
                             f"({args.tickets}) + --warmup ({args.warmup}); newer rows would be on a later page")
        load_start = os.getloadavg()
        print(f"`ticketflow up` ready in {started:.1f} s; ana (logistics) signed in, following /events, her inbox "
              f"showing {inbox.rows_on_page} rows")

        sent: dict[str, float] = {}
        order: list[str] = []
        failures: list[str] = []
        async with httpx.AsyncClient(base_url=up.url, timeout=30,
                                     headers={"Authorization": f"Bearer {tokens['admin']}"}) as admin:
            async def open_ticket(i: int, measured: bool) -> None:
                t_sent = time.perf_counter()
                r = await admin.post("/tickets", json=intake_payload(i))
                if r.status_code != 201:
                    failures.append(f"POST /tickets -> {r.status_code} {r.text[:200]}")
                    return
                ticket_id = r.json()["id"]
                sent[ticket_id] = t_sent
                if measured:
                    order.append(ticket_id)

            async def all_in_inbox(ids: list[str], timeout: float) -> None:
                deadline = time.monotonic() + timeout
                while any(t not in inbox.first_row for t in ids) and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)

            warm = []
            for i in range(args.warmup):  # not counted: the first tickets after a start warm the worker
                await open_ticket(i, False)
            warm = list(sent)
            await all_in_inbox(warm, 60)

            start = time.perf_counter()
            posts = []
            for k in range(args.tickets):
                delay = start + k * args.interval - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                posts.append(asyncio.create_task(open_ticket(args.warmup + k, True)))
            await asyncio.gather(*posts)
            await all_in_inbox(order, args.ticket_timeout)
            # a refresh for one of a ticket's ticket events can find its row before its task event arrives
            deadline = time.monotonic() + 5
            while any(t not in inbox.first_task_event for t in order) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
        load_end = os.getloadavg()

        total, to_event, to_page, missing = [], [], [], []
        for ticket_id in order:
            if ticket_id not in inbox.first_row:
                missing.append(ticket_id)
                continue
            total.append((inbox.first_row[ticket_id] - sent[ticket_id]) * 1000)
            if ticket_id in inbox.first_task_event:
                to_event.append((inbox.first_task_event[ticket_id] - sent[ticket_id]) * 1000)
                to_page.append((inbox.first_row[ticket_id] - inbox.first_task_event[ticket_id]) * 1000)
        print(f"{len(order)} tickets (logistics, a question the FAQ bot escalates), one every {args.interval:g} s "
              f"after {args.warmup} warm-up; ana's inbox refetched {len(inbox.fetch_ms)} times")
        if total:
            print(f"  POST /tickets -> row in the inbox page, ms:  p50 {pct(total, .5):6.0f}  p95 {pct(total, .95):6.0f}"
                  f"  p99 {pct(total, .99):6.0f}  max {max(total):6.0f}")
        if to_event:
            print(f"    POST -> first task event on /events:     p50 {pct(to_event, .5):6.0f}  "
                  f"p95 {pct(to_event, .95):6.0f}  p99 {pct(to_event, .99):6.0f}  max {max(to_event):6.0f}")
            print(f"    task event -> page with the row:          p50 {pct(to_page, .5):6.0f}  "
                  f"p95 {pct(to_page, .95):6.0f}  p99 {pct(to_page, .99):6.0f}  max {max(to_page):6.0f}  "
                  f"min {min(to_page):.0f}")
            early = sum(d < 0 for d in to_page)
            print(f"    the row was on a page before the ticket's task event arrived for {early} of {len(to_page)}: "
                  "a refresh for one of its ticket events (the feed sends both kinds) found it first")
        if inbox.fetch_ms:
            print(f"    one GET /console/inbox (client):          p50 {pct(inbox.fetch_ms, .5):6.0f}  "
                  f"p99 {pct(inbox.fetch_ms, .99):6.0f}  max {max(inbox.fetch_ms):6.0f}   "
                  f"(+ the {OpenInbox.DEBOUNCE * 1000:.0f} ms console.js waits before each)")
        print(f"  failures: {len(failures)} POSTs, {len(inbox.errors)} page fetches; no row within "
              f"{args.ticket_timeout:.0f} s: {len(missing)}; no task event seen: "
              f"{sum(t not in inbox.first_task_event for t in order)}")
        for problem in (failures + inbox.errors)[:3]:
            print(f"    {problem}")
        print(f"  machine: {os.cpu_count()} CPUs; load average {load_start[0]:.2f} before the tickets, "
              f"{load_end[0]:.2f} after (the whole stack and this process share them)")
        p99 = pct(total, .99) if total else float("inf")
        met = bool(total) and not missing and p99 < INTAKE_TARGET_MS
        print(f"target: intake -> inbox row p99 < {INTAKE_TARGET_MS / 1000:.0f} s: {'met' if met else 'NOT met'} "
              f"({p99:.0f} ms{', rows missing' if missing else ''})")
        return met
    except Exception:
        print(up.output())
        raise
    finally:
        if follower is not None:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
        if inbox is not None:
            await inbox.aclose()
        print(f"`ticketflow up` {await up.stop()}")


# --- main ------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--skip-pages", action="store_true", help="skip measurement 1, the pages' server time")
    parser.add_argument("--skip-intake", action="store_true", help="skip measurement 2, intake to inbox row")
    pages = parser.add_argument_group("measurement 1: page server time")
    pages.add_argument("--tasks", type=int, default=10_000, help="open tasks (each with its ticket) to seed")
    pages.add_argument("--agents", type=int, default=50, help="simulated agents loading pages at once")
    pages.add_argument("--duration", type=float, default=30.0, help="seconds measured")
    pages.add_argument("--warmup-seconds", type=float, default=5.0, help="seconds of load before measuring")
    pages.add_argument("--think-min", type=float, default=0.2, help="an agent's least think time between pages, s")
    pages.add_argument("--think-max", type=float, default=1.0, help="an agent's longest think time between pages, s")
    pages.add_argument("--seed", type=int, default=7, help="seed of the generated rows and the agents' choices")
    pages.add_argument("--database-url", metavar="URL",
                       help="a PostgreSQL database to seed instead of a SQLite file, e.g. "
                            "postgresql+psycopg://postgres@127.0.0.1:5432/test; the benchmark works in a schema "
                            "of its own there and drops it at the end")
    intake = parser.add_argument_group("measurement 2: intake to inbox row (the whole stack, `ticketflow up`)")
    intake.add_argument("--tickets", type=int, default=40, help="tickets measured")
    intake.add_argument("--interval", type=float, default=0.5, help="seconds between two tickets (steady rate)")
    intake.add_argument("--warmup", type=int, default=2, help="tickets opened first and not counted")
    intake.add_argument("--ticket-timeout", type=float, default=60.0,
                        help="seconds after the last ticket to wait for rows still missing")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (database, logs)")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--serve-database", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 0 <= args.think_min <= args.think_max:
        parser.error("--think-min must be between 0 and --think-max")
    return args


async def main(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="ticketflow-bench-console-"))
    began = time.perf_counter()
    results = {}
    try:
        if not args.skip_pages:
            print("== 1. page server time ==")
            results["pages"] = await measure_pages(args, work)
        if not args.skip_intake:
            print("== 2. intake to inbox row ==")
            results["intake"] = await measure_intake(args, work)
    finally:
        if args.keep:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"done in {time.perf_counter() - began:.0f} s: " + ", ".join(
        f"{name} {'met' if ok else 'NOT met'}" for name, ok in results.items()))
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.serve:
        serve(arguments.serve, arguments.serve_database)
    else:
        sys.exit(asyncio.run(main(arguments)))
