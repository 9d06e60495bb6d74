"""Recorded histories in tests/histories must replay on today's code: a change that alters a
released workflow's commands has to go behind `workflow.patched(...)`.

To record the current version's histories (after a deliberate, patched change, keep the old
files and add new ones): TICKETFLOW_RECORD_HISTORIES=1 pytest tests/workflows/test_replay.py
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, Worker

from cli.divergence import explain
from cli.embedded import temporal_test_server
from models.faq import FaqDecision, FaqMatch, FaqQuery, FaqResult
from models.enums import Priority
from models.task import RefundDecision, TaskOutcome
from models.ticket import CustomerFeedback, CustomerMessage, TicketInput, TicketPolicy
from policies.sla import load_sla_config
from sla import BusinessCalendar, SlaPolicy, SlaTarget
from sla.config import SlaConfig
from sla.policy import MoveToQueue, RaisePriority
from audit_helpers import NoRefundsTicket as NoRefunds
from workflow_fakes import FakeReadModel, open_task, work_task
from temporalio import activity
from worker import WORKFLOWS
from workflows.return_request import ReturnRequestWorkflow
from workflows.ticket import TicketWorkflow
from models.returns import ReturnInput
from return_fakes import Systems, approve, return_input

HISTORIES = Path(__file__).resolve().parents[1] / "histories"
RECORDING = os.environ.get("TICKETFLOW_RECORD_HISTORIES") == "1"


def recorded() -> list[Path]:
    return sorted(HISTORIES.glob("*.json"))


@pytest.mark.skipif(RECORDING, reason="recording run")
@pytest.mark.parametrize("path", recorded(), ids=lambda p: p.stem)
async def test_recorded_history_replays(path: Path):
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    divergence = await explain(Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter), history)
    if divergence is not None:
        pytest.fail(f"today's code decides differently from a released history: put the change behind "
                    f"workflow.patched(...)\n{divergence}", pytrace=False)


@pytest.mark.skipif(RECORDING, reason="recording run")
async def test_a_divergence_is_explained_in_the_cases_words():
    path = HISTORIES / "ticket_refunded.json"
    history = WorkflowHistory.from_json("ticket-recorded-refund", path.read_text())
    replayer = Replayer(workflows=[NoRefunds], data_converter=pydantic_data_converter,
                        workflow_runner=UnsandboxedWorkflowRunner())
    divergence = await explain(replayer, history)
    assert divergence is not None
    refund_event = next(e for e in history.events if e.HasField("activity_task_scheduled_event_attributes")
                        and e.activity_task_scheduled_event_attributes.activity_type.name == "create_refund")
    assert divergence.case == "ticket-recorded-refund"
    assert (divergence.event_id, divergence.event_type) == (refund_event.event_id, "ActivityTaskScheduled")
    assert divergence.history_did == "make a refund in the ERP (create_refund)"
    assert divergence.code_does == "write the ticket's changes to the read model (project_ticket_changes)"
    assert divergence.last_decision == "task_claimed (by ana)"
    assert "Nondeterminism" in divergence.temporal_says and "Failure {" not in divergence.temporal_says
    assert str(divergence).startswith(f"ticket-recorded-refund diverges at event {refund_event.event_id} "
                                      "(ActivityTaskScheduled): the history did \"make a refund in the ERP")


@pytest.mark.skipif(RECORDING, reason="recording run")
async def test_a_history_that_replays_has_nothing_to_explain():
    path = HISTORIES / "ticket_refunded.json"
    history = WorkflowHistory.from_json("ticket-recorded-refund", path.read_text())
    assert await explain(Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter), history) is None


@pytest.mark.skipif(RECORDING, reason="recording run")
def test_history_replay_prints_where_a_history_departs_from_the_code(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from cli.main import app
    from settings import get_settings

    monkeypatch.setenv("TICKETFLOW_PAYLOAD_ENCRYPTION", "false")
    get_settings.cache_clear()
    try:
        same = tmp_path / "refunded.json"
        same.write_text((HISTORIES / "ticket_refunded.json").read_text())
        result = CliRunner().invoke(app, ["history", "replay", str(same)])
        assert result.exit_code == 0, result.output
        assert "replay OK" in result.output

        # A history whose refund went to another activity than today's code calls.
        tampered = tmp_path / "tampered.json"
        tampered.write_text(same.read_text().replace('"name": "create_refund"', '"name": "create_refund_v0"'))
        assert tampered.read_text() != same.read_text()
        result = CliRunner().invoke(app, ["history", "replay", str(tampered)])
        assert result.exit_code == 1
        assert "replay FAILED: ticket-tampered diverges at event" in result.output
        assert 'the history did "run activity create_refund_v0"' in result.output
        assert "today's code does \"make a refund in the ERP (create_refund)\"" in result.output
    finally:
        get_settings.cache_clear()


@pytest.mark.skipif(RECORDING, reason="recording run")
def test_there_are_histories_to_replay():
    assert len(recorded()) >= 2


def _input(ticket_id: str, **policy) -> TicketInput:
    return TicketInput(
        ticket_id=ticket_id, customer_id="CUST-0001", subject="Where is my parcel?",
        body="ORD-1001 was due on Monday.", order_id="ORD-1001", department="logistics",
        opened_at=datetime(2026, 11, 23, 9, 0, tzinfo=UTC), sla=load_sla_config(),
        policy=TicketPolicy(gather_context=False, **policy),
    )


def _faq_answer(query: FaqQuery) -> FaqResult:
    match = FaqMatch(entry_id="where-is-my-parcel", department="logistics", question="Where is my parcel?",
                     score=0.93, semantic_score=0.91, lexical_score=0.2)
    return FaqResult(index_version="v-recorded", decision=FaqDecision.answer, best=match, confidence=0.98,
                     threshold=0.8, answer="Track it at /orders.", alternatives=[])


async def _agent_resolves(h, env):  # noqa: ANN001
    await work_task(h, TaskOutcome.resolve, reply="It arrives tomorrow.")


async def _bot_answers(h, env):  # noqa: ANN001
    while (await h.query(TicketWorkflow.state)).status.value != "bot_answered":
        await asyncio.sleep(0.05)
    await h.signal(TicketWorkflow.customer_feedback, CustomerFeedback(helpful=True))


async def _refunded(h, env):  # noqa: ANN001
    await work_task(h, TaskOutcome.resolve, reply="Refunded 5.00.",
                    refund=RefundDecision(amount=Decimal("5.00"), reason="parcel late"))


async def _escalated(h, env):  # noqa: ANN001
    first = await work_task(h, TaskOutcome.escalate)
    await work_task(h, TaskOutcome.resolve, agent="sam", not_id=first.task_id, reply="Sorted, sorry for the wait.")


async def _transferred(h, env):  # noqa: ANN001
    first = await work_task(h, TaskOutcome.transfer, queue="billing")
    await work_task(h, TaskOutcome.resolve, agent="bea", not_id=first.task_id, reply="Billing fixed it.")


async def _sla_breached(h, env):  # noqa: ANN001
    task = await open_task(h)
    await env.sleep(timedelta(minutes=65))  # past the one-hour first response target
    while "sla_breached" not in [e.kind for e in (await h.query(TicketWorkflow.state)).timeline]:
        await asyncio.sleep(0.05)
    await work_task(h, TaskOutcome.resolve, agent="sam", reply="Late, but here.")
    del task


async def _reopened(h, env):  # noqa: ANN001
    first = await work_task(h, TaskOutcome.resolve, reply="Done.")
    await env.sleep(timedelta(hours=24))  # within the quiet period
    await h.signal(TicketWorkflow.customer_message, CustomerMessage(message_id="m1", text="Still not here!"))
    await work_task(h, TaskOutcome.resolve, not_id=first.task_id, reply="Resent today.")


def _one_hour_sla() -> SlaConfig:
    return SlaConfig(calendar=BusinessCalendar.always_open("UTC"), policies=[
        SlaPolicy(priority=p, target=SlaTarget(first_response=timedelta(hours=1), resolution=timedelta(hours=4)),
                  warn_at=0.5, escalations=[RaisePriority(), MoveToQueue(queue="supervisors")])
        for p in Priority])


async def _return_approved(h, env):  # noqa: ANN001
    await approve(h)  # the parcel is scanned at the third look, six hours apart


async def _return_rejected(h, env):  # noqa: ANN001
    await work_task(h, "reject", reply="Used items cannot come back.")


# One history per branch of each case type: file name -> (input, what the people do). The
# workflow is the input's: a ReturnInput runs a return request. Recording writes only the
# files that are missing: the old ones are what older code did.
SCENARIOS = {
    "ticket_resolved_by_agent": (lambda: _input("recorded-agent", faq_enabled=False), _agent_resolves),
    "ticket_answered_by_bot": (lambda: _input("recorded-bot", faq_task_queue="faq-recording",
                                              bot_answer_timeout=timedelta(days=2)), _bot_answers),
    "ticket_refunded": (lambda: _input("recorded-refund", faq_enabled=False), _refunded),
    "ticket_escalated": (lambda: _input("recorded-escalation", faq_enabled=False), _escalated),
    "ticket_transferred": (lambda: _input("recorded-transfer", faq_enabled=False), _transferred),
    "ticket_sla_breached": (lambda: _input("recorded-sla", faq_enabled=False).model_copy(
        update={"sla": _one_hour_sla()}), _sla_breached),
    "ticket_reopened": (lambda: _input("recorded-reopen", faq_enabled=False), _reopened),
    "return_approved": (lambda: return_input().model_copy(update={"ticket_id": "recorded-return-approved"}),
                        _return_approved),
    "return_rejected": (lambda: return_input().model_copy(update={"ticket_id": "recorded-return-rejected"}),
                        _return_rejected),
}


@pytest.mark.skipif(RECORDING, reason="recording run")
def test_every_branch_has_a_recorded_history():
    assert {p.stem for p in recorded()} >= set(SCENARIOS)


@pytest.mark.skipif(not RECORDING, reason="set TICKETFLOW_RECORD_HISTORIES=1 to record")
async def test_record_histories(task_queue):
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=temporal_test_server())
    fake = FakeReadModel()

    @activity.defn(name="answer_faq")
    async def answer_faq(query: FaqQuery) -> FaqResult:
        return _faq_answer(query)

    try:
        async with Worker(env.client, task_queue=task_queue, workflows=[TicketWorkflow, ReturnRequestWorkflow],
                          activities=[*fake.activities(), *Systems().activities()]), \
                Worker(env.client, task_queue="faq-recording", activities=[answer_faq]):
            for name, (make_input, people) in SCENARIOS.items():
                path = HISTORIES / f"{name}.json"
                if path.exists():
                    continue
                inp = make_input()
                case = ReturnRequestWorkflow if isinstance(inp, ReturnInput) else TicketWorkflow
                h = await env.client.start_workflow(case.run, inp, id=f"{case.CASE_TYPE}-{inp.ticket_id}",
                                                    task_queue=task_queue)
                await people(h, env)
                await h.result()
                path.write_text((await h.fetch_history()).to_json())
    finally:
        await env.shutdown()
