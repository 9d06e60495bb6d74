"""Archival before retention: the hourly housekeeping copies closed tickets into the archive
store, signed, and a ticket Temporal no longer has is still read and replayed from there."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker
from typer.testing import CliRunner

from activities.archive import ArchiveActivities, archive_store
from activities.readmodel import ReadModelActivities
from audit.signing import ensure_signing_key, load_signing_key, signing_key_path
from cli.main import app
from harness import eventually
from models.housekeeping import HousekeepingPolicy, HousekeepingReport
from models.task import TaskOutcome
from models.ticket import TicketInput, TicketPolicy
from settings import Settings, get_settings
from workflow_fakes import FakeReadModel, work_task
from workflows.housekeeping import HousekeepingWorkflow
from workflows.ticket import TicketWorkflow, workflow_id_for


@pytest.fixture
def settings(dev_env, tmp_path, monkeypatch) -> Settings:
    monkeypatch.setenv("TICKETFLOW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TICKETFLOW_TEMPORAL_ADDRESS", dev_env.client.service_client.config.target_host)
    monkeypatch.setenv("TICKETFLOW_PAYLOAD_ENCRYPTION", "false")
    get_settings.cache_clear()
    ensure_signing_key(signing_key_path(get_settings()))
    yield get_settings()
    get_settings.cache_clear()


async def closed_ticket(client, task_queue: str) -> str:
    inp = TicketInput(ticket_id=uuid.uuid4().hex, customer_id="cust-1", subject="Broken lid", body="It cracked.",
                      department="general", opened_at=datetime.now(UTC),
                      policy=TicketPolicy(auto_close_after=timedelta(seconds=1), faq_enabled=False,
                                          gather_context=False, auto_assign=False))
    async with Worker(client, task_queue=task_queue, workflows=[TicketWorkflow], activities=FakeReadModel().activities()):
        handle = await client.start_workflow(TicketWorkflow.run, inp, id=workflow_id_for(inp.ticket_id),
                                             task_queue=task_queue)
        await work_task(handle, TaskOutcome.resolve, reply="A new lid is on its way.")
        await handle.result()
    return inp.ticket_id


async def housekeeping(client, db, settings: Settings, task_queue: str) -> HousekeepingReport:
    with ThreadPoolExecutor(2) as executor:
        async with Worker(client, task_queue=task_queue, workflows=[HousekeepingWorkflow], activity_executor=executor,
                          activities=[ReadModelActivities(db).prune_change_feed,
                                      ArchiveActivities(client, settings).archive_closed_tickets]):
            return await client.execute_workflow(
                HousekeepingWorkflow.run, HousekeepingPolicy(change_feed_retention=timedelta(days=7),
                                                             archive_closed_tickets=True),
                id=f"housekeeping-{uuid.uuid4().hex}", task_queue=task_queue)


async def test_a_closed_ticket_is_archived_and_read_after_temporal_dropped_it(dev_env, db, settings, task_queue,
                                                                             monkeypatch):
    client = dev_env.client
    ticket_id = await closed_ticket(client, task_queue)

    async def archived():
        report = await housekeeping(client, db, settings, task_queue)
        assert report.archive_error is None, report.archive_error
        return archive_store(settings).has(ticket_id) or None

    await eventually(archived, timeout=30)  # once Temporal's visibility shows it closed
    store = archive_store(settings)
    record = store.get(ticket_id)
    assert record is not None and record.workflow_id == workflow_id_for(ticket_id) and record.case_type == "support-ticket"
    assert store.intact(ticket_id, load_signing_key(settings).public_key())
    again = await housekeeping(client, db, settings, task_queue)
    assert again.archive is not None and again.archive.already >= 1  # never archived twice

    # Temporal no longer has it: the history passed the retention of the namespace the CLI
    # reads (a namespace the ticket never ran in stands in for it: the dev server deletes
    # closed workflows too lazily to wait for)
    namespace = f"after-retention-{uuid.uuid4().hex[:8]}"
    await client.workflow_service.register_namespace(RegisterNamespaceRequest(
        namespace=namespace, workflow_execution_retention_period=Duration(seconds=86_400)))
    monkeypatch.setenv("TICKETFLOW_TEMPORAL_NAMESPACE", namespace)
    get_settings.cache_clear()

    async def gone():
        try:
            await (await Client.connect(client.service_client.config.target_host, namespace=namespace)
                   ).get_workflow_handle(workflow_id_for(ticket_id)).describe()
        except RPCError as err:
            return err.status == RPCStatusCode.NOT_FOUND or None
        return None

    await eventually(gone, timeout=30)
    runner = CliRunner()
    shown = await asyncio.to_thread(runner.invoke, app, ["history", "show", ticket_id])  # the CLI runs its own loop
    assert shown.exit_code == 0, shown.output
    assert "from the archive" in shown.output and "WORKFLOW_EXECUTION_COMPLETED" in shown.output
    replayed = await asyncio.to_thread(runner.invoke, app, ["audit", "replay", ticket_id])
    assert replayed.exit_code == 0, replayed.output
    assert "1 tickets: 1 ok, 0 diverged" in replayed.output

    # a record changed in the store no longer carries its signature
    path = store.root / "tickets" / f"{ticket_id}.json"
    tampered = path.read_text().replace('"case_type":"support-ticket"', '"case_type":"return-request"')
    assert tampered != path.read_text()
    path.write_text(tampered)
    assert not store.intact(ticket_id, load_signing_key(settings).public_key())


async def test_without_a_signing_key_archival_says_so_and_pruning_still_runs(dev_env, db, tmp_path, task_queue):
    settings = Settings(data_dir=tmp_path / "nokey", temporal_address="unused:1")
    report = await housekeeping(dev_env.client, db, settings, task_queue)
    assert report.archive is None and report.archive_error is not None
    assert "no archive signing key" in report.archive_error
