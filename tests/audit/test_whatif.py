"""What-if on recorded tickets: another SLA policy, another FAQ threshold."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker
from typer.testing import CliRunner

from audit.archive import ArchiveWriter, record_for
from audit.whatif import read, simulate_breaches, what_if
from audit_helpers import records
from cli.main import app
from models.enums import Priority
from models.task import TaskOutcome
from models.ticket import TicketInput, TicketPolicy
from sla import BusinessCalendar, SlaPolicy, SlaTarget
from sla.config import SlaConfig
from workflow_fakes import FakeReadModel, work_task
from workflows.ticket import TicketWorkflow, workflow_id_for


def config(first_response: timedelta, resolution: timedelta) -> SlaConfig:
    return SlaConfig(calendar=BusinessCalendar.always_open("UTC"), policies=[
        SlaPolicy(priority=p, target=SlaTarget(first_response=first_response, resolution=resolution))
        for p in Priority])


@pytest.fixture
async def late_answer(fresh_time_env, task_queue):
    """A ticket an agent first answers two hours in, under a one-hour first-response target."""
    inp = TicketInput(ticket_id=uuid.uuid4().hex, customer_id="cust-1", subject="Where is my parcel?",
                      body="It was due on Monday.", department="logistics", opened_at=datetime.now(UTC),
                      sla=config(timedelta(hours=1), timedelta(hours=8)),
                      policy=TicketPolicy(faq_enabled=False, gather_context=False, auto_assign=False))
    async with Worker(fresh_time_env.client, task_queue=task_queue, workflows=[TicketWorkflow],
                      activities=FakeReadModel().activities()):
        handle = await fresh_time_env.client.start_workflow(TicketWorkflow.run, inp, id=workflow_id_for(inp.ticket_id),
                                                            task_queue=task_queue)
        await fresh_time_env.sleep(timedelta(hours=2))
        await work_task(handle, TaskOutcome.resolve, reply="It arrives tomorrow.")
        await handle.result()
        history = await handle.fetch_history()
    return record_for(ticket_id=inp.ticket_id, case_type="support-ticket", workflow_type="TicketWorkflow",
                      runs=[(history.run_id, history)])


async def test_a_known_breach_is_avoided_under_a_looser_policy_and_one_added_under_a_tighter(late_answer):
    recorded = read(late_answer, pydantic_data_converter)
    assert recorded.breaches() == {"first_response"}
    assert simulate_breaches(recorded, recorded.inp.sla) == {"first_response"}  # the recorded policy: as recorded

    looser = what_if([late_answer], pydantic_data_converter, sla=config(timedelta(hours=3), timedelta(hours=8)))
    assert (looser.breaches_before, looser.breaches_after) == (1, 0)
    assert looser.as_dict()["sla"]["avoided"] == 1 and looser.as_dict()["sla"]["added"] == 0

    tighter = what_if([late_answer], pydantic_data_converter, sla=config(timedelta(hours=1), timedelta(minutes=90)))
    assert tighter.as_dict()["sla"]["changed"] == [{"ticket_id": late_answer.ticket_id,
                                                    "before": ["first_response"],
                                                    "after": ["first_response", "resolution"]}]


def test_the_recorded_policy_reproduces_every_recorded_breach():
    for record in records():
        recorded = read(record, pydantic_data_converter)
        if recorded.inp.sla is not None:
            assert simulate_breaches(recorded, recorded.inp.sla) == recorded.breaches(), record.ticket_id


def test_another_faq_threshold_gains_and_loses_answers_with_their_verdicts():
    stricter = what_if(records(), pydantic_data_converter, faq_threshold=0.99)  # the bot answered at 0.98
    report = stricter.as_dict()["faq"]
    assert (report["answered_before"], report["answered_after"]) == (1, 0)
    assert report["lost"] == ["ticket_answered_by_bot"] and report["precision_before"] == 1.0
    assert report["precision_after"] is None  # nothing judged left
    same = what_if(records(), pydantic_data_converter, faq_threshold=0.5).as_dict()["faq"]
    assert same["lost"] == [] and same["answered_after"] == 1 and same["precision_after"] == 1.0


def test_the_cli_reports_both(late_answer, tmp_path, monkeypatch):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from settings import get_settings

    monkeypatch.setenv("TICKETFLOW_PAYLOAD_ENCRYPTION", "false")
    get_settings.cache_clear()
    writer = ArchiveWriter(tmp_path / "archive")
    for record in [late_answer, *records()]:
        writer.add(record)
    writer.seal(Ed25519PrivateKey.generate(), {})
    looser = tmp_path / "sla.json"
    looser.write_text(config(timedelta(hours=3), timedelta(hours=8)).model_dump_json())
    try:
        result = CliRunner().invoke(app, ["audit", "whatif", str(tmp_path / "archive"), "--sla", str(looser),
                                          "--faq-threshold", "0.99", "--json"])
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        assert report["tickets"] == 10
        assert {"ticket_id": late_answer.ticket_id, "before": ["first_response"], "after": []} in report["sla"]["changed"]
        assert report["faq"]["lost"] == ["ticket_answered_by_bot"]
        table = CliRunner().invoke(app, ["audit", "whatif", str(tmp_path / "archive"), "--faq-threshold", "0.9"])
        assert "FAQ at threshold 0.9: 1 answered automatically -> 1" in table.output
        bad = CliRunner().invoke(app, ["audit", "whatif", str(tmp_path / "archive")])
        assert bad.exit_code == 2 and "say what to change" in bad.output
        wrong = tmp_path / "wrong.json"
        wrong.write_text('{"policies": 3}')
        bad = CliRunner().invoke(app, ["audit", "whatif", str(tmp_path / "archive"), "--sla", str(wrong)])
        assert bad.exit_code == 2 and "is not an SLA configuration" in bad.output
    finally:
        get_settings.cache_clear()
