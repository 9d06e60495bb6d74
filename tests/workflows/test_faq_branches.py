"""The FAQ bot's branches of TicketWorkflow on the time-skipping test server, with the real
answer_faq activity (real embedding model, demo knowledge base in the test database) on its
own task queue, and the other activities replaced by name."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import faq.knowledge_base as kb
from activities.faq import build_faq_worker
from models.db import Database
from models.faq import FaqResult
from models.ticket import CustomerFeedback, CustomerMessage, TicketInput, TicketPolicy, TicketSnapshot, TicketStatus
from settings import Settings
from tests.faq.knowledge_base_helpers import reset_knowledge_base
from workflow_fakes import FakeReadModel, open_task
from workflows.case import FAQ_BOT
from workflows.ticket import TicketWorkflow, workflow_id_for

pytestmark = pytest.mark.slow  # the FAQ worker loads the embedding model (once per session)

# Questions the demo knowledge base answers confidently, and one it does not cover.
CLEAR = ("Charged twice", "I was charged twice for one order")
UNCOVERED = ("Question", "Do you sell gift cards in your shops?")


@pytest.fixture
def demo_kb(db: Database) -> Database:
    reset_knowledge_base(db)
    kb.seed_demo_kb(db)
    return db


@pytest.fixture
async def started(fresh_time_env: WorkflowEnvironment, task_queue: str, demo_kb: Database):
    fake = FakeReadModel()
    faq_queue = f"faq-{task_queue}"
    policy = TicketPolicy(auto_close_after=timedelta(hours=72), gather_context=False, faq_task_queue=faq_queue,
                          bot_answer_timeout=timedelta(days=2))
    settings = Settings(database_url=demo_kb.url, task_queue=task_queue)
    with ThreadPoolExecutor(max_workers=settings.activity_threads) as executor:
        async with (
            Worker(fresh_time_env.client, task_queue=task_queue, workflows=[TicketWorkflow], activities=fake.activities()),
            build_faq_worker(fresh_time_env.client, settings, demo_kb, executor, faq_queue),
        ):
            async def start(subject: str, body: str) -> WorkflowHandle:
                inp = TicketInput(ticket_id=uuid.uuid4().hex, customer_id="cust-1", subject=subject, body=body,
                                  department="general", opened_at=datetime.now(UTC), policy=policy)
                return await fresh_time_env.client.start_workflow(
                    TicketWorkflow.run, inp, id=workflow_id_for(inp.ticket_id), task_queue=task_queue
                )

            yield start, fake


async def status_becomes(handle: WorkflowHandle, status: TicketStatus, timeout: float = 30) -> TicketSnapshot:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        state = await handle.query(TicketWorkflow.state)
        if state.status == status:
            return state
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"status {state.status}, not {status}; timeline {[e.kind for e in state.timeline]}")
        await asyncio.sleep(0.05)


async def test_a_verdict_given_while_the_answer_is_still_being_shown_counts(started):
    """The status turns to bot_answered before the change is shown in the read model; a
    customer who clicks "helpful" at once must not be lost (the verdict used to be reset
    after that projection, and the ticket went to an agent two days later)."""
    start, fake = started
    fake.projection_seconds = 1.0
    handle = await start(*CLEAR)

    await status_becomes(handle, TicketStatus.bot_answered)
    await handle.signal(TicketWorkflow.customer_feedback, CustomerFeedback(helpful=True))

    deadline = asyncio.get_running_loop().time() + 20
    while True:
        state = await handle.query(TicketWorkflow.state)
        verdicts = [e.detail for e in state.timeline if e.kind == "faq_feedback"]
        if verdicts or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.1)
    assert verdicts == ["helpful"], [e.kind for e in state.timeline]
    assert state.status == TicketStatus.resolved


async def faq_results_in_history(handle: WorkflowHandle) -> list[FaqResult]:
    """The answer_faq results as the workflow history stores them."""
    history = await handle.fetch_history()
    scheduled = {
        event.event_id: event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
    }
    results = []
    for event in history.events:
        if event.HasField("activity_task_completed_event_attributes"):
            completed = event.activity_task_completed_event_attributes
            if scheduled[completed.scheduled_event_id] == "answer_faq":
                results += await pydantic_data_converter.decode(completed.result.payloads, [FaqResult])
    return results


async def test_a_confident_answer_the_customer_confirms_resolves_the_ticket(started, demo_kb: Database):
    start, fake = started
    handle = await start(*CLEAR)

    await status_becomes(handle, TicketStatus.bot_answered)
    await handle.signal(TicketWorkflow.customer_feedback, CustomerFeedback(helpful=True))
    result: TicketSnapshot = await handle.result()  # skips the quiet period until it closes

    answer = demo_kb.call(kb.get_entry, "double-charge").answer
    assert [(r.author, r.text) for r in fake.replies] == [(FAQ_BOT, answer)]
    assert result.status == TicketStatus.closed and result.resolution == "answered by the FAQ bot"
    assert fake.tasks == {}  # no agent was needed
    [faq] = await faq_results_in_history(handle)
    assert faq.decision.value == "answer" and faq.best.entry_id == "double-charge"
    assert faq.best.score > 0 and faq.confidence >= faq.threshold
    assert faq.index_version == demo_kb.call(kb.kb_state).current_version
    event = next(e for e in result.timeline if e.kind == "faq_answer")
    assert event.data["entry_id"] == "double-charge" and event.data["index_version"] == faq.index_version
    assert event.data["decision"] == "answer" and event.data["confidence"] == faq.confidence


async def test_a_follow_up_after_a_bot_answer_goes_to_an_agent(started):
    start, fake = started
    handle = await start(*CLEAR)

    await status_becomes(handle, TicketStatus.bot_answered)
    await handle.signal(TicketWorkflow.customer_message,
                        CustomerMessage(message_id="m1", text="That did not help, it is charged twice on my card."))
    task = await open_task(handle, timeout=30)

    state = await handle.query(TicketWorkflow.state)
    assert task.status.value == "open"
    assert task.context["faq"]["decision"] == "answer"
    assert task.context["faq"]["suggestions"][0]["entry_id"] == "double-charge"
    assert "faq_feedback" in [e.kind for e in state.timeline]
    assert next(e for e in state.timeline if e.kind == "faq_feedback").detail == "follow_up"


async def test_an_unsure_bot_hands_the_ticket_to_an_agent_with_its_suggestions(started, demo_kb: Database):
    start, fake = started
    handle = await start(*UNCOVERED)

    task = await open_task(handle, timeout=30)

    assert fake.replies == []  # the bot said nothing to the customer
    faq_context = task.context["faq"]
    assert faq_context["decision"] == "escalate"
    suggestions = faq_context["suggestions"]
    assert len(suggestions) == 4 and all(s["entry_id"] and isinstance(s["score"], float) for s in suggestions)
    assert [s["score"] for s in suggestions] == sorted((s["score"] for s in suggestions), reverse=True)
    [faq] = await faq_results_in_history(handle)
    assert faq.decision.value == "escalate" and faq.confidence < faq.threshold
    assert faq.best.entry_id == suggestions[0]["entry_id"]
    assert faq.index_version == faq_context["index_version"] == demo_kb.call(kb.kb_state).current_version
    state = await handle.query(TicketWorkflow.state)
    assert next(e for e in state.timeline if e.kind == "faq_no_answer").data["decision"] == "escalate"
