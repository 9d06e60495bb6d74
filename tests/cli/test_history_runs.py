"""`ticketflow history` on a ticket that continued as new: every run is shown, exported and
replayed, first to latest."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from temporalio.worker import Worker
from typer.testing import CliRunner

from cli.history import _fetch, history_app
from models.ticket import CustomerMessage, TicketInput, TicketPolicy
from settings import get_settings
from workflow_fakes import FakeReadModel, open_task
from workflows.ticket import TicketWorkflow, workflow_id_for


@pytest.fixture
def cli_env(dev_env, monkeypatch):
    monkeypatch.setenv("TICKETFLOW_TEMPORAL_ADDRESS", dev_env.client.service_client.config.target_host)
    monkeypatch.setenv("TICKETFLOW_TEMPORAL_NAMESPACE", dev_env.client.namespace)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def test_a_ticket_with_several_runs_is_shown_exported_and_replayed_whole(dev_env, task_queue, cli_env,
                                                                                tmp_path):
    fake = FakeReadModel()
    inp = TicketInput(ticket_id=uuid.uuid4().hex, customer_id="cust-1", subject="Parcel", body="Where is it?",
                      department="logistics", opened_at=datetime.now(UTC),
                      policy=TicketPolicy(faq_enabled=False, gather_context=False, auto_assign=False,
                                          continue_as_new_after_events=100))
    async with Worker(dev_env.client, task_queue=task_queue, workflows=[TicketWorkflow],
                      activities=fake.activities()):
        handle = await dev_env.client.start_workflow(TicketWorkflow.run, inp, id=workflow_id_for(inp.ticket_id),
                                                     task_queue=task_queue)
        await open_task(handle)
        for n in range(200):
            if len(await _fetch(inp.ticket_id)) >= 3:
                break
            await handle.signal(TicketWorkflow.customer_message, CustomerMessage(message_id=f"m{n}", text="any news?"))
            await asyncio.sleep(0.05)
        runs = await _fetch(inp.ticket_id)
        assert len(runs) >= 3

    runner = CliRunner()
    shown = await asyncio.to_thread(runner.invoke, history_app, ["show", inp.ticket_id])
    assert shown.exit_code == 0, shown.output
    assert shown.output.count("--- run ") == len(runs) and f"run {len(runs)} of {len(runs)}" in shown.output
    assert "CONTINUED_AS_NEW" in shown.output

    out = tmp_path / "ticket.json"
    exported = await asyncio.to_thread(runner.invoke, history_app, ["export", inp.ticket_id, "-o", str(out)])
    assert exported.exit_code == 0, exported.output
    assert out.exists() and all((tmp_path / f"ticket.run{n}.json").exists() for n in range(1, len(runs)))

    replayed = await asyncio.to_thread(runner.invoke, history_app, ["replay", inp.ticket_id])
    assert replayed.exit_code == 0, replayed.output
    assert replayed.output.count("replay OK") == len(runs)
    first = await asyncio.to_thread(runner.invoke, history_app, ["replay", str(tmp_path / "ticket.run1.json")])
    assert first.exit_code == 0 and "replay OK" in first.output
