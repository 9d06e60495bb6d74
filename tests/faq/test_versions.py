"""Index versions: deterministic ids, save and load, several versions side by side."""

from __future__ import annotations

import json

import numpy as np
import pytest

import faq.index
from faq.index import FaqIndex, FaqIndexError
from faq.store import FaqIndexNotFound, FaqIndexStore
from models.faq import FaqQuery
from tests.faq.conftest import KNOWLEDGE_BASE, PARAPHRASES

pytestmark = pytest.mark.slow  # loads the embedding model (once per session)

QUESTIONS = [question for question, _ in PARAPHRASES] + ["summer promo code", "what is the weather like on Mars"]


def test_a_saved_index_loads_with_the_same_version_and_results(calibrated_index: FaqIndex, tmp_path, monkeypatch):
    path = calibrated_index.save(tmp_path)

    def no_encoding(*args, **kwargs):
        raise AssertionError("loading must not encode anything")

    with monkeypatch.context() as patch:
        patch.setattr(faq.index, "encode", no_encoding)
        loaded = FaqIndex.load(path, encoder=calibrated_index._encoder)

    assert path.name == loaded.version == calibrated_index.version
    assert loaded.info() == calibrated_index.info()
    assert loaded.entries == calibrated_index.entries
    assert loaded.search_many(QUESTIONS) == calibrated_index.search_many(QUESTIONS)


def test_the_same_content_gets_the_same_version_in_any_order(kb_index: FaqIndex, encoder):
    shuffled = FaqIndex.build(list(reversed(KNOWLEDGE_BASE)), encoder=encoder)

    assert shuffled.version == kb_index.version


@pytest.mark.parametrize(
    "change",
    [
        {"answer": "Call us to block your card."},
        {"questions": ["I lost my card", "My card was stolen"]},
        {"enabled": False},
        {"department": "security"},
    ],
)
def test_any_change_to_an_entry_makes_a_new_version(kb_index: FaqIndex, encoder, change):
    changed = [e.model_copy(update=change) if e.id == "card-lost" else e for e in KNOWLEDGE_BASE]

    assert FaqIndex.build(changed, encoder=encoder).version != kb_index.version


def test_a_rebuild_encodes_only_questions_it_has_not_seen(kb_index: FaqIndex, encoder, monkeypatch):
    encoded: list[str] = []
    real_encode = faq.index.encode

    def counting_encode(model, texts, **kwargs):
        encoded.extend(texts)
        return real_encode(model, texts, **kwargs)

    monkeypatch.setattr(faq.index, "encode", counting_encode)
    changed = [
        e.model_copy(update={"questions": [*e.questions, "Is my card blocked?"]}) if e.id == "card-lost" else e
        for e in KNOWLEDGE_BASE
    ]

    rebuilt = FaqIndex.build(changed, encoder=encoder, reuse=kb_index)
    assert encoded == ["Is my card blocked?"]
    from_scratch = FaqIndex.build(changed, encoder=encoder)

    assert rebuilt.version == from_scratch.version
    for mine, theirs in zip(rebuilt.search_many(QUESTIONS), from_scratch.search_many(QUESTIONS), strict=True):
        assert mine.best.entry_id == theirs.best.entry_id
        assert mine.best.score == pytest.approx(theirs.best.score, abs=1e-5)


def test_the_store_serves_the_current_version_and_keeps_older_ones(kb_index: FaqIndex, calibrated_index, tmp_path):
    store = FaqIndexStore(tmp_path, keep_loaded=1)
    with pytest.raises(FaqIndexNotFound, match="no FAQ index has been published"):
        store.get()

    first = store.publish(kb_index)
    second = store.publish(calibrated_index)

    # A worker that starts later sees both versions on disk.
    worker = FaqIndexStore(tmp_path, keep_loaded=1, encoder=kb_index._encoder)
    assert worker.current_version() == second and set(worker.versions()) == {first, second}
    pinned = worker.answer(FaqQuery(text="I forgot my password", index_version=first))
    current = worker.answer(FaqQuery(text="I forgot my password"))
    assert pinned.index_version == first and pinned.confidence is None
    assert current.index_version == second and current.confidence is not None
    with pytest.raises(FaqIndexNotFound):
        worker.get("0" * 20)


def test_an_edited_index_file_is_refused(kb_index: FaqIndex, tmp_path):
    path = kb_index.save(tmp_path)
    manifest = json.loads((path / "index.json").read_text())
    manifest["entries"][0]["answer"] = "Something else."
    (path / "index.json").write_text(json.dumps(manifest))

    with pytest.raises(FaqIndexError, match="content is version"):
        FaqIndex.load(path)


def test_an_index_of_vectors_from_elsewhere_keeps_them_with_their_questions(kb_index: FaqIndex, encoder):
    entries = list(reversed(KNOWLEDGE_BASE))
    texts = [q for e in entries for q in e.questions]
    vectors = faq.index.encode(encoder, texts)

    index = FaqIndex.from_vectors(entries, vectors, model_name=kb_index.model_name, encoder=encoder)

    assert index.version == kb_index.version
    assert np.allclose(index._all_vectors(), kb_index._all_vectors(), atol=1e-5)
