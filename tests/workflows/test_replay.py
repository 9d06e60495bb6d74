"""Recorded histories in tests/histories must replay on today's code: a change that alters a
released workflow's commands has to go behind `workflow.patched(...)`.

To record the current version's histories (after a deliberate, patched change, keep the old
files and add new ones): TICKETFLOW_RECORD_HISTORIES=1 pytest tests/workflows/test_replay.py
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from cli.embedded import temporal_test_server
from models.faq import FaqDecision, FaqMatch, FaqQuery, FaqResult
from models.task import TaskOutcome
from models.ticket import CustomerFeedback, TicketInput, TicketPolicy
from policies.sla import load_sla_config
from workflow_fakes import FakeReadModel, claim_request, completion, open_task
from temporalio import activity
from worker import WORKFLOWS
from workflows.ticket import TicketWorkflow

HISTORIES = Path(__file__).resolve().parents[1] / "histories"
RECORDING = os.environ.get("TICKETFLOW_RECORD_HISTORIES") == "1"


def recorded() -> list[Path]:
    return sorted(HISTORIES.glob("*.json"))


@pytest.mark.skipif(RECORDING, reason="recording run")
@pytest.mark.parametrize("path", recorded(), ids=lambda p: p.stem)
async def test_recorded_history_replays(path: Path):
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    await Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter).replay_workflow(history)


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


@pytest.mark.skipif(not RECORDING, reason="set TICKETFLOW_RECORD_HISTORIES=1 to record")
async def test_record_histories(task_queue):
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=temporal_test_server())
    fake = FakeReadModel()

    @activity.defn(name="answer_faq")
    async def answer_faq(query: FaqQuery) -> FaqResult:
        return _faq_answer(query)

    try:
        async with Worker(env.client, task_queue=task_queue, workflows=[TicketWorkflow],
                          activities=fake.activities()), \
                Worker(env.client, task_queue="faq-recording", activities=[answer_faq]):
            # an agent resolves it; quiet period; closed
            h = await env.client.start_workflow(TicketWorkflow.run, _input("recorded-agent", faq_enabled=False),
                                                id="ticket-recorded-agent", task_queue=task_queue)
            task = await open_task(h)
            await h.execute_update(TicketWorkflow.claim_task, claim_request(task_id=task.task_id, agent="ana"))
            await h.execute_update(TicketWorkflow.complete_task, completion(
                task_id=task.task_id, agent="ana", outcome=TaskOutcome.resolve, reply="It arrives tomorrow."))
            await h.result()
            (HISTORIES / "ticket_resolved_by_agent.json").write_text((await h.fetch_history()).to_json())

            # the FAQ bot answers, the customer confirms, closed
            h = await env.client.start_workflow(
                TicketWorkflow.run, _input("recorded-bot", faq_task_queue="faq-recording",
                                           bot_answer_timeout=timedelta(days=2)),
                id="ticket-recorded-bot", task_queue=task_queue)
            import asyncio

            while (await h.query(TicketWorkflow.state)).status.value != "bot_answered":
                await asyncio.sleep(0.05)
            await h.signal(TicketWorkflow.customer_feedback, CustomerFeedback(helpful=True))
            await h.result()
            (HISTORIES / "ticket_answered_by_bot.json").write_text((await h.fetch_history()).to_json())
    finally:
        await env.shutdown()
