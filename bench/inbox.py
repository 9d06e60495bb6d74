"""Inbox benchmark: GET /tasks latency at a steady rate, against a bare FastAPI baseline.

In one run:
1. seeds `--tasks` open tasks across `--queues` queues into a SQLite file (or with
   `--database-url`, a scratch schema in PostgreSQL) through the real projection
   (`models.readmodel.upsert_task`), with mixed priorities, SLA due times (some none),
   skills and creation times;
2. starts the real API (`python -m cli.main api`) in a subprocess on that database. No
   Temporal server runs: the API connects to it lazily and GET /tasks never needs it;
3. starts a bare FastAPI app in another subprocess that answers every request with the same
   fixed JSON page of 50 tasks (no auth, no database): the floor of HTTP + framework cost;
4. drives each at a steady `--rate` requests/s, open loop, for `--seconds`. Requests come
   from simulated consoles: agents (department-scoped) and supervisors, each opening its
   inbox with a random sort (created / due / priority) and filters (status, skill, overdue,
   priority) and following `next_cursor` up to `--pages` pages before starting over. Both
   sides get their requests from the same lean client (bench/loadgen.py), whose own CPU
   cost stays small next to the servers' on a machine they share.

Prints the rate achieved and p50/p99 for both, their ratio (target: API p99 < 25 ms), and
the figures the README's benchmark table records for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.auth import create_token  # noqa: E402
from bench.loadgen import HttpError, LeanClient  # noqa: E402
from cli.embedded import wait_for_port  # noqa: E402
from migrations import upgrade  # noqa: E402
from models import readmodel  # noqa: E402
from models.auth import Role  # noqa: E402
from models.db import Database  # noqa: E402
from models.enums import Priority  # noqa: E402
from models.task import TaskSnapshot  # noqa: E402
from policies.store import add_department  # noqa: E402

SKILLS = ["refunds", "carriers", "warranty", "billing-disputes", "german"]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def recorded_figures() -> str:
    """What the README's benchmark table says this benchmark measured last."""
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith("| `bench/inbox.py` |"):
            return line.strip(" |").rsplit(" | ", 1)[1]
    return "none in the README"


def cpu_seconds(pid: int) -> float | None:
    """CPU time a process has used so far (Linux), to show what one request costs the server."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scratch_schema(url: str) -> tuple[str, str]:
    """A new schema in the PostgreSQL database at `url`; (its URL, its name)."""
    import sqlalchemy

    name = f"tf_bench_{int(time.time())}_{os.getpid()}"
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    engine.dispose()
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{name}", name


def drop_schema(url: str, name: str) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(db: Database, n_tasks: int, queues: list[str], rng: random.Random) -> None:
    now = datetime.now(UTC)
    snaps = []
    for i in range(n_tasks):
        queue = queues[i % len(queues)]
        created = now - timedelta(days=3) + timedelta(seconds=i * 20)
        snaps.append(TaskSnapshot(
            task_id=f"bench-{i:06d}", ticket_id=f"bench-ticket-{i:06d}", workflow_id=f"ticket-bench-{i:06d}",
            queue=queue, priority=rng.choice(list(Priority)), created_at=created, revision=1,
            skills=rng.sample(SKILLS, k=rng.choice([0, 1, 1, 2])), language=rng.choice(["en", "en", "de"]),
            due_at=None if rng.random() < 0.15 else created + timedelta(hours=rng.uniform(1, 72)),
            context={"subject": f"Where is order ORD-{i}?", "order_id": f"ORD-{i}"},
        ))

    for start in range(0, len(snaps), 2000):  # a few large transactions, like a busy hour
        chunk = snaps[start:start + 2000]
        db.call(lambda s, chunk=chunk: [readmodel.upsert_task(s, snap) for snap in chunk])


class Consoles:
    """Agents and supervisors paging through their inboxes."""

    def __init__(self, tokens: list[tuple[str, str]], pages: int, rng: random.Random) -> None:
        self.tokens = tokens  # (token, queue or "" for supervisors)
        self.pages = pages
        self.rng = rng
        self.sessions: list[dict] = [self._fresh() for _ in range(64)]

    def _fresh(self) -> dict:
        token, queue = self.rng.choice(self.tokens)
        params: dict = {"status": "open", "limit": 50, "sort": self.rng.choice(["created", "due", "priority"])}
        if not queue:
            params["queue"] = self.rng.choice([q for _, q in self.tokens if q])
        extra = self.rng.random()
        if extra < 0.2:
            params["skill"] = self.rng.choice(SKILLS)
        elif extra < 0.35:
            params["overdue"] = "true"
        elif extra < 0.45:
            params["priority"] = self.rng.choice(list(Priority)).value
        return {"headers": {"Authorization": f"Bearer {token}"}, "params": params, "cursor": None, "page": 0}

    def next_request(self) -> tuple[int, dict]:
        i = self.rng.randrange(len(self.sessions))
        return i, self.sessions[i]

    def advance(self, i: int, session: dict, next_cursor: str | None) -> None:
        if next_cursor and session["page"] + 1 < self.pages:
            session.update(cursor=next_cursor, page=session["page"] + 1)
        else:
            self.sessions[i] = self._fresh()


async def steady(http: LeanClient, rate: float, seconds: float, consoles: Consoles | None,
                 path: str = "/tasks") -> tuple[list[float], int, float]:
    """Open loop: a request every 1/rate s whatever the answers do. Returns latencies (ms),
    failures and the rate of completed requests."""
    latencies: list[float] = []
    failures = 0
    n = int(rate * seconds)

    async def one() -> None:
        nonlocal failures
        params, headers, i, session = {}, {}, None, None
        if consoles is not None:
            i, session = consoles.next_request()
            params = {**session["params"], **({"cursor": session["cursor"]} if session["cursor"] else {})}
            headers = session["headers"]
        t0 = time.perf_counter()
        try:
            r = await http.get(path, params=params, headers=headers)
            body = r.content
        except HttpError as exc:
            failures += 1
            if failures <= 3:
                print(f"  failed: {exc}")
            return
        latencies.append((time.perf_counter() - t0) * 1000)
        if r.status_code != 200:
            failures += 1
            if failures <= 3:
                print(f"  failed: GET {path} {params} -> {r.status_code} {r.text[:200]}")
            return
        if consoles is not None:
            consoles.advance(i, session, json.loads(body).get("next_cursor"))

    start = time.perf_counter()
    tasks = []
    for k in range(n):
        delay = start + k / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    return latencies, failures, len(latencies) / (time.perf_counter() - start)


def serve_bare(port: int, page_file: str) -> None:
    """The baseline: FastAPI answering one fixed page of tasks."""
    import uvicorn
    from fastapi import FastAPI

    page = json.loads(Path(page_file).read_text())
    app = FastAPI()

    @app.get("/tasks")
    async def tasks() -> dict:
        return page

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="info")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000, help="open tasks to seed")
    parser.add_argument("--queues", type=int, default=4, help="queues (departments) they are spread over")
    parser.add_argument("--rate", type=float, default=200.0, help="requests/s, open loop")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each measured phase")
    parser.add_argument("--pages", type=int, default=5, help="pages a console follows before starting over")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", metavar="URL",
                        help="a PostgreSQL database to run on instead of a SQLite file, e.g. "
                             "postgresql+psycopg://postgres@127.0.0.1:5432/test; the benchmark works in a "
                             "schema of its own there and drops it at the end")
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--page-file", help=argparse.SUPPRESS)
    return parser.parse_args()


async def main(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="ticketflow-bench-inbox-"))
    schema = None
    if args.database_url:
        db_url, schema = scratch_schema(args.database_url)
        where = "PostgreSQL"
    else:
        db_url, where = f"sqlite:///{work / 'ticketflow.db'}", "SQLite file, WAL"
    try:
        await measure(args, rng, work, db_url, where)
    finally:
        if schema:
            drop_schema(args.database_url, schema)
        shutil.rmtree(work, ignore_errors=True)


async def measure(args: argparse.Namespace, rng: random.Random, work: Path, db_url: str, where: str) -> None:
    upgrade(db_url)
    db = Database(db_url)
    queues = [f"queue-{i}" for i in range(args.queues)]
    for queue in queues:  # a department must exist before anyone holds a role in it
        db.call(add_department, "bench", queue)
    t0 = time.perf_counter()
    seed(db, args.tasks, queues, rng)
    seeded = time.perf_counter() - t0
    tokens = [(db.call(create_token, user=f"agent-{q}-{k}", role=Role.agent, department=q), q)
              for q in queues for k in range(3)]
    tokens += [(db.call(create_token, user="supervisor", role=Role.supervisor, department="*"), "")]
    first_page, _ = db.call(readmodel.list_tasks, limit=50, queue=queues[0], status="open")
    db.dispose()
    page_file = work / "page.json"
    page_file.write_text(json.dumps({"items": [t.model_dump(mode="json") for t in first_page], "next_cursor": None}))

    api_port, bare_port = free_port(), free_port()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": ROOT}
    api = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "api"], **quiet,
        env={**os.environ, "TICKETFLOW_DATABASE_URL": db_url, "TICKETFLOW_API_PORT": str(api_port),
             # GET /tasks never reaches Temporal: nothing listens there, and no payload keys are needed
             "TICKETFLOW_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}", "TICKETFLOW_PAYLOAD_ENCRYPTION": "false"},
    )
    bare = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve-bare", str(bare_port),
                             "--page-file", str(page_file)], **quiet)
    try:
        wait_for_port("127.0.0.1", api_port, 60, api)
        wait_for_port("127.0.0.1", bare_port, 60, bare)
        print(f"{args.tasks} open tasks in {args.queues} queues seeded through the projection in {seeded:.1f} s "
              f"({where}); API and bare FastAPI each in their own process")
        print(f"driving {args.rate:.0f} requests/s open loop for {args.seconds:.0f} s each; consoles follow up to "
              f"{args.pages} pages of 50 with random sort and filters")
        results, cpu = {}, {}
        for name, port, proc, consoles in (("bare FastAPI", bare_port, bare, None),
                                           ("GET /tasks", api_port, api, Consoles(tokens, args.pages, rng))):
            async with LeanClient("127.0.0.1", port) as http:
                await steady(http, args.rate, 2.0, consoles)  # warm connections, caches and imports
                before = cpu_seconds(proc.pid)
                results[name] = await steady(http, args.rate, args.seconds, consoles)
                after = cpu_seconds(proc.pid)
                cpu[name] = (after - before) * 1000 / len(results[name][0]) if before is not None else None
        for name, (lat, failures, achieved) in results.items():
            server = f"{cpu[name]:.2f} ms" if cpu[name] is not None else "n/a"
            print(f"{name:<13}: {achieved:6.1f} req/s  p50 {pct(lat, .5):6.2f} ms  p99 {pct(lat, .99):6.2f} ms  "
                  f"max {max(lat):6.1f} ms  mean {statistics.mean(lat):6.2f} ms  failures {failures}  "
                  f"server CPU/request {server}")
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end "
              "(the driver, both servers and anything else running share them)")
        api_lat, bare_lat = results["GET /tasks"][0], results["bare FastAPI"][0]
        p99 = pct(api_lat, .99)
        print(f"ratio GET /tasks / bare: p50 {pct(api_lat, .5) / pct(bare_lat, .5):.2f}x  "
              f"p99 {p99 / pct(bare_lat, .99):.2f}x")
        print(f"target p99 < 25 ms at {args.rate:.0f} req/s: {'met' if p99 < 25 else 'NOT met'} ({p99:.1f} ms)")
        print(f"now: {where} p99 {p99:.1f} ms; previous (README): {recorded_figures()}")
    finally:
        for proc in (api, bare):
            proc.terminate()
            proc.wait(15)


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.serve_bare:
        serve_bare(arguments.serve_bare, arguments.page_file)
    else:
        asyncio.run(main(arguments))
