"""The character n-gram signal, which needs no word segmentation."""

from __future__ import annotations

import numpy as np
import pytest

from faq.lexical import CharNgramTfidf, similarity_to_all, similarity_to_rows

TEXTS = [
    "我的银行卡丢了怎么办",
    "如何重置登录密码",
    "我想申请退款",
    "快递多久能送到",
    "How do I reset my password?",
    "Ｗｈｅｒｅ is my REFUND?",  # full-width letters, as typed on some keyboards
]


@pytest.mark.parametrize(
    ("query", "expected"),
    [("银行卡丢了", 0), ("重置密码", 1), ("申请退款", 2), ("快递送到了吗", 3), ("where is my refund", 5)],
)
def test_the_text_sharing_the_most_character_ngrams_is_the_most_similar(query: str, expected: int):
    model, rows = CharNgramTfidf.fit(TEXTS)

    similarity = similarity_to_all(rows.T.tocsr(), model.query(query))

    assert int(np.argmax(similarity)) == expected and similarity[expected] > 0.1


def test_both_ways_of_scoring_give_the_cosine_of_the_tfidf_vectors():
    model, rows = CharNgramTfidf.fit(TEXTS)
    query = "I forgot my password, 密码丢了"
    cosine = (model.transform([query]) @ rows.T).toarray().ravel()

    assert similarity_to_all(rows.T.tocsr(), model.query(query)) == pytest.approx(cosine, abs=1e-6)
    some = np.array([4, 1, 0])
    assert similarity_to_rows(rows, some, model.query(query)) == pytest.approx(cosine[some], abs=1e-6)
    assert np.allclose(np.sqrt(rows.multiply(rows).sum(axis=1)), 1.0, atol=1e-6)


def test_ngrams_in_most_texts_of_a_large_collection_carry_no_weight():
    texts = [f"how do I order item number {i}" for i in range(300)]

    model, rows = CharNgramTfidf.fit(texts)

    features, weights = model.query("how do I order")
    assert len(features) == 0 and len(weights) == 0
    assert similarity_to_all(rows.T.tocsr(), model.query("item number 123"))[123] > 0.5
