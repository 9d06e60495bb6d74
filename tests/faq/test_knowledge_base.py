"""The knowledge base in the database: changes, revisions, publishing index versions.

Runs on SQLite and PostgreSQL. Tests that build an index use the real embedding model
(loaded once per session) and are marked slow for that reason alone.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import timedelta

import pytest
from sqlalchemy import select

import faq.index
import faq.knowledge_base as kb
from faq.index import FaqIndex
from faq.io import FaqImportError, LocatedEntry, entries_to_csv, parse_entries_located
from faq.store import FaqIndexNotFound
from models.db import Database
from models.faq import FaqDecision, FaqEntry, FaqIndexVersionRow, FaqQuery, FaqThresholdOverrides
from tests.faq.conftest import KNOWLEDGE_BASE
from tests.faq.knowledge_base_helpers import reset_knowledge_base

CARD_LOST = next(entry for entry in KNOWLEDGE_BASE if entry.id == "card-lost")
PASSWORD = next(entry for entry in KNOWLEDGE_BASE if entry.id == "password-reset")


@pytest.fixture
def kb_db(db: Database) -> Database:
    return reset_knowledge_base(db)


def revision(db: Database) -> int:
    return db.call(kb.kb_state).revision


def located(*entries: FaqEntry) -> list[LocatedEntry]:
    return parse_entries_located(entries_to_csv(entries), "csv")


# --- changes ---------------------------------------------------------------------------------


def test_each_change_bumps_the_revision_and_a_change_that_changes_nothing_does_not(kb_db: Database):
    _, created = kb_db.call(kb.create_entry, CARD_LOST)
    _, same = kb_db.call(kb.update_entry, CARD_LOST)
    entry, changed = kb_db.call(kb.update_entry, CARD_LOST.model_copy(update={"answer": "Call us."}))
    _, deleted = kb_db.call(kb.delete_entry, CARD_LOST.id)

    assert (created, same, changed, deleted) == (1, 1, 2, 3)
    assert entry.answer == "Call us." and entry.kb_revision == 2
    assert kb_db.call(kb.get_entry, CARD_LOST.id) is None
    assert kb_db.call(lambda s: kb.publication(kb.kb_state(s))).status == "pending"


def test_a_conflicting_change_is_refused_and_writes_nothing(kb_db: Database):
    kb_db.call(kb.create_entry, CARD_LOST)
    same_question = FaqEntry(id="card-gone", questions=["i lost  my CARD", "gone"], answer="A.", department="cards")

    with pytest.raises(kb.FaqEntryConflict, match="exists already"):
        kb_db.call(kb.create_entry, CARD_LOST)
    with pytest.raises(kb.FaqEntryConflict, match="also a question of entry 'card-lost'"):
        kb_db.call(kb.create_entry, same_question)
    with pytest.raises(kb.FaqEntryNotFound):
        kb_db.call(kb.update_entry, PASSWORD)
    with pytest.raises(kb.FaqEntryNotFound):
        kb_db.call(kb.delete_entry, PASSWORD.id)

    assert revision(kb_db) == 1
    assert [e.id for e in kb_db.call(kb.all_entries)] == ["card-lost"]
    # The same question in another language is another entry's business.
    kb_db.call(kb.create_entry, same_question.model_copy(update={"language": "en-GB"}))
    assert revision(kb_db) == 2


def test_entries_are_listed_by_id_a_page_at_a_time(kb_db: Database):
    kb_db.call(kb.import_entries, located(*KNOWLEDGE_BASE))

    first, cursor = kb_db.call(kb.list_entries, limit=3)
    second, cursor2 = kb_db.call(kb.list_entries, limit=10, cursor=cursor)
    billing, _ = kb_db.call(kb.list_entries, limit=10, department="billing", enabled=True)

    ids = [e.id for e in first + second]
    assert ids == sorted(e.id for e in KNOWLEDGE_BASE) and cursor2 is None
    assert [e.id for e in billing] == ["refund-status"]


def test_import_merges_by_id_or_replaces_the_whole_knowledge_base(kb_db: Database):
    first = kb_db.call(kb.import_entries, located(CARD_LOST, PASSWORD))
    changed_card = CARD_LOST.model_copy(update={"answer": "Call us."})
    refund = next(e for e in KNOWLEDGE_BASE if e.id == "refund-status")

    merged = kb_db.call(kb.import_entries, located(changed_card, refund))
    replaced = kb_db.call(kb.import_entries, located(changed_card), replace=True)
    again = kb_db.call(kb.import_entries, located(changed_card), replace=True)

    assert (first.created, first.kb_revision) == (2, 1)
    assert (merged.created, merged.updated, merged.unchanged, merged.deleted) == (1, 1, 0, 0)
    assert (replaced.updated, replaced.unchanged, replaced.deleted) == (0, 1, 2)
    assert (again.unchanged, again.kb_revision) == (1, replaced.kb_revision)  # nothing changed: no new revision
    assert kb_db.call(kb.all_entries) == [changed_card]


def test_an_imported_question_another_entry_asks_is_reported_at_its_line_and_nothing_is_imported(kb_db: Database):
    kb_db.call(kb.create_entry, CARD_LOST)
    data = (
        "id,questions,answer,department\n"
        "password-reset,How do I reset my password?,Use the link.,account\n"
        "card-gone,My card was stolen|Gone card,Freeze it.,cards\n"
    ).encode()

    with pytest.raises(FaqImportError) as rejected:
        kb_db.call(kb.import_entries, parse_entries_located(data, "csv"))

    [problem] = rejected.value.problems
    assert problem.line == 3 and problem.field == "questions" and "'card-lost'" in problem.message
    assert revision(kb_db) == 1 and [e.id for e in kb_db.call(kb.all_entries)] == ["card-lost"]
    # Replacing the knowledge base removes card-lost, so its question is free.
    kb_db.call(kb.import_entries, parse_entries_located(data, "csv"), replace=True)
    assert [e.id for e in kb_db.call(kb.all_entries)] == ["card-gone", "password-reset"]


def test_thresholds_set_by_hand_are_a_change_and_setting_them_again_is_not(kb_db: Database):
    overrides = FaqThresholdOverrides(default=0.5, per_department={"billing": 1.0})

    assert kb_db.call(kb.set_threshold_overrides, overrides) == 1
    assert kb_db.call(kb.set_threshold_overrides, overrides) == 1
    assert kb_db.call(kb.index_status).threshold_overrides == overrides


# --- publishing and answering ----------------------------------------------------------------


@pytest.mark.slow
def test_every_change_publishes_a_new_version_and_undoing_it_brings_the_old_one_back(kb_db: Database, encoder):
    kb_db.call(kb.import_entries, located(*KNOWLEDGE_BASE))
    first = kb.publish(kb_db, encoder=encoder)
    kb_db.call(kb.update_entry, CARD_LOST.model_copy(update={"answer": "Call us."}))
    second = kb.publish(kb_db, encoder=encoder)
    kb_db.call(kb.update_entry, CARD_LOST)
    undone = kb.publish(kb_db, encoder=encoder)
    nothing_new = kb.publish(kb_db, encoder=encoder)

    assert first.status == second.status == undone.status == "published"
    assert (first.kb_revision, second.kb_revision, undone.kb_revision) == (1, 2, 3)
    assert first.index_version != second.index_version
    assert undone.index_version == first.index_version  # same content, same version
    assert nothing_new == undone
    status = kb_db.call(kb.index_status)
    assert status.current.version == first.index_version and status.current.artifact_bytes > 0
    assert status.current.info.entries == len(KNOWLEDGE_BASE)


@pytest.mark.slow
def test_a_rebuild_encodes_only_questions_it_has_not_seen(kb_db: Database, encoder, monkeypatch):
    monkeypatch.setattr(kb, "_encoded", OrderedDict())  # as in a new process
    kb.seed_demo_kb(kb_db)
    encoded: list[str] = []
    real_encode = faq.index.encode

    def counting_encode(model, texts, **kwargs):
        encoded.extend(texts)
        return real_encode(model, texts, **kwargs)

    monkeypatch.setattr(faq.index, "encode", counting_encode)
    monkeypatch.setattr(kb, "encode", counting_encode)
    refund = kb_db.call(kb.get_entry, "refund-status")
    changed = FaqEntry(**refund.model_dump(include=set(FaqEntry.model_fields)))
    changed.questions.append("Is my refund on its way?")
    kb_db.call(kb.update_entry, changed)

    published = kb.publish(kb_db, encoder=encoder)

    assert published.status == "published"
    assert encoded == ["Is my refund on its way?"]


@pytest.mark.slow
def test_a_late_build_of_an_older_revision_never_replaces_a_newer_version(kb_db: Database, encoder):
    kb_db.call(kb.create_entry, CARD_LOST)
    old_index, _ = kb.build_index([CARD_LOST], encoder=encoder)
    kb_db.call(kb.create_entry, PASSWORD)
    newer = kb.publish(kb_db, encoder=encoder)

    state = kb_db.call(kb._store_and_publish, old_index, None, old_index.to_bytes(), 1, 0.1)

    assert state.current_version == newer.index_version and state.published_revision == 2
    assert kb_db.call(kb.load_artifact, old_index.version) is None  # not even stored


@pytest.mark.slow
def test_thresholds_set_by_hand_stay_in_later_versions_until_reset(kb_db: Database, encoder):
    kb.seed_demo_kb(kb_db, publish_index=False)
    kb.publish(kb_db, encoder=encoder)
    indexes = kb.PublishedIndexes(kb_db)

    kb_db.call(kb.set_threshold_overrides, FaqThresholdOverrides(default=0.5, per_department={"billing": 1.0}))
    overridden = kb.publish(kb_db, encoder=encoder)
    kb_db.call(kb.delete_entry, "contact-hours")
    later = kb.publish(kb_db, encoder=encoder)
    kb_db.call(kb.set_threshold_overrides, FaqThresholdOverrides())
    reset = kb.publish(kb_db, encoder=encoder)

    for publication in (overridden, later):
        thresholds = indexes.get(publication.index_version).thresholds
        assert thresholds.default == 0.5 and thresholds.threshold_for("billing") == 1.0
    calibrated = kb_db.call(kb.index_status).current.calibration.thresholds
    assert indexes.get(reset.index_version).thresholds == calibrated and calibrated.default != 0.5


@pytest.mark.slow
def test_the_demo_knowledge_base_is_seeded_once_and_answers_clear_questions_itself(kb_db: Database, encoder):
    published = kb.seed_demo_kb(kb_db)
    indexes = kb.PublishedIndexes(kb_db)

    clear = indexes.answer(FaqQuery(text="I was charged twice for one order"))
    unrelated = indexes.answer(FaqQuery(text="what is the weather like on Mars"))

    assert published.status == "published"
    status = kb_db.call(kb.index_status)
    assert status.current.calibrated and status.current.calibration.samples >= 30
    assert status.current.info.thresholds.default < 1.0  # enough held-out questions to answer some alone
    assert clear.best.entry_id == "double-charge" and clear.decision == FaqDecision.answer
    assert clear.index_version == published.index_version
    assert unrelated.decision == FaqDecision.escalate
    assert kb.seed_demo_kb(kb_db) is None
    for entry in kb_db.call(kb.all_entries):
        kb_db.call(kb.delete_entry, entry.id)
    assert kb.seed_demo_kb(kb_db) is None  # emptied on purpose: left empty


@pytest.mark.slow
def test_two_variants_per_entry_answer_from_the_prior_and_an_empty_knowledge_base_escalates(kb_db: Database, encoder):
    indexes = kb.PublishedIndexes(kb_db, current_ttl=0)
    never_published = indexes.answer(FaqQuery(text="I forgot my password"))
    two_variants_each = [e.model_copy(update={"questions": e.questions[:2]}) for e in KNOWLEDGE_BASE]
    kb_db.call(kb.import_entries, located(*two_variants_each))
    kb.publish(kb_db, encoder=encoder)

    few = kb_db.call(kb.index_status).current
    sure = indexes.answer(FaqQuery(text="I forgot my password, how do I reset it?"))
    unrelated = indexes.answer(FaqQuery(text="what is the weather like on Mars"))
    for entry in two_variants_each:
        kb_db.call(kb.delete_entry, entry.id)
    empty = kb.publish(kb_db, encoder=encoder)
    emptied = indexes.answer(FaqQuery(text="I forgot my password"))

    assert never_published.index_version == kb.NO_INDEX and never_published.decision == FaqDecision.escalate
    # Nothing to hold out: the prior alone calibrates, and the threshold is the target precision.
    assert few.calibrated and few.calibration.prior and few.calibration.samples == 0
    assert few.info.thresholds.default == kb.CALIBRATION.target_precision
    assert sure.best.entry_id == "password-reset" and sure.decision == FaqDecision.answer
    assert sure.confidence >= sure.threshold
    assert unrelated.decision == FaqDecision.escalate and unrelated.confidence < unrelated.threshold
    current = kb_db.call(kb.index_status).current
    assert empty.status == "published" and current.entries == 0 and current.calibration is None
    assert emptied.index_version == empty.index_version and emptied.best is None
    assert emptied.decision == FaqDecision.escalate


@pytest.mark.slow
def test_old_artifacts_are_pruned_their_record_stays_and_their_tickets_get_the_current_version(
    kb_db: Database, encoder, monkeypatch
):
    monkeypatch.setattr(kb, "KEEP_ARTIFACTS", 1)
    monkeypatch.setattr(kb, "KEEP_ARTIFACTS_FOR", timedelta(0))
    versions = []
    for answer in ("One.", "Two.", "Three."):
        kb_db.call(kb.import_entries, located(PASSWORD.model_copy(update={"answer": answer})))
        versions.append(kb.publish(kb_db, encoder=encoder).index_version)
    indexes = kb.PublishedIndexes(kb_db)

    with pytest.raises(FaqIndexNotFound, match="not stored"):
        indexes.get(versions[0])
    pinned = indexes.answer(FaqQuery(text="I forgot my password", index_version=versions[0]))
    with pytest.raises(FaqIndexNotFound):
        indexes.answer(FaqQuery(text="I forgot my password", index_version=versions[0]), fall_back_to_current=False)

    assert pinned.index_version == versions[2] and pinned.answer == "Three."
    assert isinstance(indexes.get(versions[2]), FaqIndex)
    query = select(FaqIndexVersionRow.version, FaqIndexVersionRow.artifact_bytes)
    sizes = dict(kb_db.call(lambda session: session.execute(query).all()))
    assert sizes[versions[0]] == sizes[versions[1]] == 0 and sizes[versions[2]] > 0
