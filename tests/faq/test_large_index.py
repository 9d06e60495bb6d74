"""Large indexes search an IVF instead of every vector; they must find what exact search finds."""

from __future__ import annotations

import numpy as np
import pytest

from faq.index import FaqIndex, SearchParams
from models.faq import FaqEntry

DIMENSION = 32


@pytest.fixture(scope="module")
def corpus():
    """3,000 entries in 60 topics, as text embeddings cluster, with departments."""
    rng = np.random.default_rng(1)
    topics = rng.standard_normal((60, DIMENSION))
    vectors = topics[np.arange(3000) % 60] + 0.6 * rng.standard_normal((3000, DIMENSION))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    entries = [
        FaqEntry(
            id=f"e{i:04d}",
            questions=[f"question {i}"],
            answer=f"answer {i}",
            department="cards" if i % 3 == 0 else "billing",
            enabled=i % 50 != 7,
        )
        for i in range(3000)
    ]
    return entries, vectors, rng


def near_copies(rng, vectors, count, cosine):
    sources = rng.choice(len(vectors), size=count, replace=False)
    noise = rng.standard_normal((count, vectors.shape[1])).astype(np.float32)
    noise -= (noise * vectors[sources]).sum(axis=1, keepdims=True) * vectors[sources]
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    return (cosine * vectors[sources] + np.sqrt(1 - cosine**2) * noise).astype(np.float32)


def test_approximate_search_finds_what_exact_search_finds(corpus):
    entries, vectors, rng = corpus
    exact = FaqIndex.from_vectors(entries, vectors, model_name="test", params=SearchParams())
    approximate = FaqIndex.from_vectors(entries, vectors, model_name="test", params=SearchParams(ann_min_vectors=1000))
    queries = near_copies(rng, vectors, 200, 0.85)
    texts = ["a question"] * len(queries)

    assert approximate.info().approximate_search and not exact.info().approximate_search
    found = [r.best.entry_id for r in approximate.search_vectors(queries, texts)]
    expected = [r.best.entry_id for r in exact.search_vectors(queries, texts)]
    recall = np.mean([f == e for f, e in zip(found, expected, strict=True)])
    assert recall >= 0.97


def test_approximate_search_keeps_filters_and_disabled_entries_out(corpus):
    entries, vectors, rng = corpus
    index = FaqIndex.from_vectors(entries, vectors, model_name="test", params=SearchParams(ann_min_vectors=1000))
    disabled = {e.id for e in entries if not e.enabled}
    queries = np.concatenate([vectors[[7, 57, 107]], near_copies(rng, vectors, 50, 0.9)])

    for result in index.search_vectors(queries, ["q"] * len(queries), department="cards"):
        matches = [result.best, *result.alternatives]
        assert all(m.department == "cards" and m.entry_id not in disabled for m in matches)


def test_a_saved_approximate_index_gives_the_same_results(corpus, tmp_path):
    entries, vectors, rng = corpus
    index = FaqIndex.from_vectors(entries, vectors, model_name="test", params=SearchParams(ann_min_vectors=1000))
    queries = near_copies(rng, vectors, 50, 0.8)

    loaded = FaqIndex.load(index.save(tmp_path))

    assert loaded.info() == index.info()
    texts = ["q"] * len(queries)
    assert loaded.search_vectors(queries, texts) == index.search_vectors(queries, texts)
