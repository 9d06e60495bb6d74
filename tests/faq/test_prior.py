"""Confidence before a knowledge base has taught the bot anything: the shipped prior, its
blend with a knowledge base's own evidence, and questions the knowledge base cannot answer."""

from __future__ import annotations

import numpy as np
import pytest

from faq.calibration import PRIOR_FEATURES, Calibrator, out_of_scope_threshold
from faq.index import FaqIndex
from faq.prior import PRIOR_FILE, fit, load_prior
from models.faq import FaqDecision, FaqEntry, FaqEvidence
from tests.faq.conftest import KNOWLEDGE_BASE

DIMENSION = 32


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def topics(count: int, variants: int, spread: float, seed: int = 0) -> tuple[list[FaqEntry], np.ndarray, np.ndarray]:
    """``count`` entries around random directions; each variant (and question) is its
    entry's direction plus noise of ``spread``."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(count, DIMENSION)))
    vectors = unit(np.repeat(centres, variants, axis=0) + spread * rng.normal(size=(count * variants, DIMENSION)))
    entries = [FaqEntry(id=f"e{i:02d}", questions=[f"question {i} {v}" for v in range(variants)], answer=f"answer {i}")
               for i in range(count)]
    return entries, vectors, centres


def held_out_knowledge_base() -> tuple[FaqIndex, list[str], list[str], np.ndarray]:
    """30 noisy topics indexed with 4 of their 6 variants; the other 2 of each are the
    held-out questions: the index, the questions, their entries and their vectors."""
    entries, vectors, _ = topics(30, 6, 0.6, seed=2)
    kept = [e.model_copy(update={"questions": e.questions[:4]}) for e in entries]
    index_rows = [i * 6 + v for i in range(30) for v in range(4)]
    held_rows = [i * 6 + v for i in range(30) for v in (4, 5)]
    index = FaqIndex.from_vectors(kept, vectors[index_rows], model_name="test")
    questions = [entries[r // 6].questions[r % 6] for r in held_rows]
    expected = [entries[r // 6].id for r in held_rows]
    return index, questions, expected, vectors[held_rows]


def test_the_shipped_prior_is_a_model_of_the_prior_features_with_its_provenance():
    prior = load_prior()
    text = PRIOR_FILE.read_text(encoding="utf-8")

    assert prior.features == PRIOR_FEATURES and len(prior.weights) == len(PRIOR_FEATURES)
    assert "BANKING77" in text and "CC BY 4.0" in text and '"knowledge_bases": 300' in text
    # More similar and further ahead of the runner-up is surer; a close neighbour entry is less sure.
    weight = dict(zip(prior.features, prior.weights, strict=True))
    assert weight["score"] + weight["semantic"] > 0 and weight["gap"] > 0 and weight["neighbour"] < 0


def test_one_variant_per_entry_answers_from_the_prior_where_it_is_sure():
    entries, vectors, centres = topics(12, 1, 0.3)
    index = FaqIndex.from_vectors(entries, vectors, model_name="test")

    calibrated, report = index.calibrate([], [], prior=load_prior(), target_precision=0.9)

    assert report.prior and report.samples == 0 and report.top1_accuracy is None
    assert calibrated.calibrator == load_prior() and calibrated.thresholds.default == 0.9
    asked = calibrated.search_vectors(unit(centres[:1]), ["question 0 0"])[0]
    nowhere = calibrated.search_vectors(unit(np.ones((1, DIMENSION))), ["something else"])[0]
    assert asked.best.entry_id == "e00" and asked.decision == FaqDecision.answer and asked.confidence >= 0.9
    assert nowhere.decision == FaqDecision.escalate


def test_the_same_similarity_is_trusted_more_among_distinct_topics_than_among_close_ones():
    prior = load_prior()
    distinct_entries, distinct, _ = topics(10, 2, 0.3, seed=1)
    close_entries, close, _ = topics(10, 2, 0.3, seed=1)
    close = unit(close + 2.0 * unit(np.ones(DIMENSION)))  # every entry pushed towards one direction
    confidence = []
    for entries, vectors in ((distinct_entries, distinct), (close_entries, close)):
        index, _ = FaqIndex.from_vectors(entries, vectors, model_name="test").calibrate([], [], prior=prior)
        shape = index.kb_shape()
        confidence.append(index.search_vectors(vectors[:1], ["question 0 0"])[0].confidence)
        assert 0.0 < shape.kb_neighbour < 1.0
    assert confidence[0] > confidence[1]


def test_a_prior_is_outweighed_by_enough_of_the_knowledge_bases_own_evidence():
    prior = Calibrator(features=("score", "gap"), intercept=0.0, weights=[1.0, 1.0])
    truth = np.array([-6.0, 12.0, 3.0])
    rng = np.random.default_rng(0)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.uniform(0.0, 1.0, size=(n, 2))
        p = 1.0 / (1.0 + np.exp(-(truth[0] + x @ truth[1:])))
        return x, rng.random(n) < p

    few = Calibrator.fit(*sample(5), prior=prior)
    many = Calibrator.fit(*sample(50_000), prior=prior)

    def coefficients(c: Calibrator) -> np.ndarray:
        return np.array([c.intercept, *c.weights])

    assert np.abs(coefficients(few) - coefficients(prior)).max() < 1.0
    assert np.abs(coefficients(many) - truth).max() < 1.0
    assert many.features == prior.features


def test_a_feature_that_varies_little_is_not_held_to_the_prior_more_firmly_than_one_that_varies_a_lot():
    """Similarities span about 0.1 across a knowledge base's questions: with the pull of the
    prior counted per unit of coefficient, thousands of questions could hardly move a
    similarity's weight, and the bot kept the prior's view of which answers are safe."""
    prior = Calibrator(features=("score", "gap"), intercept=0.0, weights=[1.0, 1.0])
    truth = np.array([-28.0, 40.0, 1.0])
    rng = np.random.default_rng(1)
    x = np.column_stack([rng.normal(0.7, 0.05, 3000), rng.uniform(0.0, 1.0, 3000)])
    right = rng.random(3000) < 1.0 / (1.0 + np.exp(-(truth[0] + x @ truth[1:])))

    fitted = Calibrator.fit(x, right, prior=prior)

    assert abs(fitted.weights[0] - truth[1]) < 8.0  # the penalty per unit would have kept it below 10


def test_a_rescaled_model_keeps_its_ranking_and_speaks_of_the_new_mix():
    rng = np.random.default_rng(2)
    ranking = Calibrator(features=("score", "gap"), intercept=-3.0, weights=[4.0, 2.0])
    x = rng.uniform(0.0, 1.0, size=(4000, 2))
    right = rng.random(4000) < 1.0 / (1.0 + np.exp(-(2.0 + 0.5 * ranking.logits(x))))

    rescaled = ranking.rescaled(x, right)

    assert np.array_equal(np.argsort(rescaled.confidence(x)), np.argsort(ranking.confidence(x)))
    assert abs(rescaled.confidence(x).mean() - right.mean()) < 0.01
    assert abs(ranking.confidence(x).mean() - right.mean()) > 0.1
    assert rescaled.features == ranking.features


def test_calibration_learns_its_ranking_from_every_unanswerable_example_and_its_probabilities_from_the_mix():
    index, questions, expected, held = held_out_knowledge_base()

    calibrated, report = index.calibrate(questions, expected, prior=load_prior(), out_of_scope_share=0.2,
                                         vectors=held)

    answerable = calibrated.search_vectors(held, questions)
    unanswerable = calibrated.search_without_own_entry(questions, expected, vectors=held)
    fitted_on = [(r.confidence, r.best.entry_id == e) for r, e in zip(answerable, expected, strict=True)]
    fitted_on += [(r.confidence, False) for r in unanswerable[: report.out_of_scope_examples]]
    confidence, right = np.array(fitted_on, dtype=float).T
    # The probabilities are about the mix of a fifth unanswerable, not of half.
    assert report.out_of_scope_examples == round(0.25 * len(questions))
    assert abs(confidence.mean() - right.mean()) < 0.05
    # The ranking puts right answers above unanswerable questions more often than their
    # similarity does.
    right_answers = [r for r, e in zip(answerable, expected, strict=True) if r.best.entry_id == e]

    def above(value) -> float:
        mine, others = np.array([value(r) for r in right_answers]), np.array([value(r) for r in unanswerable])
        return float((mine[:, None] > others[None, :]).mean())

    assert above(lambda r: r.confidence) > above(lambda r: r.best.score)


def test_the_out_of_scope_threshold_keeps_back_the_asked_share():
    confidences = np.linspace(0.0, 1.0, 101)

    threshold = out_of_scope_threshold(confidences, 0.9)

    assert (confidences < threshold).mean() >= 0.9 > (confidences < np.nextafter(threshold, 0)).mean() - 0.011
    assert out_of_scope_threshold(np.array([]), 0.9) == 0.0
    assert out_of_scope_threshold(confidences, 0.0) == 0.0


def test_calibration_raises_thresholds_until_the_asked_share_of_unanswerable_questions_escalates():
    index, questions, expected, held = held_out_knowledge_base()

    loose, loose_report = index.calibrate(questions, expected, prior=load_prior(), target_precision=0.5,
                                          vectors=held)
    strict, report = index.calibrate(questions, expected, prior=load_prior(), target_precision=0.5,
                                     out_of_scope_recall=0.95, vectors=held)

    assert report.out_of_scope_recall >= 0.95 > loose_report.out_of_scope_recall
    assert strict.thresholds.default > loose.thresholds.default
    unanswerable = strict.search_without_own_entry(questions, expected, vectors=held)
    assert np.mean([r.decision == FaqDecision.escalate for r in unanswerable]) >= 0.95


def test_a_question_searched_without_its_own_entry_never_sees_that_entry():
    entries, vectors, _ = topics(8, 30, 0.2, seed=3)
    index = FaqIndex.from_vectors(entries, vectors, model_name="test")
    own = np.array([0, 5])

    [first, second] = index._out_of_scope(vectors[[0, 5 * 30]], ["question 0 0", "question 5 0"], own)

    for candidates, entry in ((first, 0), (second, 5)):
        assert entry not in candidates.entries and entry not in candidates.retrieved_entries
        assert candidates.left_out == entry and len(candidates.retrieved_entries) == index.params.candidates


def test_answers_reviewed_as_wrong_make_the_bot_less_sure_and_evidence_of_deleted_entries_is_ignored():
    entries, vectors, centres = topics(12, 2, 0.3, seed=4)
    index = FaqIndex.from_vectors(entries, vectors, model_name="test")
    rng = np.random.default_rng(0)
    asked = unit(np.repeat(centres, 5, axis=0) + 0.05 * rng.normal(size=(60, DIMENSION)))
    wrong = [FaqEvidence(question=f"asked {i}", entry_id=f"e{i // 5:02d}", correct=False, source="customer")
             for i in range(60)]
    deleted = [FaqEvidence(question="about a deleted entry", entry_id="gone", correct=True, source="agent")]

    trusting, _ = index.calibrate([], [], prior=load_prior())
    corrected, report = index.calibrate([], [], prior=load_prior(), evidence=wrong + deleted,
                                        evidence_vectors=np.vstack([asked, unit(centres[:1])]))

    # the deleted entry's is left out, and so is a wrong choice this index no longer makes
    assert 50 <= report.evidence_examples <= 60
    query = unit(centres[3:4])
    before = trusting.search_vectors(query, ["question 3 0"])[0].confidence
    after = corrected.search_vectors(query, ["question 3 0"])[0].confidence
    assert after < before - 0.1


def test_fitting_a_prior_on_labelled_questions_gives_a_model_of_the_prior_features():
    entries, vectors, _ = topics(10, 20, 0.5, seed=5)
    texts = [f"{e.id} variant {v}" for e in entries for v in range(20)]
    labels = [e.id for e in entries for _ in range(20)]

    prior, measured = fit(texts, labels, vectors, model_name="test", knowledge_bases=6, seed=1)

    assert prior.features == PRIOR_FEATURES and measured["examples"] > 0 and 0.0 < measured["right"] < 1.0


@pytest.mark.slow
def test_a_knowledge_base_of_one_question_per_entry_answers_clear_questions_and_escalates_the_rest(encoder):
    one_each = [e.model_copy(update={"questions": e.questions[:1]}) for e in KNOWLEDGE_BASE if e.language == "en"]
    index, _ = FaqIndex.build(one_each, encoder=encoder).calibrate([], [], prior=load_prior(), target_precision=0.9)

    clear = index.search("I forgot my password, how can I reset it?")
    unrelated = index.search("what is the weather like on Mars")

    assert clear.best.entry_id == "password-reset" and clear.decision == FaqDecision.answer
    assert unrelated.decision == FaqDecision.escalate


def test_the_target_precision_and_out_of_scope_recall_come_from_the_settings(monkeypatch):
    import faq.knowledge_base as kb
    from settings import Settings

    monkeypatch.setattr(kb, "get_settings", lambda: Settings(faq_target_precision=0.97, faq_out_of_scope_recall=0.0))

    chosen = kb.calibration_settings()

    assert (chosen.target_precision, chosen.out_of_scope_recall) == (0.97, None)
    assert kb.CALIBRATION.target_precision == 0.9 and kb.CALIBRATION.out_of_scope_recall == 0.95


def test_a_large_knowledge_base_finds_nearly_every_entrys_neighbour_at_a_bounded_cost(monkeypatch):
    import faq.index as index_module

    rng = np.random.default_rng(6)
    themes = unit(rng.normal(size=(20, DIMENSION)))  # entries gather around themes, as questions do
    vectors = unit(themes[rng.integers(0, 20, 600)] + 0.5 * unit(rng.normal(size=(600, DIMENSION))))
    starts = np.arange(len(vectors) + 1)
    enabled = np.ones(len(vectors), dtype=bool)
    enabled[::50] = False  # a disabled entry is nobody's neighbour
    exact = index_module._kb_shape(vectors, starts, enabled)
    monkeypatch.setattr(index_module, "_EXACT_SHAPE_ENTRIES", 100)

    grouped = index_module._kb_shape(vectors, starts, enabled)

    assert len(index_module._shape_groups(vectors, np.flatnonzero(enabled), 2048)) > 1
    assert np.mean(grouped.nearest == exact.nearest) >= 0.8
    assert np.all(grouped.neighbour <= exact.neighbour + 1e-6)  # a grouping can only miss a neighbour
    assert not np.isin(grouped.nearest, np.flatnonzero(~enabled)).any()
