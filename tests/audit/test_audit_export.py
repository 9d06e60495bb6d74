"""`audit export` against a real Temporal server: selection, continue-as-new chains, resume."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.client import Client
from temporalio.worker import Worker

from audit.archive import Archive, ArchiveWriter, verify
from audit.export import Selection, export
from audit.replay import replay_tickets
from models.task import TaskOutcome
from models.ticket import CustomerMessage, TicketInput, TicketPolicy
from worker import workflow_runner, workflows
from workflow_fakes import FakeReadModel, work_task
from workflows.ticket import TicketWorkflow, workflow_id_for


def ticket(events: int = 2_000) -> TicketInput:
    policy = TicketPolicy(auto_close_after=timedelta(seconds=1), faq_enabled=False, gather_context=False,
                          auto_assign=False, continue_as_new_after_events=events)
    return TicketInput(ticket_id=uuid.uuid4().hex, customer_id="cust-1", subject="Where is my parcel?",
                       body="It was due on Monday.", department="logistics", opened_at=datetime.now(UTC),
                       policy=policy)


async def visible(client: Client, selection: Selection, count: int) -> None:
    for _ in range(200):
        found = [w async for w in client.list_workflows(selection.visibility_query())]
        if len({w.id for w in found}) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the tickets never showed in Temporal's visibility")


@pytest.fixture
async def tickets(dev_env, task_queue):
    """Three closed tickets (one of them in three runs) and one still open."""
    client = dev_env.client
    fake = FakeReadModel()
    async with Worker(client, task_queue=task_queue, workflows=[TicketWorkflow], activities=fake.activities()):
        closed = []
        for inp in (ticket(), ticket(), ticket(events=100)):
            handle = await client.start_workflow(TicketWorkflow.run, inp, id=workflow_id_for(inp.ticket_id),
                                                 task_queue=task_queue)
            if inp.policy.continue_as_new_after_events == 100:
                sent = itertools.count()
                while len([r async for r in _runs(client, handle.id)]) < 3:
                    await handle.signal(TicketWorkflow.customer_message,
                                        CustomerMessage(message_id=f"m{next(sent)}", text="any news?"))
                    await asyncio.sleep(0.02)
            await work_task(handle, TaskOutcome.resolve, reply="On its way.")
            await handle.result()
            closed.append(inp.ticket_id)
        still_open = ticket()
        await client.start_workflow(TicketWorkflow.run, still_open, id=workflow_id_for(still_open.ticket_id),
                                    task_queue=task_queue)
        yield client, closed, still_open.ticket_id


async def _runs(client: Client, workflow_id: str):
    async for w in client.list_workflows(f"WorkflowId = '{workflow_id}'"):
        yield w


async def test_export_follows_every_run_verifies_resumes_and_replays(tickets, tmp_path):
    client, closed, still_open = tickets
    key = Ed25519PrivateKey.generate()
    everything = Selection(tickets=[*closed, still_open])
    await visible(client, everything, 4)

    # only the closed ones
    selection = Selection(tickets=[*closed, still_open], status="completed")
    writer = ArchiveWriter(tmp_path / "a")
    result = await export(client, selection, writer)
    assert (result.written, result.resumed, result.missing) == (3, 0, [])
    writer.seal(key, selection.describe())
    archive = Archive(tmp_path / "a")
    assert verify(archive, key.public_key()).ok
    by_id = {r.ticket_id: r for r in archive.tickets()}
    assert set(by_id) == set(closed)
    long = by_id[closed[2]]
    assert len(long.runs) == 3 and len({r.run_id for r in long.runs}) == 3
    assert long.event_count == sum(len(h.events) for h in long.histories())
    first = long.histories()[0].events[0].workflow_execution_started_event_attributes
    assert not first.continued_execution_run_id  # oldest first
    assert long.histories()[1].events[0].workflow_execution_started_event_attributes.continued_execution_run_id \
        == long.runs[0].run_id
    assert archive.manifest()["selection"]["status"] == "completed"

    # every run of every ticket replays against today's code, decisions included
    replays = [r async for r in replay_tickets(archive.tickets(), workflows=workflows(),
                                               converter=client.data_converter, runner=workflow_runner("audit"))]
    assert [(r.runs, r.result) for r in sorted(replays, key=lambda r: r.runs)] == [(1, "ok"), (1, "ok"), (3, "ok")]


async def test_an_interrupted_export_fetches_only_the_rest(tickets, tmp_path):
    client, closed, still_open = tickets
    selection = Selection(tickets=[*closed, still_open])
    await visible(client, selection, 4)
    first = ArchiveWriter(tmp_path / "b.tar.gz")
    interrupted = Selection(tickets=closed[:2])
    assert (await export(client, interrupted, first)).written == 2  # then the process died: no manifest

    again = ArchiveWriter(tmp_path / "b.tar.gz")
    result = await export(client, selection, again)
    assert (result.written, result.resumed) == (2, 2)
    key = Ed25519PrivateKey.generate()
    manifest = again.seal(key, selection.describe())
    assert manifest["tickets"] == 4
    assert verify(Archive(tmp_path / "b.tar.gz"), key.public_key()).ok


def test_a_selection_is_one_visibility_query_that_ids_cannot_break_out_of():
    query = Selection(tickets=["a' OR WorkflowId != 'b"], since=datetime(2026, 11, 1, tzinfo=UTC),
                      status="completed", case_type="support-ticket", query="CloseTime > '2026-11-02T00:00:00Z'"
                      ).visibility_query()
    assert query == ("(WorkflowType = 'TicketWorkflow') AND (WorkflowId = 'ticket-a\\' OR WorkflowId != \\'b') "
                     "AND StartTime >= '2026-11-01T00:00:00+00:00' AND ExecutionStatus = 'Completed' "
                     "AND (CloseTime > '2026-11-02T00:00:00Z')")
    with pytest.raises(ValueError, match="unknown status"):
        Selection(status="done")
    with pytest.raises(ValueError, match="with their offset"):
        Selection(since=datetime(2026, 11, 1))
