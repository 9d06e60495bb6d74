"""Authorization benchmark: what a decision and a request's whole authorization cost.

In one run, on a SQLite file (or with `--database-url`, a scratch schema in PostgreSQL):
1. seeds an organisation through the access store: `--departments` departments, agents in
   one or two of them, supervisors of one department or of all, customers, an auditor;
2. on a freshly loaded policy, as every process holds it after each policy change, times
   the first question about each department (Casbin builds that department's role links
   then), and then `Authorizer.allowed` and `Authorizer.decide` one call at a time over a
   request mix like the API's (customers on their own and others' tickets; agents reading
   tickets, working tasks and refunding amounts in and outside their departments;
   supervisors reassigning, refunding and reading agents): cold, the first call for each
   distinct request (Casbin's enforce), and warm, the mix again (the decision cache).
   `reach`, which every list request asks and which is not cached, is timed too; the
   timer's own cost is the floor;
3. times the API's whole authorization path per request: the real app (`create_app`, the
   default 1 s policy refresh and 2 s token cache, the authorizer of step 2) gets two
   otherwise identical endpoints, one taking `current_principal` + `get_authorizer` and
   calling `require`, one without, called in turn in this process through ASGI (no
   sockets, no Temporal) with the same bearer tokens and query strings, twice: first with
   decisions mostly cold (tickets of many owners), then the same requests again. The
   difference between the endpoints is what authorization adds.

Prints p50/p99 per call in microseconds and per request, and the ratio of the two
endpoints. With the defaults a run takes 30-50 s.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastapi import FastAPI  # noqa: E402

from api.deps import AuthorizerDep, CurrentUser, require  # noqa: E402
from api.main import create_app  # noqa: E402
from bench.inbox import drop_schema, free_port, pct, scratch_schema  # noqa: E402
from migrations import upgrade  # noqa: E402
from models.auth import EVERY_DEPARTMENT, Principal  # noqa: E402
from models.db import Database  # noqa: E402
from policies import Authorizer, Resource  # noqa: E402
from policies.store import add_department, create_user, grant, issue_token  # noqa: E402
from settings import Settings  # noqa: E402

ACTOR = "bench"
AMOUNTS = [5, 19.9, 45, 50, 60, 120, 300, 499, 750]
Request = tuple[Principal, str, Resource]


class Organisation:
    """Who holds which roles where, as seeded."""

    def __init__(self, departments: int, agents: int, supervisors: int, customers: int, rng: random.Random) -> None:
        self.departments = [f"dept-{i}" for i in range(departments)]
        self.agents = {f"agent-{i}": rng.sample(self.departments, k=rng.choice([1, 1, 2])) for i in range(agents)}
        # most supervisors steer one department; a few (heads of support) all of them
        self.supervisors = {f"supervisor-{i}": [EVERY_DEPARTMENT] if i % 5 == 0 else [rng.choice(self.departments)]
                            for i in range(supervisors)}
        self.customers = [f"customer-{i}" for i in range(customers)]
        # those who send requests to the API in part 2
        self.signed_in = {"customers": rng.sample(self.customers, 40),
                          "staff": list(self.agents)[:40] + list(self.supervisors)}
        self.tokens: dict[str, str] = {}

    def seed(self, session: Any) -> None:
        """Everything in one transaction: thousands of users, one policy version, the
        tokens of those who send requests to the API."""
        for department in self.departments:
            add_department(session, ACTOR, department)
        members = [(self.agents, "agent"), (self.supervisors, "supervisor"),
                   ({c: [EVERY_DEPARTMENT] for c in self.customers}, "customer"), ({"auditor": [EVERY_DEPARTMENT]}, "auditor")]
        for people, role in members:
            for user, departments in people.items():
                create_user(session, ACTOR, user)
                for department in departments:
                    grant(session, ACTOR, user, role, department)
        for user in self.signed_in["customers"] + self.signed_in["staff"]:
            self.tokens[user], _ = issue_token(session, ACTOR, user)


def request_mix(org: Organisation, n: int, rng: random.Random) -> list[Request]:
    """What the API and the refund activity ask, in the proportions of a working day."""
    agents, supervisors = list(org.agents), list(org.supervisors)

    def somewhere(home: list[str], inside: float) -> str:
        held = [d for d in home if d != EVERY_DEPARTMENT]
        return rng.choice(held) if held and rng.random() < inside else rng.choice(org.departments)

    def customer() -> Request:
        me = rng.choice(org.customers)
        owner = me if rng.random() < 0.9 else rng.choice(org.customers)
        action = rng.choice(["read", "read", "read", "message", "create"])
        return Principal(name=me), action, Resource("ticket", department=rng.choice(org.departments), owner=owner)

    def agent() -> Request:
        me = rng.choice(agents)
        home = org.agents[me]
        kind = rng.random()
        if kind < 0.4:
            assignees = (me,) if rng.random() < 0.1 else ()
            return Principal(name=me), "read", Resource("ticket", department=somewhere(home, 0.8),
                                                       owner=rng.choice(org.customers), assignees=assignees)
        if kind < 0.85:
            action = rng.choice(["read", "claim", "note", "complete", "release", "transfer"])
            return Principal(name=me), action, Resource("task", department=somewhere(home, 0.9))
        return Principal(name=me), "refund", Resource("order", department=somewhere(home, 0.95),
                                                      amount=rng.choice(AMOUNTS))

    def supervisor() -> Request:
        me = rng.choice(supervisors)
        home = org.supervisors[me]
        kind = rng.random()
        if kind < 0.4:
            return Principal(name=me), "reassign", Resource("task", department=somewhere(home, 0.9))
        if kind < 0.7:
            return Principal(name=me), "refund", Resource("order", department=somewhere(home, 0.9),
                                                          amount=rng.choice(AMOUNTS))
        return Principal(name=me), rng.choice(["read", "write"]), Resource("agent", department=somewhere(home, 0.9))

    makers: list[Callable[[], Request]] = [customer] * 40 + [agent] * 45 + [supervisor] * 15
    return [rng.choice(makers)() for _ in range(n)]


def timed(calls: list[Callable[[], Any]]) -> list[float]:
    """Microseconds per call, one call at a time."""
    clock = time.perf_counter_ns
    out = []
    for call in calls:
        t0 = clock()
        call()
        out.append((clock() - t0) / 1000)
    return out


def row(name: str, micros: list[float], note: str = "") -> str:
    return (f"{name:<38} {len(micros):>8} {pct(micros, .5):>9.1f} {pct(micros, .99):>9.1f} "
            f"{sum(micros) / len(micros):>9.1f}  {note}")


def decisions(db: Database, org: Organisation, args: argparse.Namespace, rng: random.Random) -> Authorizer:
    mix = request_mix(org, args.requests, rng)
    distinct = list(dict.fromkeys((who.name, action, res) for who, action, res in mix))
    requests = [(Principal(name=name), action, res) for name, action, res in distinct]
    print(f"\n1. decisions: {len(requests)} distinct requests from a mix of {len(mix)} "
          f"({len(org.agents)} agents, {len(org.supervisors)} supervisors, {len(org.customers)} customers, "
          f"{len(org.departments)} departments)")
    print(f"{'call':<38} {'calls':>8} {'p50 µs':>9} {'p99 µs':>9} {'mean µs':>9}")
    print(row("timer floor (an empty call)", timed([lambda: None] * len(mix))))
    authorizer = Authorizer.from_database(db)
    # Casbin builds a department's role links on the first question about it (every
    # membership held in `*`, customers' too, is copied in): one auditor asks about each.
    auditor = Principal(name="auditor")
    firsts = [lambda d=d: authorizer.allowed(auditor, "read", Resource("task", department=d))
              for d in [EVERY_DEPARTMENT, *org.departments]]
    first = timed(firsts)
    print(row("first question about a department", first,
              f"once per department after each policy load ({statistics.mean(first) / 1e6:.2f} s each)"))
    # Cold: the first call for each distinct request (Casbin's enforce), every other one
    # through each method so both meet users the same way; warm: the mix again, from the cache.
    cold: dict[str, list[tuple[float, bool]]] = {"allowed": [], "decide": []}
    for i, request in enumerate(requests):
        method = "allowed" if i % 2 else "decide"
        ask = getattr(authorizer, method)
        t0 = time.perf_counter_ns()
        ask(*request)
        cold[method].append(((time.perf_counter_ns() - t0) / 1000, authorizer.allowed(*request)))
    for method, calls in cold.items():
        refused = sum(1 for _, ok in calls if not ok)
        print(row(f"{method}, cold", [t for t, _ in calls], f"{len(calls) - refused} allowed, {refused} refused"))
        print(row(f"{method}, cold, the allowed ones", [t for t, ok in calls if ok]))
        print(row(f"{method}, cold, the refused ones", [t for t, ok in calls if not ok],
                  "every department the user holds a role in is tried"))
    for method in ("allowed", "decide"):
        ask = getattr(authorizer, method)
        print(row(f"{method}, warm", timed([lambda r=r: ask(*r) for r in mix] * args.warm_rounds),
                  "the decision cache"))
    lists = [(who, action, res.kind) for who, action, res in mix if action == "read"]
    print(row("reach (every list request, uncached)", timed([lambda r=r: authorizer.reach(*r) for r in lists])))
    return authorizer


def asgi_get(app: FastAPI, path: str, query: str, token: str) -> Callable[[], Any]:
    """One GET through the app's ASGI interface, as a server would hand it over."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
             "headers": [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80)}

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def call() -> int:
        status = 0

        async def send(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(dict(scope), receive, send)
        return status

    return call


def bench_app(db_url: str, authorizer: Authorizer) -> FastAPI:
    # Nothing listens on that port, and no payload keys: these endpoints never reach Temporal.
    settings = Settings(database_url=db_url, temporal_address=f"127.0.0.1:{free_port()}", payload_encryption=False)
    app = create_app(settings)
    # The process's authorizer as part 1 left it, every department asked about already: the
    # first questions after a load are counted there, not here.
    app.state.authorizer = authorizer

    @app.get("/bench/with-auth")
    async def with_auth(user: CurrentUser, authorizer: AuthorizerDep, department: str, owner: str) -> dict:
        require(authorizer, user, "read", Resource("ticket", department=department, owner=owner))
        return {"department": department, "owner": owner}

    @app.get("/bench/without-auth")
    async def without_auth(department: str, owner: str) -> dict:
        return {"department": department, "owner": owner}

    return app


async def in_turn(pairs: list[tuple[Callable, Callable]]) -> tuple[list[float], list[float]]:
    """Each request to both endpoints, one after the other; microseconds per request."""
    with_lat: list[float] = []
    without_lat: list[float] = []
    clock = time.perf_counter_ns
    for i, (with_auth, without) in enumerate(pairs):
        # alternate which goes first, so neither always follows the other's garbage
        for call, out in ((with_auth, with_lat), (without, without_lat))[:: 1 if i % 2 else -1]:
            t0 = clock()
            status = await call()
            out.append((clock() - t0) / 1000)
            assert status == 200, status
    return with_lat, without_lat


async def requests_through_the_api(db: Database, org: Organisation, authorizer: Authorizer,
                                   args: argparse.Namespace, rng: random.Random) -> None:
    """Requests every role may make: customers read their own tickets, agents and supervisors
    those of a department they hold."""
    homes = {**org.agents, **org.supervisors}

    def query() -> tuple[str, str]:
        if rng.random() < 0.4:
            user = owner = rng.choice(org.signed_in["customers"])
            department = rng.choice(org.departments)
        else:
            user = rng.choice(org.signed_in["staff"])
            department = rng.choice([d for d in homes[user] if d != EVERY_DEPARTMENT] or org.departments)
            owner = rng.choice(org.customers)
        return urlencode({"department": department, "owner": owner}), org.tokens[user]

    app = bench_app(db.url, authorizer)
    pairs = [(asgi_get(app, "/bench/with-auth", q, t), asgi_get(app, "/bench/without-auth", q, t))
             for q, t in (query() for _ in range(args.api_requests + 500))]
    await in_turn(pairs[:500])  # other requests first: imports, connections, every token once
    pairs = pairs[500:]
    started = time.perf_counter()
    first = await in_turn(pairs)
    again = await in_turn(pairs)
    seconds = time.perf_counter() - started
    await app.state.db.aclose()

    print(f"\n2. a request's authorization in the API: {len(pairs)} GETs to each endpoint in turn through ASGI, "
          f"twice, in {seconds:.1f} s; {len(org.tokens)} bearer tokens (customers, agents, supervisors); all allowed")
    print(f"{'endpoint':<38} {'requests':>8} {'p50 µs':>9} {'p99 µs':>9} {'mean µs':>9}")
    for (with_lat, without_lat), which in ((first, "first time: decisions mostly cold"),
                                            (again, "the same again: decisions cached")):
        print(f"{which}")
        print(row("  without auth (baseline)", without_lat))
        print(row("  with current_principal + authorizer", with_lat, "+ require(read ticket)"))
        p50, p99 = pct(with_lat, .5) - pct(without_lat, .5), pct(with_lat, .99) - pct(without_lat, .99)
        print(f"{'  authorization adds':<38} {'':>8} {p50:>9.1f} {p99:>9.1f}  "
              f"ratio with/without: p50 {pct(with_lat, .5) / pct(without_lat, .5):.2f}x  "
              f"p99 {pct(with_lat, .99) / pct(without_lat, .99):.2f}x")
    print("  (the tail of the cached pass: requests that look their token up again, cached 2 s, or the policy "
          "version, checked every 1 s, in the database)")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--departments", type=int, default=8, help="departments (Casbin domains)")
    parser.add_argument("--agents", type=int, default=120, help="agents, each in one or two departments")
    parser.add_argument("--supervisors", type=int, default=15, help="supervisors, one in five of every department")
    parser.add_argument("--customers", type=int, default=1000,
                        help="customers, each a membership in every department (*)")
    parser.add_argument("--requests", type=int, default=5000, help="requests in the decision mix")
    parser.add_argument("--warm-rounds", type=int, default=10, help="times the mix is asked again, warm")
    parser.add_argument("--api-requests", type=int, default=3000, help="GETs to each of the two endpoints")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", metavar="URL",
                        help="a PostgreSQL database to run on instead of a SQLite file, e.g. "
                             "postgresql+psycopg://postgres@127.0.0.1:5432/test; the benchmark works in a "
                             "schema of its own there and drops it at the end")
    return parser.parse_args()


async def main(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    schema = None
    work = Path(tempfile.mkdtemp(prefix="ticketflow-bench-authz-"))
    if args.database_url:
        db_url, schema = scratch_schema(args.database_url)
        where = "PostgreSQL"
    else:
        db_url, where = f"sqlite:///{work / 'ticketflow.db'}", "SQLite file"
    try:
        upgrade(db_url)
        db = Database(db_url)
        org = Organisation(args.departments, args.agents, args.supervisors, args.customers, rng)
        t0 = time.perf_counter()
        db.call(org.seed)
        print(f"organisation seeded through the access store in {time.perf_counter() - t0:.1f} s ({where})")
        authorizer = decisions(db, org, args, rng)
        await requests_through_the_api(db, org, authorizer, args, rng)
        db.dispose()
    finally:
        if schema:
            drop_schema(args.database_url, schema)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
