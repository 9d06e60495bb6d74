"""Matching with the real embedding model on a small hand-made knowledge base."""

from __future__ import annotations

import pytest

from faq.index import FaqIndex, SearchParams
from models.faq import FaqDecision, FaqEntry
from tests.faq.conftest import KNOWLEDGE_BASE, PARAPHRASES

pytestmark = pytest.mark.slow  # loads the embedding model (once per session)


@pytest.mark.parametrize(("question", "expected"), PARAPHRASES)
def test_a_paraphrase_finds_the_entry_that_answers_it(kb_index: FaqIndex, question: str, expected: str):
    result = kb_index.search(question)

    assert result.best is not None and result.best.entry_id == expected
    assert result.answer == kb_index.entry(expected).answer
    assert result.index_version == kb_index.version


def test_alternatives_are_the_next_three_distinct_entries(kb_index: FaqIndex):
    result = kb_index.search("someone stole my credit card")

    ids = [result.best.entry_id] + [m.entry_id for m in result.alternatives]
    assert len(result.alternatives) == 3 and len(set(ids)) == 4
    scores = [result.best.score] + [m.score for m in result.alternatives]
    assert scores == sorted(scores, reverse=True)


def test_a_disabled_entry_is_never_returned_even_for_its_own_question(kb_index: FaqIndex):
    for department in (None, "billing"):
        result = kb_index.search("Is the summer discount code still valid?", department=department)

        returned = [result.best.entry_id] + [m.entry_id for m in result.alternatives]
        assert "summer-promo" not in returned


def test_department_and_language_filters_restrict_the_entries(kb_index: FaqIndex):
    billing = kb_index.search("someone stole my credit card", department="billing")
    french = kb_index.search("someone stole my credit card", language="fr")

    assert billing.best.department == "billing"
    assert {m.department for m in billing.alternatives} <= {"billing"}
    assert french.best.entry_id == "carte-perdue" and french.alternatives == []


def test_a_filter_that_leaves_no_entry_escalates_without_a_match(kb_index: FaqIndex):
    result = kb_index.search("where is my parcel", department="legal")

    assert result.best is None and result.decision == FaqDecision.escalate and result.answer is None


def test_an_uncalibrated_index_never_answers_on_its_own(kb_index: FaqIndex):
    result = kb_index.search("I forgot my password")

    assert result.best.entry_id == "password-reset"
    assert result.confidence is None and result.decision == FaqDecision.escalate


def test_searching_one_by_one_or_in_a_batch_gives_the_same_results(kb_index: FaqIndex):
    questions = [question for question, _ in PARAPHRASES]

    batch = kb_index.search_many(questions)
    single = [kb_index.search(q) for q in questions]

    for one, other in zip(batch, single, strict=True):
        assert [m.entry_id for m in [one.best, *one.alternatives]] == [m.entry_id for m in [other.best, *other.alternatives]]
        # Batches pad texts to one length, which moves embeddings by rounding errors only.
        assert one.best.score == pytest.approx(other.best.score, abs=1e-5)


CHINESE = [
    FaqEntry(id="zh-card-lost", questions=["我的银行卡丢了怎么办", "银行卡被偷了"], answer="请立即在应用中冻结您的卡。", language="zh"),
    FaqEntry(id="zh-password", questions=["如何重置登录密码", "我忘记密码了"], answer="请在登录页点击“忘记密码”。", language="zh"),
    FaqEntry(id="zh-refund", questions=["我想申请退款", "退款什么时候到账"], answer="退款将在五个工作日内到账。", language="zh"),
    FaqEntry(id="zh-delivery", questions=["快递多久能送到", "订单什么时候发货"], answer="订单将在两天内发货。", language="zh"),
]


@pytest.mark.parametrize(
    ("question", "expected"),
    [("银行卡丢了", "zh-card-lost"), ("忘记密码", "zh-password"), ("申请退款", "zh-refund"), ("快递多久送到", "zh-delivery")],
)
def test_character_ngrams_match_chinese_questions_without_word_segmentation(encoder, question: str, expected: str):
    # The English model barely tells Chinese sentences apart; for such a language the
    # knowledge base is matched mostly by its character n-grams.
    index = FaqIndex.build(CHINESE, encoder=encoder, params=SearchParams(lexical_weight=3.0))

    result = index.search(question)

    assert result.best.entry_id == expected
    assert result.best.lexical_score > 0.2
    assert all(m.lexical_score < result.best.lexical_score for m in result.alternatives)
