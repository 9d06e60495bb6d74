"""Intake benchmark: how much of Temporal's raw workflow-start rate survives the API.

Against one embedded dev server (SQLite file, WAL), in one run:
1. baseline: bare `client.start_workflow(TicketWorkflow...)` calls, `--concurrency` at a time;
2. the same number of `POST /tickets` to a real API process (auth, validation, workflow
   start, read-model insert), with the same concurrency;
3. a steady `--rate` requests/s of POST /tickets for `--seconds`, for latency percentiles.
No worker polls the task queue during the run, so both sides measure intake alone. Both
encrypt their payloads with one key file, as a deployment does. The
HTTP requests come from a lean client (bench/loadgen.py): the load generator shares the
cores with the servers, and httpx's own CPU would be counted against the API.

Prints both rates, their ratio (target >= 0.7) and the intake latency p50/p99 at the
steady rate (target p99 < 50 ms at 50 requests/s).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.auth import create_token  # noqa: E402
from encryption import data_converter  # noqa: E402
from encryption.keys import ensure_key_file  # noqa: E402
from settings import Settings  # noqa: E402
from bench.loadgen import LeanClient  # noqa: E402
from cli.embedded import temporal_cli, wait_for_port  # noqa: E402
from migrations import upgrade  # noqa: E402
from models.auth import Role  # noqa: E402
from models.db import Database  # noqa: E402
from models.ticket import TicketInput  # noqa: E402
from workflows.ticket import TicketWorkflow  # noqa: E402

TASK_QUEUE = "bench-intake"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def closed_loop(n: int, concurrency: int, one) -> tuple[float, list[float]]:
    """Run `one(i)` n times with `concurrency` in flight; return (rate/s, latencies ms)."""
    latencies: list[float] = []
    counter = iter(range(n))

    async def lane():
        for i in counter:
            t0 = time.perf_counter()
            await one(i)
            latencies.append((time.perf_counter() - t0) * 1000)

    t0 = time.perf_counter()
    await asyncio.gather(*[lane() for _ in range(concurrency)])
    return n / (time.perf_counter() - t0), latencies


async def open_loop(rate: float, seconds: float, one) -> list[float]:
    """Send at a fixed rate regardless of responses (how real clients arrive)."""
    latencies: list[float] = []
    n = int(rate * seconds)
    start = time.perf_counter()

    async def fire(i: int):
        t0 = time.perf_counter()
        await one(i)
        latencies.append((time.perf_counter() - t0) * 1000)

    tasks = []
    for i in range(n):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(fire(i)))
    await asyncio.gather(*tasks)
    return latencies


def ticket_payload(i: int) -> dict:
    return {"customer_id": f"bench-{i % 97}", "subject": "Where is my parcel?", "department": "logistics",
            "body": "My order was due on Monday and tracking has not moved since.", "order_id": f"ORD-{i}"}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1500, help="calls per throughput phase")
    parser.add_argument("--concurrency", type=int, default=32, help="calls in flight in the throughput phases")
    parser.add_argument("--rate", type=float, default=50.0, help="requests/s of the latency phase")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the latency phase")
    parser.add_argument("--api-port", type=int, default=8765)
    parser.add_argument("--api-workers", type=int, default=1, help="API processes (ticketflow api --workers)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ticketflow-bench-"))
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter, dev_server_existing_path=temporal_cli(),
        dev_server_database_filename=str(work / "temporal.db"),
        dev_server_extra_args=["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"],
    )
    address = env.client.service_client.config.target_host
    db_url = f"sqlite:///{work / 'ticketflow.db'}"
    upgrade(db_url)
    db = Database(db_url)
    token = db.call(create_token, user="bench", role=Role.admin)
    db.dispose()
    key_file = work / "payload-keys.json"
    ensure_key_file(key_file)

    api = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "api", "--workers", str(args.api_workers)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "TICKETFLOW_TEMPORAL_ADDRESS": address, "TICKETFLOW_DATABASE_URL": db_url,
             "TICKETFLOW_TASK_QUEUE": TASK_QUEUE, "TICKETFLOW_API_PORT": str(args.api_port),
             "TICKETFLOW_PAYLOAD_KEY_FILE": str(key_file)},
    )
    try:
        wait_for_port("127.0.0.1", args.api_port, 60, api)
        client = await Client.connect(address, data_converter=data_converter(Settings(payload_key_file=key_file)))
        print(f"dev server {address} (SQLite file, WAL); {args.api_workers} API process(es) on :{args.api_port}; "
              f"{args.requests} calls per phase, concurrency {args.concurrency}")

        async def bare_start(i: int) -> None:
            tid = uuid.uuid4().hex
            inp = TicketInput(ticket_id=tid, opened_at=datetime.now(UTC), **ticket_payload(i))
            await client.start_workflow(TicketWorkflow.run, inp, id=f"ticket-{tid}", task_queue=TASK_QUEUE)

        async with LeanClient("127.0.0.1", args.api_port, headers={"Authorization": f"Bearer {token}"}) as http:
            async def post_ticket(i: int) -> None:
                r = await http.post("/tickets", ticket_payload(i))
                if r.status_code != 201:
                    raise RuntimeError(f"POST /tickets answered {r.status_code}: {r.text}")

            # warm both paths (connections, caches, first-import costs) before measuring
            await closed_loop(100, args.concurrency, bare_start)
            await closed_loop(100, args.concurrency, post_ticket)

            bare_rate, bare_lat = await closed_loop(args.requests, args.concurrency, bare_start)
            api_rate, api_lat = await closed_loop(args.requests, args.concurrency, post_ticket)
            steady_bare = await open_loop(args.rate, args.seconds, bare_start)
            steady = await open_loop(args.rate, args.seconds, post_ticket)

        print(f"bare start_workflow : {bare_rate:8.1f} starts/s   p50 {pct(bare_lat, .5):6.1f} ms  "
              f"p99 {pct(bare_lat, .99):6.1f} ms")
        print(f"POST /tickets       : {api_rate:8.1f} tickets/s  p50 {pct(api_lat, .5):6.1f} ms  "
              f"p99 {pct(api_lat, .99):6.1f} ms")
        print(f"ratio API/bare      : {api_rate / bare_rate:8.2f}   (target >= 0.70)")
        print(f"steady {args.rate:.0f}/s bare start_workflow: p50 {pct(steady_bare, .5):.1f} ms  "
              f"p99 {pct(steady_bare, .99):.1f} ms  max {max(steady_bare):.1f} ms")
        print(f"steady {args.rate:.0f} req/s x {args.seconds:.0f}s: p50 {pct(steady, .5):.1f} ms  "
              f"p99 {pct(steady, .99):.1f} ms  max {max(steady):.1f} ms  mean {statistics.mean(steady):.1f} ms  "
              f"(target p99 < 50 ms)")
    finally:
        api.terminate()
        api.wait(15)
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
