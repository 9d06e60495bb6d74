"""When the bot answers on its own and when it escalates to an agent."""

from __future__ import annotations

import math

import numpy as np
import pytest

from faq.calibration import Calibrator, choose_threshold, choose_thresholds, split_for_calibration
from faq.index import FaqIndex
from models.faq import FaqDecision, FaqEntry, ThresholdPolicy
from tests.faq.conftest import CALIBRATION, KNOWLEDGE_BASE


@pytest.mark.slow
def test_confidence_at_the_threshold_answers_and_just_below_escalates(calibrated_index: FaqIndex):
    question = "someone stole my credit card"
    confidence = calibrated_index.search(question).confidence
    assert confidence is not None and 0.0 < confidence < 1.0

    at = calibrated_index.search(question, thresholds=ThresholdPolicy(default=confidence))
    above = calibrated_index.search(question, thresholds=ThresholdPolicy(default=math.nextafter(confidence, 1.0)))

    assert at.decision == FaqDecision.answer and at.threshold == confidence
    assert above.decision == FaqDecision.escalate
    assert above.best == at.best and above.answer == at.answer  # the agent still sees the suggestion


@pytest.mark.slow
def test_each_department_can_have_its_own_threshold(calibrated_index: FaqIndex):
    strict_cards = ThresholdPolicy(default=0.0, per_department={"cards": 1.0})

    card = calibrated_index.search("someone stole my credit card", thresholds=strict_cards)
    refund = calibrated_index.search("my refund still has not arrived", thresholds=strict_cards)

    assert card.best.department == "cards" and card.decision == FaqDecision.escalate and card.threshold == 1.0
    assert refund.best.department == "billing" and refund.decision == FaqDecision.answer and refund.threshold == 0.0


@pytest.mark.slow
def test_thresholds_set_on_an_index_decide_and_make_a_new_version(calibrated_index: FaqIndex):
    never = calibrated_index.with_thresholds(ThresholdPolicy(default=1.0))
    always = calibrated_index.with_thresholds(ThresholdPolicy(default=0.0))

    assert never.search("I forgot my password").decision == FaqDecision.escalate
    assert always.search("I forgot my password").decision == FaqDecision.answer
    assert len({calibrated_index.version, never.version, always.version}) == 3


@pytest.mark.slow
def test_calibration_makes_confident_answers_for_clear_questions(calibrated_index: FaqIndex):
    clear = calibrated_index.search("I forgot my password")
    unrelated = calibrated_index.search("what is the weather like on Mars")

    assert clear.confidence > 0.5 > unrelated.confidence
    assert unrelated.decision == FaqDecision.escalate


@pytest.mark.slow
def test_too_few_held_out_questions_never_justify_answering_alone(kb_index: FaqIndex):
    questions, expected = zip(*CALIBRATION, strict=True)

    index, report = kb_index.calibrate(list(questions), list(expected), target_precision=0.97)

    assert report.thresholds.default == 1.0 and report.coverage_at_threshold == 0.0
    assert index.search("I forgot my password").decision == FaqDecision.escalate


@pytest.mark.slow
def test_a_question_the_knowledge_base_cannot_answer_is_escalated(calibrated_index: FaqIndex):
    even_odds = ThresholdPolicy(default=0.5)

    [result] = calibrated_index.search_without_own_entry(["I forgot my password"], ["password-reset"], thresholds=even_odds)

    assert result.best.entry_id != "password-reset"
    assert result.decision == FaqDecision.escalate
    assert calibrated_index.search("I forgot my password", thresholds=even_odds).decision == FaqDecision.answer


@pytest.mark.slow
def test_calibration_rejects_questions_for_unknown_entries(kb_index: FaqIndex):
    with pytest.raises(ValueError, match="not in the index: no-such-entry"):
        kb_index.calibrate(["hello"], ["no-such-entry"])


def test_threshold_is_the_lowest_that_keeps_the_target_precision():
    confidences = np.array([0.99, 0.95, 0.90, 0.80, 0.70])
    correct = np.array([True, True, True, False, True])

    assert choose_threshold(confidences, correct, target_precision=1.0, confidence_level=0.5) == 0.90
    assert choose_threshold(confidences, correct, target_precision=0.9, confidence_level=0.5) == 0.90
    assert choose_threshold(confidences, correct, target_precision=0.8, confidence_level=0.5) == 0.70


def test_equal_confidences_are_answered_together_or_not_at_all():
    confidences = np.array([0.9, 0.9, 0.8])
    correct = np.array([True, False, True])

    assert choose_threshold(confidences, correct, target_precision=1.0, confidence_level=0.5) == 1.0


def test_a_few_lucky_questions_do_not_set_a_threshold():
    confidences = np.linspace(0.99, 0.90, 10)
    all_right = np.ones(10, dtype=bool)

    # Ten right out of ten is not evidence of 97% precision at 90% confidence.
    assert choose_threshold(confidences, all_right, target_precision=0.97, confidence_level=0.9) == 1.0
    many = choose_threshold(np.linspace(0.99, 0.5, 500), np.ones(500, dtype=bool), target_precision=0.97)
    assert many == pytest.approx(0.5)


def test_a_department_gets_its_own_threshold_only_with_enough_questions():
    confidences = np.array([0.9, 0.8, 0.7, 0.6, 0.95, 0.85])
    correct = np.array([True, True, False, True, True, True])
    departments = ["cards", "cards", "cards", "cards", "billing", "billing"]

    policy = choose_thresholds(
        confidences, correct, departments, target_precision=1.0, confidence_level=0.5, min_department_samples=3
    )

    assert policy.per_department == {"cards": 0.8}
    assert policy.threshold_for("billing") == policy.default == 0.8
    assert policy.threshold_for("cards") == 0.8


def test_calibrated_confidence_grows_with_the_score_and_is_never_certain():
    rng = np.random.default_rng(0)
    score = rng.uniform(0.2, 1.0, 400)
    correct = rng.uniform(size=400) < score
    features = np.column_stack([score, score / 4, score, np.zeros(400)])

    calibrator = Calibrator.fit(features, correct)
    confidence = calibrator.confidence(features[np.argsort(score)])

    assert np.all(np.diff(confidence) >= 0)
    assert 0.0 < confidence.min() and confidence.max() < 1.0
    assert calibrator.confidence(np.array([[100.0, 100.0, 100.0, 0.0]]))[0] < 1.0


def test_calibration_questions_are_held_out_of_the_knowledge_base():
    entries = KNOWLEDGE_BASE + [
        FaqEntry(id="many", questions=[f"question number {i}" for i in range(20)], answer="A.")
    ]

    kept, questions, expected = split_for_calibration(entries, fraction=0.2, seed=3)

    assert split_for_calibration(entries, fraction=0.2, seed=3) == (kept, questions, expected)
    kept_by_id = {entry.id: entry for entry in kept}
    assert len(kept_by_id["many"].questions) == 16 and expected.count("many") == 4
    for question, entry_id in zip(questions, expected, strict=True):
        assert question not in kept_by_id[entry_id].questions
    # Entries with two questions, and disabled ones, keep all of theirs.
    assert kept_by_id["cancel-order"].questions == ["How can I cancel my order?", "I want to cancel my purchase"]
    assert "summer-promo" not in expected
