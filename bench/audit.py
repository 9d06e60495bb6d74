"""Audit benchmark: export, verify and replay rates over recorded tickets.

Against one embedded dev server (SQLite file, WAL): `--tickets` support tickets are run to
their end (opened, worked by an agent, closed) by a worker whose activities do nothing, so
each has a real history. Then, timed:
1. `audit export`: every ticket's history fetched (every run) and written into a signed
   archive directory;
2. `audit verify`: the signature and every file's SHA-256;
3. `audit replay`: every history replayed against today's code with the decision checks;
   the baseline, in the same process over the same histories read from the same archive,
   is a bare `Replayer.replay_workflows` (commands only, no checks). `--replay-tickets`
   replays only the first N (for a large export).
Prints tickets/s for each, and the replay ratio audit/bare.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio import activity
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from audit.archive import Archive, ArchiveWriter, verify  # noqa: E402
from audit.export import Selection, export  # noqa: E402
from audit.replay import replay_tickets  # noqa: E402
from cli.divergence import quiet_runtime  # noqa: E402
from cli.embedded import temporal_cli  # noqa: E402
from models.auth import AccessDecision  # noqa: E402
from models.routing import OfferRequest, OfferResult, RouteDecision, RouteRequest  # noqa: E402
from models.steps import CustomerNotification, DeliveryReceipt  # noqa: E402
from models.task import ClaimTask, CompleteTask, TaskSnapshot  # noqa: E402
from models.ticket import TicketChanges, TicketInput, TicketPolicy  # noqa: E402
from worker import workflow_runner, workflows  # noqa: E402
from workflows.ticket import TicketWorkflow, workflow_id_for  # noqa: E402

TASK_QUEUE = "bench-audit"


@activity.defn(name="project_ticket_changes")
async def project_ticket_changes(changes: TicketChanges) -> None:
    return None


@activity.defn(name="project_task")
async def project_task(task: TaskSnapshot) -> None:
    return None


@activity.defn(name="deliver_reply")
async def deliver_reply(note: CustomerNotification) -> DeliveryReceipt:
    return DeliveryReceipt(delivered=True, via="bench")


@activity.defn(name="route_task")
async def route_task(req: RouteRequest) -> RouteDecision:
    return RouteDecision(agent_id=None, reason="bench", code="nobody_fits")


@activity.defn(name="offer_queued")
async def offer_queued(req: OfferRequest) -> OfferResult:
    return OfferResult()


def allow(action: str) -> AccessDecision:
    return AccessDecision(principal="ana", action=action, object="task", allowed=True, role="agent",
                          department="logistics", policy_version=1)


async def one_ticket(client, i: int) -> None:  # noqa: ANN001
    inp = TicketInput(ticket_id=f"bench-{i}-{uuid.uuid4().hex[:8]}", customer_id="cust-1",
                      subject="Where is my parcel?", body="It was due on Monday.", department="logistics",
                      opened_at=datetime.now(UTC),
                      policy=TicketPolicy(faq_enabled=False, gather_context=False, auto_assign=False,
                                          auto_close_after=timedelta(seconds=1)))
    handle = await client.start_workflow(TicketWorkflow.run, inp, id=workflow_id_for(inp.ticket_id),
                                         task_queue=TASK_QUEUE)
    while not (tasks := await handle.query(TicketWorkflow.open_tasks)):
        await asyncio.sleep(0.05)
    task_id = tasks[0].task_id
    await handle.execute_update(TicketWorkflow.claim_task,
                                ClaimTask(task_id=task_id, agent="ana", authorization=allow("claim")))
    await handle.execute_update(TicketWorkflow.complete_task, CompleteTask(
        task_id=task_id, agent="ana", outcome="resolve", reply="It arrives tomorrow.",
        authorization=[allow("complete")]))
    await handle.result()


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="ticketflow-bench-audit-") as tmp:
        env = await WorkflowEnvironment.start_local(
            data_converter=pydantic_data_converter, dev_server_existing_path=temporal_cli(),
            dev_server_database_filename=str(Path(tmp) / "temporal.db"),
            dev_server_extra_args=["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"])
        client = env.client
        try:
            started = time.perf_counter()
            async with Worker(client, task_queue=TASK_QUEUE, workflows=[TicketWorkflow],
                              workflow_runner=workflow_runner(),
                              activities=[project_ticket_changes, project_task, deliver_reply, route_task,
                                          offer_queued]):
                gate = asyncio.Semaphore(args.concurrency)

                async def bounded(i: int) -> None:
                    async with gate:
                        await one_ticket(client, i)

                await asyncio.gather(*(bounded(i) for i in range(args.tickets)))
            print(f"{args.tickets} tickets run to their end in {time.perf_counter() - started:.0f} s "
                  f"(setup, not measured)", flush=True)
            selection = Selection()
            for _ in range(200):  # visibility catches up
                if len([w async for w in client.list_workflows(selection.visibility_query())]) >= args.tickets:
                    break
                await asyncio.sleep(0.1)

            key = Ed25519PrivateKey.generate()
            path = Path(tmp) / "archive"
            t = time.perf_counter()
            writer = ArchiveWriter(path)
            result = await export(client, selection, writer, concurrency=args.export_concurrency)
            writer.seal(key, selection.describe())
            export_s = time.perf_counter() - t
            assert result.written == args.tickets, result
            size_mb = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6

            t = time.perf_counter()
            checked = verify(Archive(path), key.public_key())
            verify_s = time.perf_counter() - t
            assert checked.ok and checked.checked == args.tickets
            n_all = args.tickets

            replayed_n = min(args.replay_tickets or n_all, n_all)

            def records():  # read from the archive as they are replayed: memory stays flat
                return itertools.islice(Archive(path).tickets(), replayed_n)

            runs = events = 0
            for record in records():
                runs += len(record.runs)
                events += record.event_count

            async def bare() -> float:
                replayer = Replayer(workflows=workflows(), data_converter=pydantic_data_converter,
                                    workflow_runner=workflow_runner(), runtime=quiet_runtime())

                async def each():
                    for record in records():
                        for h in record.histories():
                            yield h

                t = time.perf_counter()
                outcome = await replayer.replay_workflows(each(), raise_on_replay_failure=False)
                assert not outcome.replay_failures, outcome.replay_failures
                return time.perf_counter() - t

            async def audited() -> float:
                t = time.perf_counter()
                results = [r async for r in replay_tickets(records(), workflows=workflows(),
                                                           converter=pydantic_data_converter,
                                                           runner=workflow_runner("audit"))]
                assert all(r.result == "ok" for r in results), [r for r in results if r.result != "ok"][:3]
                return time.perf_counter() - t

            bare_s, audit_s = [], []
            for _ in range(args.rounds):  # taking turns, so what else runs weighs on both alike
                bare_s.append(await bare())
                audit_s.append(await audited())
        finally:
            await env.shutdown()

    n, r = args.tickets, replayed_n
    bare_best, audit_best = min(bare_s), min(audit_s)
    print(f"replayed: {r} tickets, {runs} runs, {events} events ({events / r:.0f} per ticket); "
          f"archive of {n}: {size_mb:.1f} MB")
    print(f"export (fetch every run, write, sign): {n / export_s:8.1f} tickets/s  ({export_s:.1f} s, "
          f"{args.export_concurrency} fetches at once)")
    print(f"verify (signature and SHA-256 of every file): {n / verify_s:8.1f} tickets/s  ({verify_s:.2f} s)")
    print(f"replay, bare Replayer.replay_workflows:       {r / bare_best:8.1f} tickets/s  "
          f"(best of {args.rounds}: {', '.join(f'{s:.1f}' for s in bare_s)} s)")
    print(f"replay, audit (decision checks):              {r / audit_best:8.1f} tickets/s  "
          f"(best of {args.rounds}: {', '.join(f'{s:.1f}' for s in audit_s)} s)")
    print(f"ratio audit replay / bare replay: {bare_best / audit_best:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--tickets", type=int, default=1000, help="recorded tickets to export, verify, replay")
    parser.add_argument("--concurrency", type=int, default=32, help="tickets run at once while recording")
    parser.add_argument("--export-concurrency", type=int, default=8, help="histories fetched at once")
    parser.add_argument("--rounds", type=int, default=2, help="replay rounds per side, taking turns")
    parser.add_argument("--replay-tickets", type=int, default=None,
                        help="replay only the first N tickets of the archive (default: all)")
    asyncio.run(main(parser.parse_args()))
