"""The FAQ bot's learning loop: customers' verdicts and agents' resolutions, as the projection
activities write them, become suggestions; an editor's review of them is all or nothing;
accepted ones are variants and calibration evidence of the next index version.

Runs on SQLite and PostgreSQL. The test that publishes uses the real embedding model.
"""

from __future__ import annotations

import pytest

import faq.knowledge_base as kb
from activities.readmodel import ReadModelActivities
from faq import learning
from faq.io import entries_to_csv, parse_entries_located
from models.db import Database
from models.faq import FaqEntry, FaqEvidence, FaqQuery, FaqSuggestionReview, FaqSuggestionStatus
from models.task import TaskSnapshot, TaskStatus
from tests.faq.conftest import KNOWLEDGE_BASE
from tests.faq.knowledge_base_helpers import reset_knowledge_base
from tests.faq.learning_helpers import NOW, bot, judged, ticket, verdict

CARD_LOST = next(entry for entry in KNOWLEDGE_BASE if entry.id == "card-lost")
CARD_ANSWER = CARD_LOST.answer
PASSWORD_ANSWER = next(entry for entry in KNOWLEDGE_BASE if entry.id == "password-reset").answer


@pytest.fixture
def kb_db(db: Database) -> Database:
    reset_knowledge_base(db)
    db.call(kb.import_entries, parse_entries_located(entries_to_csv(KNOWLEDGE_BASE), "csv"))
    return db


@pytest.fixture
def projection(kb_db: Database) -> ReadModelActivities:
    return ReadModelActivities(kb_db)


def resolved(projection: ReadModelActivities, subject: str, reply: str, *entry_ids: str,
             outcome: str = "resolve") -> str:
    """A ticket the bot only suggested `entry_ids` for, resolved by an agent with `reply`."""
    opened = ticket(subject, "Please help.", 1, [], context=bot("escalate", *entry_ids))
    projection.project_ticket_changes(opened)
    tid = opened.ticket.ticket_id
    projection.project_task(TaskSnapshot(
        task_id=f"{tid}-1", ticket_id=tid, workflow_id="ticket-x", queue="cards", priority="normal",
        status=TaskStatus.completed, assignee="ana", created_at=NOW, completed_at=NOW, outcome=outcome, reply=reply,
        revision=3, context=bot("escalate", *entry_ids),
    ))
    return tid


def pending(db: Database) -> list:
    return db.call(learning.list_suggestions, limit=100, status=FaqSuggestionStatus.pending)[0]


def accept(db: Database, *ids: int, reject: tuple[int, ...] = ()) -> learning.ReviewOutcome:
    return db.call(learning.review, FaqSuggestionReview(accept=list(ids), reject=list(reject)), "sam")


# --- capturing -------------------------------------------------------------------------------


def test_helpful_suggests_the_question_as_a_variant_and_not_helpful_is_evidence_against_the_entry(projection, kb_db):
    helped = judged(projection, "Card gone", "I think I left my card on the bus", "helpful")
    judged(projection, "Card", "my card does not work abroad", "not_helpful")

    suggestions = pending(kb_db)
    assert [(s.question, s.entry_id, s.correct, s.source.value) for s in suggestions] == [
        ("Card gone I think I left my card on the bus", "card-lost", True, "customer_verdict"),
        ("Card my card does not work abroad", "card-lost", False, "customer_verdict"),
    ]
    assert suggestions[0].ticket_id == helped and suggestions[0].conflict_entry_id is None


def test_neither_a_follow_up_nor_silence_is_a_verdict(projection, kb_db):
    judged(projection, "Card gone", "left it on the bus", "follow_up")
    judged(projection, "Card gone", "left it on the train", "timeout")

    assert pending(kb_db) == []


def test_a_question_is_suggested_once_however_often_it_is_seen_or_projected(projection, kb_db):
    tid = judged(projection, "Card gone", "left it on the bus", "helpful")
    projection.project_ticket_changes(ticket("Card gone", "left it on the bus", 2, [verdict("helpful")],
                                             ticket_id=tid, start=1))  # a retried projection
    judged(projection, "Card  gone", "Left it on the BUS", "helpful")  # another customer, the same words

    assert len(pending(kb_db)) == 1


def test_a_question_already_a_variant_is_not_suggested_and_one_of_another_entry_is_flagged(projection, kb_db):
    kb_db.call(kb.create_entry, FaqEntry(id="card-abroad", questions=["Card abroad", "x"], answer="Call us.",
                                         department="cards"))
    judged(projection, "I lost my", "card", "helpful")  # "I lost my card" is card-lost's own question
    judged(projection, "Card", "abroad", "helpful")  # card-abroad's question, judged for card-lost

    [flagged] = pending(kb_db)
    assert flagged.question == "Card abroad" and flagged.conflict_entry_id == "card-abroad"


def test_an_agent_reply_that_is_a_suggested_entrys_answer_suggests_the_question_for_that_entry(projection, kb_db):
    resolved(projection, "Locked out", f"Hi Anna,\n{PASSWORD_ANSWER}\nBest, Ana", "card-lost", "password-reset")
    edited = CARD_ANSWER.replace("order a new one", "order a new card")
    resolved(projection, "Card stolen", edited, "card-lost")

    assert [(s.question, s.entry_id, s.correct, s.source.value) for s in pending(kb_db)] == [
        ("Locked out Please help.", "password-reset", True, "agent_resolution"),
        ("Card stolen Please help.", "card-lost", True, "agent_resolution"),
    ]


def test_an_agent_reply_of_their_own_is_evidence_against_the_bots_first_suggestion(projection, kb_db):
    tid = resolved(projection, "Card fee", "The fee is 2 EUR a month.", "card-lost", "password-reset")
    resolved(projection, "Card fee?", "Let me check and come back to you.", "card-lost", outcome="ask_customer")

    [evidence] = pending(kb_db)
    assert (evidence.entry_id, evidence.correct, evidence.task_id) == ("card-lost", False, f"{tid}-1")


def test_a_reply_is_an_answer_when_lightly_edited_or_wrapped_not_when_it_shares_a_phrase():
    candidates = [("card-lost", CARD_ANSWER), ("password-reset", PASSWORD_ANSWER)]

    assert learning.answered_with(CARD_ANSWER.upper(), candidates) == "card-lost"
    assert learning.answered_with(f"Hello! {PASSWORD_ANSWER} Regards", candidates) == "password-reset"
    assert learning.answered_with("Freeze your card in the app, we will call you tomorrow about the "
                                  "replacement and the fees for the express delivery.", candidates) is None


# --- reviewing -------------------------------------------------------------------------------


def test_accepting_adds_the_variants_in_one_new_revision_and_rejecting_changes_no_entry(projection, kb_db):
    judged(projection, "Card gone", "left it on the bus", "helpful")
    judged(projection, "Card", "blocked at the ATM", "not_helpful")
    judged(projection, "Card eaten", "by the machine", "helpful")
    variant, evidence, unwanted = (s.id for s in pending(kb_db))
    before = kb_db.call(kb.kb_state).revision

    outcome = accept(kb_db, variant, evidence, reject=(unwanted,))

    assert outcome.entries_changed == ["card-lost"] and outcome.kb_revision == before + 1
    assert [s.status for s in outcome.accepted + outcome.rejected] == ["accepted", "accepted", "rejected"]
    assert outcome.accepted[0].reviewed_by == "sam"
    questions = kb_db.call(kb.get_entry, "card-lost").questions
    assert questions == [*CARD_LOST.questions, "Card gone left it on the bus"]
    assert pending(kb_db) == []


def test_a_review_that_only_rejects_makes_no_new_revision(projection, kb_db):
    judged(projection, "Card gone", "left it on the bus", "helpful")
    [suggestion] = pending(kb_db)
    before = kb_db.call(kb.kb_state).revision

    outcome = kb_db.call(learning.review, FaqSuggestionReview(reject=[suggestion.id]), "sam")

    assert outcome.kb_revision is None and kb_db.call(kb.kb_state).revision == before
    assert kb_db.call(kb.get_entry, "card-lost").questions == CARD_LOST.questions


def test_a_review_naming_an_unknown_or_reviewed_suggestion_changes_nothing(projection, kb_db):
    judged(projection, "Card gone", "left it on the bus", "helpful")
    judged(projection, "Card eaten", "by the machine", "helpful")
    first, second = (s.id for s in pending(kb_db))
    accept(kb_db, first)
    revision = kb_db.call(kb.kb_state).revision

    with pytest.raises(learning.FaqSuggestionNotFound, match="no FAQ suggestion 999"):
        accept(kb_db, second, 999)
    with pytest.raises(learning.FaqSuggestionConflict, match=f"suggestion {first} \\(accepted\\) was reviewed"):
        accept(kb_db, second, reject=(first,))

    assert [s.id for s in pending(kb_db)] == [second]
    assert kb_db.call(kb.kb_state).revision == revision
    assert "Card eaten by the machine" not in kb_db.call(kb.get_entry, "card-lost").questions


def test_accepting_a_question_another_entry_asks_is_refused_whole(projection, kb_db):
    judged(projection, "Card gone", "left it on the bus", "helpful")
    judged(projection, "Card eaten", "by the machine", "helpful")
    fine, clashing = (s.id for s in pending(kb_db))
    kb_db.call(kb.create_entry, FaqEntry(id="card-eaten", questions=["card eaten by the machine"],
                                         answer="Call your bank.", department="cards"))

    with pytest.raises(learning.FaqSuggestionConflict, match=f"suggestion {clashing}: .* entry 'card-eaten'"):
        accept(kb_db, fine, clashing)

    assert len(pending(kb_db)) == 2 and kb_db.call(kb.get_entry, "card-lost").questions == CARD_LOST.questions


def test_only_accepted_suggestions_are_calibration_evidence(projection, kb_db):
    judged(projection, "Card gone", "left it on the bus", "helpful")
    judged(projection, "Card", "blocked at the ATM", "not_helpful")
    judged(projection, "Card", "what colour is it", "not_helpful")
    variant, evidence, _ = (s.id for s in pending(kb_db))

    accept(kb_db, variant, evidence)

    assert kb_db.call(kb.calibration_evidence) == [
        FaqEvidence(question="Card gone left it on the bus", entry_id="card-lost", correct=True,
                    source="customer_verdict"),
        FaqEvidence(question="Card blocked at the ATM", entry_id="card-lost", correct=False,
                    source="customer_verdict"),
    ]


@pytest.mark.slow
def test_accepted_variants_are_in_the_next_published_index_built_with_the_evidence(projection, kb_db, encoder,
                                                                                   monkeypatch):
    kb.publish(kb_db, encoder=encoder)
    judged(projection, "Card gone", "left it on the bus", "helpful")
    judged(projection, "Card", "blocked at the ATM", "not_helpful")
    accept(kb_db, *(s.id for s in pending(kb_db)))
    builds: list = []
    real_build = kb.build_index
    monkeypatch.setattr(kb, "build_index", lambda entries, *args, **kwargs: builds.append((entries, kwargs)) or
                        real_build(entries, *args, **kwargs))

    published = kb.publish(kb_db, encoder=encoder)

    [(entries, kwargs)] = builds
    assert published.status == "published" and published.kb_revision == kb_db.call(kb.kb_state).revision
    assert "Card gone left it on the bus" in next(e for e in entries if e.id == "card-lost").questions
    assert [(e.entry_id, e.correct) for e in kwargs["evidence"]] == [("card-lost", True), ("card-lost", False)]
    index = kb.PublishedIndexes(kb_db).get(published.index_version)
    assert index.answer(FaqQuery(text="Card gone left it on the bus")).best.entry_id == "card-lost"
