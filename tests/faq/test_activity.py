"""The FAQ activities as a worker runs them: pinned versions, new versions picked up
without a restart, and failures a workflow can tell apart."""

from __future__ import annotations

import pytest
from sqlalchemy import update
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

import faq.knowledge_base as kb
from activities.faq import FAQ_INDEX_UNREADABLE, FAQ_MODEL_MISSING, FaqActivities
from faq.encoder import FaqModelError
from models.db import Database
from models.faq import FaqDecision, FaqEntry, FaqIndexVersionRow, FaqPublishRequest, FaqQuery
from tests.faq.knowledge_base_helpers import reset_knowledge_base

pytestmark = pytest.mark.slow  # loads the embedding model (once per session)

QUESTION = "I was charged twice for one order"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def kb_db(db: Database, encoder) -> Database:
    reset_knowledge_base(db)
    kb.seed_demo_kb(db)
    return db


def change_answer(db: Database, entry_id: str, answer: str) -> None:
    entry = FaqEntry.model_validate(db.call(kb.get_entry, entry_id).model_dump(include=set(FaqEntry.model_fields)))
    db.call(kb.update_entry, entry.model_copy(update={"answer": answer}))


def test_a_new_version_is_used_within_seconds_and_a_pinned_one_stays(kb_db: Database):
    clock = Clock()
    worker = FaqActivities(kb_db, indexes=kb.PublishedIndexes(kb_db, current_ttl=2.0, clock=clock))
    env = ActivityEnvironment()
    first = env.run(worker.answer_faq, FaqQuery(text=QUESTION))

    change_answer(kb_db, "double-charge", "We refund the second charge today.")
    newer = kb.publish(kb_db)  # as the API's publish activity on another host would
    cached = env.run(worker.answer_faq, FaqQuery(text=QUESTION))
    clock.now += 2.0
    current = env.run(worker.answer_faq, FaqQuery(text=QUESTION))
    pinned = env.run(worker.answer_faq, FaqQuery(text=QUESTION, index_version=first.index_version))

    assert first.decision == FaqDecision.answer and first.best.entry_id == "double-charge"
    assert newer.index_version != first.index_version
    assert cached.index_version == first.index_version  # read again at most every two seconds
    assert current.index_version == newer.index_version
    assert current.answer == "We refund the second charge today."
    assert pinned.index_version == first.index_version and pinned.answer == first.answer


def test_publishing_through_the_activity_makes_the_change_current(kb_db: Database):
    worker = FaqActivities(kb_db, indexes=kb.PublishedIndexes(kb_db, current_ttl=0))
    env = ActivityEnvironment()
    change_answer(kb_db, "double-charge", "Changed.")
    revision = kb_db.call(kb.kb_state).revision

    publication = env.run(worker.publish_faq_index, FaqPublishRequest(kb_revision=revision))
    again = env.run(worker.publish_faq_index, FaqPublishRequest(kb_revision=revision))

    assert publication.status == "published" and publication.kb_revision == revision
    assert again == publication  # nothing left to do
    assert env.run(worker.answer_faq, FaqQuery(text=QUESTION)).answer == "Changed."


def test_a_missing_model_fails_publishing_for_good_and_says_so(kb_db: Database, monkeypatch):
    def no_model(*args, **kwargs):
        raise FaqModelError("cannot load FAQ embedding model 'x'")

    monkeypatch.setattr(kb, "load_encoder", no_model)
    worker = FaqActivities(kb_db)
    change_answer(kb_db, "double-charge", "Changed.")
    revision = kb_db.call(kb.kb_state).revision

    with pytest.raises(ApplicationError) as failed:
        ActivityEnvironment().run(worker.publish_faq_index, FaqPublishRequest(kb_revision=revision))

    assert failed.value.type == FAQ_MODEL_MISSING and failed.value.non_retryable
    publication = kb_db.call(kb.index_status).publication
    assert publication.status == "failed" and "cannot load FAQ embedding model" in publication.detail


def test_an_unreadable_index_fails_for_good_instead_of_guessing(kb_db: Database):
    version = kb_db.call(kb.kb_state).current_version
    kb_db.call(lambda s: s.execute(
        update(FaqIndexVersionRow).where(FaqIndexVersionRow.version == version).values(artifact=b"garbage")
    ))

    with pytest.raises(ApplicationError) as failed:
        ActivityEnvironment().run(FaqActivities(kb_db).answer_faq, FaqQuery(text=QUESTION))

    assert failed.value.type == FAQ_INDEX_UNREADABLE and failed.value.non_retryable
