"""What a ticket's workflow records of the FAQ bot reaches its learning loop through the real
projection activities: a customer's verdict, an agent's resolution after the bot's
suggestions. The time-skipping test server, the real answer_faq activity (real embedding
model, demo knowledge base in the test database), the other activities replaced by name."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import faq.knowledge_base as kb
from activities.faq import build_faq_worker
from activities.readmodel import ReadModelActivities
from faq import learning
from models.db import Database
from models.faq import FaqSuggestionPublic
from models.ticket import CustomerFeedback, Ticket, TicketInput, TicketPolicy, TicketStatus
from settings import Settings
from tests.faq.knowledge_base_helpers import reset_knowledge_base
from workflow_fakes import FakeReadModel, claim_request, completion, open_task
from workflows.ticket import TicketWorkflow, workflow_id_for

pytestmark = pytest.mark.slow  # the FAQ worker loads the embedding model (once per session)

PROJECTIONS = {"project_ticket", "project_ticket_changes", "project_task"}


@pytest.fixture
async def started(fresh_time_env: WorkflowEnvironment, task_queue: str, db: Database):
    reset_knowledge_base(db)
    kb.seed_demo_kb(db)
    fakes = [a for a in FakeReadModel().activities() if a.__name__ not in PROJECTIONS]
    projection = ReadModelActivities(db)
    faq_queue = f"faq-{task_queue}"
    policy = TicketPolicy(gather_context=False, faq_task_queue=faq_queue, bot_answer_timeout=timedelta(days=2))
    settings = Settings(database_url=db.url, task_queue=task_queue)
    with ThreadPoolExecutor(max_workers=settings.activity_threads) as executor:
        async with (
            Worker(fresh_time_env.client, task_queue=task_queue, workflows=[TicketWorkflow], activity_executor=executor,
                   activities=[*fakes, projection.project_ticket, projection.project_ticket_changes,
                               projection.project_task]),
            build_faq_worker(fresh_time_env.client, settings, db, executor, faq_queue),
        ):
            async def start(subject: str, body: str) -> WorkflowHandle:
                inp = TicketInput(ticket_id=uuid.uuid4().hex, customer_id="cust-1", subject=subject, body=body,
                                  opened_at=datetime.now(UTC), policy=policy)
                return await fresh_time_env.client.start_workflow(
                    TicketWorkflow.run, inp, id=workflow_id_for(inp.ticket_id), task_queue=task_queue
                )

            yield start


async def suggestion_for(db: Database, ticket_id: str, timeout: float = 30) -> FaqSuggestionPublic:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        items, _ = db.call(learning.list_suggestions, limit=200)
        found = [s for s in items if s.ticket_id == ticket_id]
        if found:
            [suggestion] = found
            return suggestion
        if asyncio.get_running_loop().time() > deadline:
            row = db.call(lambda session: session.get(Ticket, ticket_id))
            seen = "no row" if row is None else (
                f"status {row.status}, revision {row.revision}, timeline {[e['kind'] for e in row.timeline]}, "
                f"faq {row.context.get('faq', {}).get('decision')}")
            raise AssertionError(f"no suggestion for ticket {ticket_id} after {timeout} s; the read model has {seen}")
        await asyncio.sleep(0.05)


async def test_a_customer_who_found_the_bots_answer_helpful_suggests_their_question(started, db: Database):
    handle = await started("Charged twice", "I was charged twice for one order")
    while (await handle.query(TicketWorkflow.state)).status != TicketStatus.bot_answered:
        await asyncio.sleep(0.05)

    await handle.signal(TicketWorkflow.customer_feedback, CustomerFeedback(helpful=True))

    suggestion = await suggestion_for(db, handle.id.removeprefix("ticket-"))
    assert (suggestion.question, suggestion.entry_id) == ("Charged twice I was charged twice for one order",
                                                          "double-charge")
    assert suggestion.correct and suggestion.source == "customer_verdict" and suggestion.status == "pending"


async def test_an_agent_who_sends_a_suggested_answer_suggests_the_question_for_that_entry(started, db: Database):
    handle = await started("Question", "Do you sell gift cards in your shops?")
    task = await open_task(handle, timeout=30)
    chosen = task.context["faq"]["suggestions"][1]["entry_id"]  # not the bot's first choice
    answer = db.call(kb.get_entry, chosen).answer

    await handle.execute_update(TicketWorkflow.claim_task, claim_request(task_id=task.task_id, agent="ana"))
    await handle.execute_update(TicketWorkflow.complete_task, completion(
        task_id=task.task_id, agent="ana", outcome="resolve", reply=f"Hello,\n\n{answer}\n\nAna"))

    suggestion = await suggestion_for(db, task.ticket_id)
    assert (suggestion.entry_id, suggestion.correct, suggestion.task_id) == (chosen, True, task.task_id)
    assert suggestion.question == "Question Do you sell gift cards in your shops?"
    assert suggestion.source == "agent_resolution"
