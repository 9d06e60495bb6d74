"""A versioned FAQ index: finds the entry that answers a customer's question.

How a query is matched:

1. The query is encoded once; its similarity to every question variant is one product
   with the matrix of unit-length variant embeddings (an IVF reads only part of it when
   the index is large, see ``faq.ivf``).
2. The ``candidates`` most similar variants name the candidate entries. An entry's
   semantic score is the mean of its ``pool_top`` most similar variants: on BANKING77 this
   beats the single nearest variant, whose one lucky paraphrase can outvote an entry
   that matches in several ways.
3. Its lexical score is the best TF-IDF cosine of character n-grams between the query and
   its variants (``faq.lexical``); ranking uses ``semantic + lexical_weight * lexical``.
   ``FaqIndex.calibrate`` keeps a lexical weight only if it measurably raises accuracy on
   held-out questions.
4. The calibrated confidence (``faq.calibration``) is compared with the threshold of the
   best entry's department: answer automatically, or escalate to an agent.

An index is immutable. Its version is a hash of everything that decides its answers (the
entries, the model name, the search parameters, the calibration and thresholds), so the
same content always gets the same version and any change gets a new one. Tickets keep the
version they started with; ``faq.store`` keeps several versions loadable side by side.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import threading
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, Field

from faq import lexical
from faq.arrays import concatenated_ranges
from faq.calibration import FEATURES, KB_FEATURES, Calibrator, choose_thresholds, out_of_scope_threshold
from faq.encoder import DEFAULT_MODEL, embedding_dimension, encode, load_encoder
from faq.ivf import IvfQuantizer, default_probe_count
from faq.lexical import CharNgramTfidf
from models.faq import (
    FaqCalibrationReport,
    FaqDecision,
    FaqEntry,
    FaqEvidence,
    FaqIndexInfo,
    FaqMatch,
    FaqQuery,
    FaqResult,
    ThresholdPolicy,
)

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

FORMAT = 1
ALTERNATIVES = 3
_INDEX_FILE = "index.json"
_VECTORS_FILE = "vectors.npy"
_LEXICAL_FILE = "lexical.npz"
_IVF_FILE = "ivf.npz"


class FaqIndexError(RuntimeError):
    """A saved index is missing, unreadable, or does not match its version."""


class SearchParams(BaseModel):
    pool_top: int = Field(default=2, ge=1, description="entry score: mean of its best N variant similarities")
    lexical_weight: float = Field(default=0.2, ge=0.0, description="weight of the character n-gram score")
    candidates: int = Field(default=50, ge=1, description="variants retrieved before scoring entries")
    ann_min_vectors: int = Field(default=20_000, ge=1, description="use the IVF from this many variants on")
    ivf_lists: int | None = Field(default=None, ge=1, description="None: about 4 * sqrt(variants)")
    ivf_probes: int | None = Field(default=None, ge=1, description="None: a sixteenth of the lists, at least 8")


@dataclass(slots=True)
class _Candidates:
    """Candidate entries of one query, before they are ranked with a lexical weight."""

    entries: np.ndarray  # entry positions
    semantic: np.ndarray
    lexical: np.ndarray
    closest_variant: np.ndarray  # variant row of each entry's most similar question
    # The lowest similarity among the variants retrieved: an entry that is not a candidate
    # scores no higher, so it stands in for a missing runner-up. With the entry of each
    # retrieved variant, so that leaving an entry out lowers the floor as its absence would.
    floor: float = 0.0
    retrieved_entries: np.ndarray | None = None
    retrieved_similarity: np.ndarray | None = None
    left_out: int = -1  # the entry ``_without`` removed, absent as if never written


class FaqIndex:
    """Entries, their variant embeddings and n-gram rows, calibration and thresholds."""

    def __init__(
        self,
        entries: Sequence[FaqEntry],
        vectors: np.ndarray,
        *,
        model_name: str,
        params: SearchParams | None = None,
        calibrator: Calibrator | None = None,
        thresholds: ThresholdPolicy | None = None,
        lexical_model: CharNgramTfidf | None = None,
        lexical_rows: sp.csr_matrix | None = None,
        ivf: IvfQuantizer | None = None,
        encoder: SentenceTransformer | None = None,
    ):
        """Prefer ``build``, ``from_vectors`` or ``load``. ``entries`` must be sorted by id and
        ``vectors`` hold one unit-length row per question variant, in entry order."""
        self.entries: list[FaqEntry] = list(entries)
        self.model_name = model_name
        self.params = params or SearchParams()
        self.calibrator = calibrator
        self.thresholds = thresholds or ThresholdPolicy()
        self._encoder = encoder

        counts = np.array([len(entry.questions) for entry in self.entries], dtype=np.int64)
        self._entry_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._entry_of_variant = np.repeat(np.arange(len(self.entries)), counts)
        self._variant_text = [question for entry in self.entries for question in entry.questions]
        self._entry_position = {entry.id: i for i, entry in enumerate(self.entries)}
        if vectors.ndim != 2 or len(vectors) != len(self._variant_text):
            raise ValueError(f"expected one vector per question variant ({len(self._variant_text)}), got {vectors.shape}")
        self.dimension = int(vectors.shape[1])

        if lexical_model is None or lexical_rows is None:
            lexical_model, lexical_rows = CharNgramTfidf.fit(self._variant_text)
        self._lexical = lexical_model
        self._lexical_rows = lexical_rows.tocsr()

        self.approximate = len(self._variant_text) >= self.params.ann_min_vectors
        if self.approximate:
            self._ivf = ivf or IvfQuantizer.build(vectors, lists=self.params.ivf_lists)
            self._probes = self.params.ivf_probes or default_probe_count(self._ivf.lists)
            self._vectors = None  # the IVF holds the only copy, in its list order
            self._lexical_by_feature = None
        else:
            self._ivf = None
            self._vectors = np.ascontiguousarray(vectors, dtype=np.float32)
            # Features x variants: a query's few n-grams select their posting rows.
            self._lexical_by_feature = self._lexical_rows.T.tocsr()

        self._shape: _KbShape | None = None
        self._allowed_cache: dict[tuple[str | None, str | None], tuple[np.ndarray | None, np.ndarray | None]] = {}
        self._cache_lock = threading.Lock()
        self.version = compute_version(self.entries, model_name, self.dimension, self.params, calibrator, self.thresholds)

    # --- building --------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        entries: Sequence[FaqEntry],
        *,
        model: str = DEFAULT_MODEL,
        params: SearchParams | None = None,
        encoder: SentenceTransformer | None = None,
        reuse: FaqIndex | None = None,
        batch_size: int = 64,
    ) -> FaqIndex:
        """Encode every question variant (reusing the vectors of ``reuse`` for unchanged
        texts of the same model) and build an uncalibrated index."""
        ordered = _sorted_unique(entries)
        encoder = encoder or load_encoder(model)
        dimension = embedding_dimension(encoder)
        texts = [question for entry in ordered for question in entry.questions]
        known: dict[str, np.ndarray] = {}
        if reuse is not None and reuse.model_name == model and reuse.dimension == dimension:
            known = dict(zip(reuse._variant_text, reuse._all_vectors(), strict=True))
        missing = sorted({text for text in texts if text not in known})
        known.update(zip(missing, encode(encoder, missing, batch_size=batch_size), strict=True))
        vectors = np.array([known[text] for text in texts], dtype=np.float32).reshape(len(texts), dimension)
        return cls(ordered, vectors, model_name=model, params=params, encoder=encoder)

    @classmethod
    def from_vectors(
        cls,
        entries: Sequence[FaqEntry],
        vectors: np.ndarray,
        *,
        model_name: str,
        params: SearchParams | None = None,
        encoder: SentenceTransformer | None = None,
    ) -> FaqIndex:
        """An index from embeddings computed elsewhere, one row per question variant in the
        order of ``entries`` and their questions."""
        ordered = _sorted_unique(entries)
        vectors = np.asarray(vectors, dtype=np.float32)
        sizes = [len(entry.questions) for entry in entries]
        if sum(sizes) != len(vectors):
            raise ValueError(f"expected {sum(sizes)} vectors, one per question variant, got {len(vectors)}")
        first_row = dict(zip((entry.id for entry in entries), np.cumsum([0, *sizes])[:-1].tolist(), strict=True))
        rows = [first_row[entry.id] + i for entry in ordered for i in range(len(entry.questions))]
        return cls(ordered, vectors[rows], model_name=model_name, params=params, encoder=encoder)

    def with_thresholds(self, thresholds: ThresholdPolicy) -> FaqIndex:
        """The same index with other thresholds (a new version; nothing is re-encoded)."""
        return self._derive(thresholds=thresholds)

    def _derive(
        self,
        *,
        params: SearchParams | None = None,
        calibrator: Calibrator | None = None,
        thresholds: ThresholdPolicy | None = None,
    ) -> FaqIndex:
        """A copy with some of these replaced, sharing vectors, n-gram rows and the IVF."""
        params = params or self.params
        derived = FaqIndex(
            self.entries,
            self._all_vectors(),
            model_name=self.model_name,
            params=params,
            calibrator=calibrator or self.calibrator,
            thresholds=thresholds or self.thresholds,
            lexical_model=self._lexical,
            lexical_rows=self._lexical_rows,
            ivf=self._ivf if params.ivf_lists == self.params.ivf_lists else None,
            encoder=self._encoder,
        )
        derived._shape = self._shape  # the same entries and vectors lie the same way
        return derived

    # --- searching -------------------------------------------------------------------------

    def answer(self, query: FaqQuery) -> FaqResult:
        return self.search(query.text, department=query.department, language=query.language)

    def search(
        self,
        text: str,
        *,
        department: str | None = None,
        language: str | None = None,
        thresholds: ThresholdPolicy | None = None,
    ) -> FaqResult:
        """The best enabled entry for ``text``, its confidence, alternatives and decision.

        ``department`` and ``language`` restrict the entries considered (a language "en"
        also matches entries in "en-GB"); ``thresholds`` overrides the index's own.
        """
        return self.search_many([text], department=department, language=language, thresholds=thresholds)[0]

    def search_many(
        self,
        texts: Sequence[str],
        *,
        department: str | None = None,
        language: str | None = None,
        thresholds: ThresholdPolicy | None = None,
        batch_size: int = 64,
    ) -> list[FaqResult]:
        vectors = encode(self._get_encoder(), texts, batch_size=batch_size)
        return self.search_vectors(vectors, texts, department=department, language=language, thresholds=thresholds)

    def search_vectors(
        self,
        vectors: np.ndarray,
        texts: Sequence[str],
        *,
        department: str | None = None,
        language: str | None = None,
        thresholds: ThresholdPolicy | None = None,
    ) -> list[FaqResult]:
        """Like ``search_many`` for queries already encoded with this index's model."""
        return self._results(self._candidates(vectors, texts, department, language), thresholds)

    def search_without_own_entry(
        self,
        questions: Sequence[str],
        expected_entry_ids: Sequence[str],
        *,
        vectors: np.ndarray | None = None,
        thresholds: ThresholdPolicy | None = None,
    ) -> list[FaqResult]:
        """Match each question as if its own entry were not in the knowledge base.

        Every automatic answer here is wrong: the share of them estimates how often the
        bot would answer a question the knowledge base does not cover.
        """
        expected = self._positions(questions, expected_entry_ids)
        if vectors is None:
            vectors = encode(self._get_encoder(), questions)
        return self._results(self._out_of_scope(vectors, questions, expected), thresholds)

    def _positions(self, questions: Sequence[str], expected_entry_ids: Sequence[str]) -> np.ndarray:
        if len(questions) != len(expected_entry_ids) or not questions:
            raise ValueError("give one expected entry id per question, and at least one question")
        unknown = sorted({i for i in expected_entry_ids if i not in self._entry_position})
        if unknown:
            raise ValueError(f"expected entries that are not in the index: {', '.join(unknown[:10])}")
        return np.array([self._entry_position[i] for i in expected_entry_ids])

    def _results(self, candidates: list[_Candidates], thresholds: ThresholdPolicy | None) -> list[FaqResult]:
        ranked = [_rank(c, self.params.lexical_weight) for c in candidates]
        policy = thresholds or self.thresholds
        confidences: list[float | None] = [None] * len(ranked)
        if self.calibrator is not None and ranked:
            features = self._feature_rows(candidates, ranked, self.calibrator.features)
            confidences = [float(p) for p in self.calibrator.confidence(features)]
        return [
            self._result(c, order, scores, confidence, policy)
            for c, (order, scores), confidence in zip(candidates, ranked, confidences, strict=True)
        ]

    def _result(
        self,
        candidates: _Candidates,
        order: np.ndarray,
        scores: np.ndarray,
        confidence: float | None,
        policy: ThresholdPolicy,
    ) -> FaqResult:
        if len(order) == 0:
            return FaqResult(index_version=self.version, decision=FaqDecision.escalate)
        matches = [self._match(candidates, scores, i) for i in order[: 1 + ALTERNATIVES]]
        best = matches[0]
        threshold = policy.threshold_for(best.department)
        confident = confidence is not None and confidence >= threshold
        return FaqResult(
            index_version=self.version,
            decision=FaqDecision.answer if confident else FaqDecision.escalate,
            best=best,
            confidence=None if confidence is None else float(confidence),
            threshold=threshold,
            answer=self.entries[int(candidates.entries[order[0]])].answer,
            alternatives=matches[1:],
        )

    def _match(self, candidates: _Candidates, scores: np.ndarray, i: int) -> FaqMatch:
        entry = self.entries[int(candidates.entries[i])]
        return FaqMatch(
            entry_id=entry.id,
            department=entry.department,
            question=self._variant_text[int(candidates.closest_variant[i])],
            score=float(scores[i]),
            semantic_score=float(candidates.semantic[i]),
            lexical_score=float(candidates.lexical[i]),
        )

    def _candidates(
        self,
        vectors: np.ndarray,
        texts: Sequence[str],
        department: str | None,
        language: str | None,
        excluded: np.ndarray | None = None,
    ) -> list[_Candidates]:
        """The candidate entries of each query; ``excluded`` names an entry position per
        query to search as if it were not in the index (-1: none)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension or len(vectors) != len(texts):
            raise ValueError(f"expected {len(texts)} query vectors of dimension {self.dimension}, got {vectors.shape}")
        allowed, allowed_in_lists = self._allowed(department, language)
        if excluded is None:
            excluded = np.full(len(texts), -1, dtype=np.int64)
        if len(texts) <= _INTERACTIVE_QUERIES:
            with _one_blas_thread():
                return self._candidates_of(vectors, texts, allowed, allowed_in_lists, excluded)
        return self._candidates_of(vectors, texts, allowed, allowed_in_lists, excluded)

    def _out_of_scope(self, vectors: np.ndarray, texts: Sequence[str], entries: np.ndarray) -> list[_Candidates]:
        """Each question searched as if its own entry had never been written: what the bot
        sees of a question the knowledge base cannot answer."""
        candidates = self._candidates(vectors, texts, None, None, excluded=np.asarray(entries, dtype=np.int64))
        return [_without(c, e) for c, e in zip(candidates, entries, strict=True)]

    def _candidates_of(
        self,
        vectors: np.ndarray,
        texts: Sequence[str],
        allowed: np.ndarray | None,
        allowed_in_lists: np.ndarray | None,
        excluded: np.ndarray,
    ) -> list[_Candidates]:
        queries = [self._lexical.query(text) for text in texts]
        results: list[_Candidates] = []
        if self._ivf is None:
            for start in range(0, len(texts), 256):
                similarities = vectors[start : start + 256] @ self._vectors.T
                for i, (similarity, query) in enumerate(zip(similarities, queries[start : start + 256], strict=True)):
                    entry = excluded[start + i]
                    if entry >= 0:
                        similarity[self._entry_start[entry] : self._entry_start[entry + 1]] = -np.inf
                    results.append(self._exact_candidates(similarity, query, allowed))
        else:
            for vector, query, entry in zip(vectors, queries, excluded, strict=True):
                results.append(self._approximate_candidates(vector, query, allowed, allowed_in_lists, entry))
        return results

    def _exact_candidates(
        self, similarity: np.ndarray, query: lexical.Query, allowed: np.ndarray | None
    ) -> _Candidates:
        if allowed is not None:
            similarity = np.where(allowed, similarity, -np.inf)
        top = _top(similarity, self.params.candidates)
        entries = np.unique(self._entry_of_variant[top])
        rows, sizes = self._variant_rows(entries)
        lexical_similarity = lexical.similarity_to_all(self._lexical_by_feature, query)[rows]
        return self._pool(entries, rows, sizes, similarity[rows], lexical_similarity, top, similarity[top])

    def _approximate_candidates(
        self,
        vector: np.ndarray,
        query: lexical.Query,
        allowed: np.ndarray | None,
        allowed_in_lists: np.ndarray | None,
        excluded: int = -1,
    ) -> _Candidates:
        assert self._ivf is not None
        top, _ = self._ivf.search(vector, probes=self._probes, k=self.params.candidates, allowed=allowed_in_lists)
        if excluded >= 0:  # approximate: the excluded entry's variants are dropped after the search
            top = top[self._entry_of_variant[top] != excluded]
        if len(top) == 0 and allowed is not None and allowed.any():
            # The filter left nothing in the probed lists: search its entries exhaustively.
            permitted = np.flatnonzero(allowed)
            top = permitted[_top(self._variant_vectors(permitted) @ vector, self.params.candidates)]
        entries = np.unique(self._entry_of_variant[top])
        rows, sizes = self._variant_rows(entries)
        semantic = self._variant_vectors(rows) @ vector
        lexical_similarity = lexical.similarity_to_rows(self._lexical_rows, rows, query)
        return self._pool(entries, rows, sizes, semantic, lexical_similarity, top, self._variant_vectors(top) @ vector)

    def _pool(
        self,
        entries: np.ndarray,
        rows: np.ndarray,
        sizes: np.ndarray,
        semantic: np.ndarray,
        lexical_similarity: np.ndarray,
        top: np.ndarray,
        top_similarity: np.ndarray,
    ) -> _Candidates:
        if len(entries) == 0:
            empty = np.zeros(0)
            return _Candidates(entries, empty, empty, np.zeros(0, dtype=np.int64))
        offsets = np.cumsum(sizes) - sizes
        padded = np.full((len(entries), int(sizes.max())), -np.inf, dtype=np.float32)
        segment = np.repeat(np.arange(len(entries)), sizes)
        padded[segment, np.arange(len(rows)) - offsets[segment]] = semantic
        closest = rows[offsets + np.argmax(padded, axis=1)]
        pool = min(self.params.pool_top, padded.shape[1])
        if pool == 1:
            pooled = padded.max(axis=1)
        else:
            best = np.partition(padded, padded.shape[1] - pool, axis=1)[:, -pool:]
            pooled = np.where(np.isfinite(best), best, 0.0).sum(axis=1) / np.minimum(sizes, pool)
        lexical_pooled = np.maximum.reduceat(lexical_similarity, offsets)
        return _Candidates(entries, pooled.astype(np.float64), lexical_pooled.astype(np.float64), closest,
                           float(top_similarity.min()), self._entry_of_variant[top], top_similarity)

    def _feature_rows(
        self, candidates: Sequence[_Candidates], ranked: Sequence[tuple[np.ndarray, np.ndarray]], names: Sequence[str]
    ) -> np.ndarray:
        shape = self.kb_shape() if set(names) & set(KB_FEATURES) else None
        rows = [_features(c, order, scores, shape, names) for c, (order, scores) in zip(candidates, ranked, strict=True)]
        return np.array(rows, dtype=np.float64).reshape(len(rows), len(names))

    def kb_shape(self) -> _KbShape:
        """How the entries lie to each other (computed once, on first use)."""
        if self._shape is None:
            enabled = np.array([entry.enabled for entry in self.entries], dtype=bool)
            self._shape = _kb_shape(self._all_vectors(), self._entry_start, enabled)
        return self._shape

    def _variant_rows(self, entries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        starts = self._entry_start[entries]
        sizes = self._entry_start[entries + 1] - starts
        return concatenated_ranges(starts, sizes), sizes

    def _variant_vectors(self, rows: np.ndarray) -> np.ndarray:
        if self._ivf is None:
            return self._vectors[rows]
        return self._ivf.vectors[self._ivf.position[rows]]

    def _all_vectors(self) -> np.ndarray:
        return self._vectors if self._ivf is None else self._ivf.vectors[self._ivf.position]

    def _allowed(self, department: str | None, language: str | None) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Variants of enabled entries passing the filters (None: all), also in IVF list order."""
        key = (department, language)
        with self._cache_lock:
            cached = self._allowed_cache.get(key)
        if cached is not None:
            return cached
        entry_ok = np.array(
            [
                entry.enabled
                and (department is None or entry.department == department)
                and (language is None or entry.language == language or entry.language.startswith(language + "-"))
                for entry in self.entries
            ],
            dtype=bool,
        )
        if entry_ok.all():
            allowed: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
        else:
            variant_ok = entry_ok[self._entry_of_variant]
            allowed = (variant_ok, variant_ok[self._ivf.order] if self._ivf is not None else None)
        with self._cache_lock:
            if len(self._allowed_cache) > 256:
                self._allowed_cache.clear()
            self._allowed_cache[key] = allowed
        return allowed

    def _get_encoder(self) -> SentenceTransformer:
        if self._encoder is None:
            self._encoder = load_encoder(self.model_name)
        if embedding_dimension(self._encoder) != self.dimension:
            raise FaqIndexError(
                f"model {self.model_name!r} makes {embedding_dimension(self._encoder)}-dimensional embeddings,"
                f" the index holds {self.dimension}"
            )
        return self._encoder

    # --- calibration -----------------------------------------------------------------------

    def calibrate(
        self,
        questions: Sequence[str],
        expected_entry_ids: Sequence[str],
        *,
        target_precision: float = 0.97,
        confidence_level: float = 0.9,
        lexical_weights: Sequence[float] = (0.0, 0.1, 0.2, 0.3),
        min_gain: float = 0.002,
        min_department_samples: int = 200,
        out_of_scope_share: float = 0.0,
        out_of_scope_recall: float | None = None,
        prior: Calibrator | None = None,
        min_threshold_samples: int = 100,
        evidence: Sequence[FaqEvidence] = (),
        vectors: np.ndarray | None = None,
        evidence_vectors: np.ndarray | None = None,
    ) -> tuple[FaqIndex, FaqCalibrationReport]:
        """Fit confidence and thresholds on held-out questions whose right entry is known.

        Use questions the index was not built from (``faq.calibration.split_for_calibration``
        holds out variants of the entries themselves), and never the questions you report
        accuracy on. A larger lexical weight is kept only if it raises accuracy by more
        than ``min_gain``.

        Held-out questions all have an answer in the knowledge base, but customers also ask
        what it does not cover. So some questions are also ranked with their own entry left
        out: whatever wins then is wrong, as for a question the knowledge base cannot
        answer. These make up ``out_of_scope_share`` of the data the confidence is fitted
        on. ``out_of_scope_recall`` then raises the thresholds until at least that share of
        all such examples would not be answered.

        With a ``prior`` (``faq.prior``: a confidence model fitted on many knowledge bases),
        the fit is blended with it: with no held-out questions at all (entries of one or two
        variants) the prior alone decides; as held-out questions and reviewed ``evidence``
        (questions the bot answered or suggested for, right or wrong) accumulate, they
        outweigh it. With a prior and fewer than ``min_threshold_samples`` examples, too few
        to choose a threshold from, the threshold is ``target_precision`` itself: the confidence is a
        probability of being right, so answering above it keeps about that precision.

        Returns the calibrated index (a new version) and what was measured.
        """
        if not 0.0 <= out_of_scope_share < 1.0:
            raise ValueError("out_of_scope_share must be at least 0 and below 1")
        if out_of_scope_recall is not None and not 0.0 <= out_of_scope_recall < 1.0:
            raise ValueError("out_of_scope_recall must be at least 0 and below 1")
        if not questions and prior is None:
            raise ValueError("give held-out questions, or a prior to calibrate without them")
        names = prior.features if prior is not None else FEATURES
        expected = self._positions(questions, expected_entry_ids) if questions else np.zeros(0, dtype=np.int64)
        if questions and vectors is None:
            vectors = encode(self._get_encoder(), questions)
        candidates = self._candidates(vectors, questions, None, None) if questions else []

        accuracy: dict[float, float] = {}
        chosen = self.params.lexical_weight if not questions else 0.0
        for weight in sorted(set(lexical_weights) | {0.0}) if questions else ():
            best = np.array([_best_entry(c, order) for c, (order, _) in ((c, _rank(c, weight)) for c in candidates)])
            accuracy[weight] = float((best == expected).mean())
            if accuracy[weight] > accuracy[chosen] + min_gain:
                chosen = weight

        in_scope = len(candidates)
        wanted = round(out_of_scope_share / (1.0 - out_of_scope_share) * in_scope)
        rng = np.random.default_rng(0)
        picked = np.sort(rng.choice(in_scope, size=min(wanted, in_scope), replace=False))
        unanswerable = self._out_of_scope(vectors, questions, expected) if questions else []
        observed, observed_expected, observed_wrong = self._evidence(evidence, evidence_vectors)
        examples = candidates + [unanswerable[i] for i in picked] + observed
        expected_all = np.concatenate([expected, np.full(len(picked), -1), observed_expected]).astype(np.int64)

        ranked = [_rank(c, chosen) for c in examples]
        best = np.array([_best_entry(c, order) for c, (order, _) in zip(examples, ranked)], dtype=np.int64)
        correct = best == expected_all
        # Evidence that the bot's choice of an entry was wrong labels that choice wrong when
        # this index makes it again, and says nothing when another entry wins now.
        first = in_scope + len(picked)
        keep = np.ones(len(examples), dtype=bool)
        keep[first:] = ~(observed_wrong & ~correct[first:])
        correct[first:] &= ~observed_wrong
        examples = [e for e, k in zip(examples, keep) if k]
        ranked = [r for r, k in zip(ranked, keep) if k]
        best, correct = best[keep], correct[keep]
        features = self._feature_rows(examples, ranked, names)
        # The ranking is learnt with every unanswerable example, not only the share kept for
        # the probabilities: where half of the questions have no answer, the fit learns what
        # tells them apart (on BANKING77 with a fifth of the intents left out, 0.69 of the
        # in-scope questions answered right at 96% out-of-scope recall, against 0.65 with a
        # fifth); its probabilities are then rescaled on the mix above.
        rest = np.setdiff1d(np.arange(len(unanswerable)), picked)
        if len(examples) and len(picked) and len(rest):
            others = [unanswerable[i] for i in rest]
            other_features = self._feature_rows(others, [_rank(c, chosen) for c in others], names)
            ranking = Calibrator.fit(np.vstack([features, other_features]),
                                     np.concatenate([correct, np.zeros(len(others), dtype=bool)]),
                                     names=names, prior=prior)
            calibrator = ranking.rescaled(features, correct)
        elif len(examples):
            calibrator = Calibrator.fit(features, correct, names=names, prior=prior)
        else:
            calibrator = prior
        confidence = calibrator.confidence(features) if len(examples) else np.zeros(0)
        departments = [self.entries[b].department if b >= 0 else "" for b in best]
        if prior is None or len(examples) >= min_threshold_samples:
            thresholds = choose_thresholds(
                confidence,
                correct,
                departments,
                target_precision=target_precision,
                confidence_level=confidence_level,
                min_department_samples=min_department_samples,
            )
        else:
            thresholds = ThresholdPolicy(default=target_precision)

        out_of_scope_kept_back = None
        if unanswerable:
            oos_ranked = [_rank(c, chosen) for c in unanswerable]
            oos_confidence = calibrator.confidence(self._feature_rows(unanswerable, oos_ranked, names))
            if out_of_scope_recall is not None:
                floor = out_of_scope_threshold(oos_confidence, out_of_scope_recall)
                thresholds = ThresholdPolicy(
                    default=max(thresholds.default, floor),
                    per_department={d: max(t, floor) for d, t in thresholds.per_department.items()},
                )
            oos_best = [_best_entry(c, order) for c, (order, _) in zip(unanswerable, oos_ranked)]
            limits = np.array([thresholds.threshold_for(self.entries[b].department if b >= 0 else "") for b in oos_best])
            out_of_scope_kept_back = float((oos_confidence < limits).mean())

        answered = confidence >= np.array([thresholds.threshold_for(d) for d in departments])
        held_out = slice(0, in_scope)
        calibrated = self._derive(
            params=self.params.model_copy(update={"lexical_weight": chosen}), calibrator=calibrator, thresholds=thresholds
        )
        report = FaqCalibrationReport(
            samples=in_scope,
            top1_accuracy=float(correct[held_out].mean()) if in_scope else None,
            accuracy_by_lexical_weight={f"{w:g}": a for w, a in accuracy.items()},
            lexical_weight=chosen,
            target_precision=target_precision,
            thresholds=thresholds,
            precision_at_threshold=float(correct[answered].mean()) if answered.any() else None,
            coverage_at_threshold=float(answered[held_out].mean()) if in_scope else None,
            out_of_scope_examples=len(picked),
            out_of_scope_answered=float(answered[in_scope : in_scope + len(picked)].mean()) if len(picked) else None,
            out_of_scope_recall=out_of_scope_kept_back,
            evidence_examples=len(examples) - in_scope - len(picked),
            prior=prior is not None,
            brier_score=float(np.mean((confidence - correct) ** 2)) if len(examples) else None,
        )
        return calibrated, report

    def _evidence(
        self, evidence: Sequence[FaqEvidence], vectors: np.ndarray | None
    ) -> tuple[list[_Candidates], np.ndarray, np.ndarray]:
        """Reviewed observations as examples: the candidates of each question, the entry it
        concerns, and whether the bot's choice of that entry was wrong. Evidence about an
        entry that is no longer in the index is left out."""
        usable = [i for i, e in enumerate(evidence) if e.entry_id in self._entry_position]
        if not usable:
            return [], np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
        texts = [evidence[i].question for i in usable]
        if vectors is None:
            vectors = encode(self._get_encoder(), texts)
        else:
            vectors = np.asarray(vectors)[usable]
        candidates = self._candidates(vectors, texts, None, None)
        entries = np.array([self._entry_position[evidence[i].entry_id] for i in usable], dtype=np.int64)
        wrong = np.array([not evidence[i].correct for i in usable], dtype=bool)
        return candidates, entries, wrong

    # --- describing, saving, loading -------------------------------------------------------

    def entry(self, entry_id: str) -> FaqEntry:
        return self.entries[self._entry_position[entry_id]]

    def known_vectors(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The embeddings this index holds for those of ``texts`` that are its question
        variants, so that a rebuild need not encode them again."""
        wanted = set(texts)
        vectors = self._all_vectors()
        return {text: vectors[row] for row, text in enumerate(self._variant_text) if text in wanted}

    def info(self) -> FaqIndexInfo:
        return FaqIndexInfo(
            version=self.version,
            model_name=self.model_name,
            dimension=self.dimension,
            entries=len(self.entries),
            enabled_entries=sum(entry.enabled for entry in self.entries),
            question_variants=len(self._variant_text),
            approximate_search=self._ivf is not None,
            ivf_lists=None if self._ivf is None else self._ivf.lists,
            ivf_probes=None if self._ivf is None else self._probes,
            lexical_weight=self.params.lexical_weight,
            calibrated=self.calibrator is not None,
            thresholds=self.thresholds,
        )

    def save(self, root: str | os.PathLike[str]) -> Path:
        """Write the index to ``root/<version>/`` (atomically; kept as is if it exists)."""
        root = Path(root)
        target = root / self.version
        if (target / _INDEX_FILE).exists():
            return target
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{self.version}-", dir=root))
        try:
            files = self._files()
            # index.json is written last: a directory with index.json is complete.
            for name in sorted(files, key=lambda name: name == _INDEX_FILE):
                (staging / name).write_bytes(files[name])
            try:
                staging.rename(target)
            except OSError:
                if not (target / _INDEX_FILE).exists():
                    raise
                shutil.rmtree(staging)  # another process saved the same version first
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target

    def to_bytes(self) -> bytes:
        """The files ``save`` writes, as one zip archive (to keep an index in a database)."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, data in self._files().items():
                # Vectors barely compress and the n-gram rows are compressed already.
                compression = zipfile.ZIP_DEFLATED if name == _INDEX_FILE else zipfile.ZIP_STORED
                archive.writestr(name, data, compress_type=compression)
        return buffer.getvalue()

    def _files(self) -> dict[str, bytes]:
        def npy(array: np.ndarray) -> bytes:
            out = io.BytesIO()
            np.save(out, array, allow_pickle=False)
            return out.getvalue()

        def npz(compressed: bool, **arrays: np.ndarray) -> bytes:
            out = io.BytesIO()
            (np.savez_compressed if compressed else np.savez)(out, **arrays)
            return out.getvalue()

        rows = self._lexical_rows
        files = {
            _VECTORS_FILE: npy(self._all_vectors()),
            _LEXICAL_FILE: npz(True, idf=self._lexical.idf, data=rows.data, indices=rows.indices, indptr=rows.indptr),
            _INDEX_FILE: json.dumps(self._manifest(), ensure_ascii=False, indent=1).encode("utf-8"),
        }
        if self._ivf is not None:
            files[_IVF_FILE] = npz(False, **self._ivf.arrays())
        return files

    def _manifest(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": self.version,
            "model_name": self.model_name,
            "dimension": self.dimension,
            "lexical_scheme": lexical.SCHEME,
            "params": self.params.model_dump(mode="json"),
            "calibrator": None if self.calibrator is None else self.calibrator.model_dump(mode="json"),
            "thresholds": self.thresholds.model_dump(mode="json"),
            "entries": [entry.model_dump(mode="json") for entry in self.entries],
        }

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, encoder: SentenceTransformer | None = None) -> FaqIndex:
        """Load a saved index without re-encoding anything; checks it against its version."""
        path = Path(path)

        def read(name: str) -> bytes | None:
            try:
                return (path / name).read_bytes()
            except FileNotFoundError:
                return None

        return cls._from_files(read, f"FAQ index at {path}", encoder)

    @classmethod
    def from_bytes(cls, data: bytes, *, encoder: SentenceTransformer | None = None) -> FaqIndex:
        """An index from ``to_bytes``; checks it against its version like ``load``."""
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile as exc:
            raise FaqIndexError(f"unreadable FAQ index archive: {exc}") from exc
        with archive:
            names = set(archive.namelist())
            return cls._from_files(
                lambda name: archive.read(name) if name in names else None, "FAQ index archive", encoder
            )

    @classmethod
    def _from_files(
        cls, read: Callable[[str], bytes | None], where: str, encoder: SentenceTransformer | None
    ) -> FaqIndex:
        try:
            manifest_bytes = read(_INDEX_FILE)
            if manifest_bytes is None:
                raise FaqIndexError(f"no {where}")
            manifest = json.loads(manifest_bytes.decode("utf-8"))
        except (OSError, ValueError) as exc:
            raise FaqIndexError(f"unreadable {where}: {exc}") from exc
        if manifest.get("format") != FORMAT or manifest.get("lexical_scheme") != lexical.SCHEME:
            raise FaqIndexError(
                f"{where} has format {manifest.get('format')}/{manifest.get('lexical_scheme')};"
                f" this version reads {FORMAT}/{lexical.SCHEME}: rebuild it"
            )

        def required(name: str) -> io.BytesIO:
            data = read(name)
            if data is None:
                raise FaqIndexError(f"{where} has no {name}")
            return io.BytesIO(data)

        try:
            vectors = np.load(required(_VECTORS_FILE), allow_pickle=False)
            with np.load(required(_LEXICAL_FILE), allow_pickle=False) as stored:
                idf = stored["idf"]
                rows = sp.csr_matrix(
                    (stored["data"], stored["indices"], stored["indptr"]), shape=(len(vectors), lexical.N_FEATURES)
                )
            ivf = None
            ivf_data = read(_IVF_FILE)
            if ivf_data is not None:
                with np.load(io.BytesIO(ivf_data), allow_pickle=False) as stored:
                    ivf = IvfQuantizer.from_arrays(dict(stored), vectors)
            index = cls(
                [FaqEntry.model_validate(entry) for entry in manifest["entries"]],
                vectors,
                model_name=manifest["model_name"],
                params=SearchParams.model_validate(manifest["params"]),
                calibrator=None if manifest["calibrator"] is None else Calibrator.model_validate(manifest["calibrator"]),
                thresholds=ThresholdPolicy.model_validate(manifest["thresholds"]),
                lexical_model=CharNgramTfidf(idf),
                lexical_rows=rows,
                ivf=ivf,
                encoder=encoder,
            )
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise FaqIndexError(f"unreadable {where}: {exc}") from exc
        if index.version != manifest["version"]:
            raise FaqIndexError(
                f"{where} says version {manifest['version']} but its content is version {index.version}"
            )
        return index


_INTERACTIVE_QUERIES = 16
_blas_threads = None


def _one_blas_thread():
    """Run a few queries' numpy products on one BLAS thread.

    Right after an encode, torch's worker threads still spin on both cores; two more
    BLAS threads then fight them and a 0.6 ms search takes 10-30 ms (measured on two
    cores). One BLAS thread costs a few tenths of a millisecond at most.
    """
    global _blas_threads
    if _blas_threads is None:
        from threadpoolctl import ThreadpoolController

        _blas_threads = ThreadpoolController().select(user_api="blas")
    return _blas_threads.limit(limits=1)


def compute_version(
    entries: Sequence[FaqEntry],
    model_name: str,
    dimension: int,
    params: SearchParams,
    calibrator: Calibrator | None,
    thresholds: ThresholdPolicy,
) -> str:
    """A hash of everything that decides an index's answers.

    Entry fields left at their defaults are left out, so that a field added to FaqEntry
    later does not change the version of existing content.
    """
    content = {
        "format": FORMAT,
        "lexical_scheme": lexical.SCHEME,
        "model_name": model_name,
        "dimension": dimension,
        "params": params.model_dump(mode="json"),
        "calibrator": None if calibrator is None else calibrator.model_dump(mode="json"),
        "thresholds": thresholds.model_dump(mode="json"),
        "entries": [entry.model_dump(mode="json", exclude_defaults=True) for entry in sorted(entries, key=lambda e: e.id)],
    }
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:20]


def _sorted_unique(entries: Sequence[FaqEntry]) -> list[FaqEntry]:
    ordered = sorted(entries, key=lambda entry: entry.id)
    for previous, entry in zip(ordered, ordered[1:]):
        if previous.id == entry.id:
            raise ValueError(f"FAQ entry id {entry.id!r} is used twice")
    return ordered


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` highest finite scores, in no particular order."""
    k = min(k, len(scores))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    return top[np.isfinite(scores[top])]


def _rank(candidates: _Candidates, lexical_weight: float) -> tuple[np.ndarray, np.ndarray]:
    """Candidate positions best first, and their scores. Equal scores go in entry order, so
    that ties never depend on chance."""
    scores = candidates.semantic + lexical_weight * candidates.lexical
    return np.lexsort((candidates.entries, -scores)), scores


def _without(candidates: _Candidates, entry: int) -> _Candidates:
    keep = candidates.entries != entry
    floor, retrieved, similarity = candidates.floor, candidates.retrieved_entries, candidates.retrieved_similarity
    if retrieved is not None:
        others = retrieved != entry
        retrieved, similarity = retrieved[others], similarity[others]
        floor = float(similarity.min()) if len(similarity) else floor
    return _Candidates(
        candidates.entries[keep], candidates.semantic[keep], candidates.lexical[keep], candidates.closest_variant[keep],
        floor, retrieved, similarity, entry,
    )


def _best_entry(candidates: _Candidates, order: np.ndarray) -> int:
    return int(candidates.entries[order[0]]) if len(order) else -1


def _features(candidates: _Candidates, order: np.ndarray, scores: np.ndarray, shape: _KbShape | None = None,
              names: Sequence[str] = FEATURES) -> list[float]:
    """What calibration sees of one ranking: the values of ``names`` (see
    ``faq.calibration.ALL_FEATURES``); ``shape`` is needed for the knowledge-base features."""
    if len(order) == 0:
        return [0.0] * len(names)
    first = order[0]
    entry = int(candidates.entries[first])
    score = float(scores[first])
    margin = score - (float(scores[order[1]]) if len(order) > 1 else 0.0)
    # the runner-up, or what bounds it when the retrieved variants were all the best entry's
    gap = score - max(float(scores[order[1]]) if len(order) > 1 else -np.inf, candidates.floor)
    one = float(shape.variants[entry] == 1) if shape is not None else 0.0
    values = {
        "score": score,
        "margin": margin,
        "gap": gap,
        "semantic": float(candidates.semantic[first]),
        "lexical": float(candidates.lexical[first]),
    }
    if shape is not None:
        # an entry left out is no one's neighbour: the next closest one is
        nearest_left_out = candidates.left_out >= 0 and shape.nearest[entry] == candidates.left_out
        values.update(
            neighbour=float(shape.next_neighbour[entry] if nearest_left_out else shape.neighbour[entry]),
            kb_neighbour=shape.kb_neighbour,
            log_variants=float(np.log1p(shape.variants[entry])),
            one_variant=one,
            one_variant_score=one * score,
            one_variant_gap=one * gap,
        )
    return [values[name] for name in names]


@dataclass(frozen=True, slots=True)
class _KbShape:
    """How the entries lie to each other, which says how far a similarity can be trusted:
    ``neighbour`` is each entry's cosine to its closest other entry (their mean variants),
    ``kb_neighbour`` the mean of that over the enabled entries, ``variants`` each entry's
    number of question variants."""

    neighbour: np.ndarray
    kb_neighbour: float
    variants: np.ndarray
    nearest: np.ndarray  # which entry is the closest other one
    next_neighbour: np.ndarray  # the cosine to the second closest


# Up to this many enabled entries, every entry is compared with every other one; beyond,
# with those that have its closest of sqrt(n) sampled entries among their three closest (a
# bounded cost, seconds rather than minutes for 100,000 entries; a neighbour may be missed).
_EXACT_SHAPE_ENTRIES = 4096
_SHAPE_HEADS = 3


def _kb_shape(vectors: np.ndarray, entry_start: np.ndarray, enabled: np.ndarray, block: int = 2048) -> _KbShape:
    sizes = np.diff(entry_start)
    sums = np.add.reduceat(vectors, entry_start[:-1], axis=0) if len(vectors) else np.zeros((0, vectors.shape[1]))
    centroids = (sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)).astype(np.float32)
    positions = np.flatnonzero(enabled)
    neighbour = np.zeros(len(centroids))
    next_neighbour = np.zeros(len(centroids))
    nearest = np.full(len(centroids), -1, dtype=np.int64)
    for asked, among in _shape_groups(centroids, positions, block):
        for start in range(0, len(asked), block):
            rows = asked[start : start + block]
            similarity = centroids[rows] @ centroids[among].T
            # an entry is not its own neighbour
            column = np.minimum(np.searchsorted(among, rows), len(among) - 1)
            own = among[column] == rows
            similarity[np.flatnonzero(own), column[own]] = -np.inf
            if similarity.shape[1] == 0:
                continue
            first = similarity.argmax(axis=1)
            at = np.arange(len(rows))
            neighbour[rows] = similarity[at, first]
            nearest[rows] = among[first]
            similarity[at, first] = -np.inf
            next_neighbour[rows] = similarity.max(axis=1)
    neighbour = np.where(np.isfinite(neighbour), neighbour, 0.0)
    next_neighbour = np.where(np.isfinite(next_neighbour), next_neighbour, 0.0)
    kb_neighbour = float(neighbour[enabled].mean()) if enabled.any() else 0.0
    return _KbShape(neighbour=neighbour, kb_neighbour=kb_neighbour, variants=sizes, nearest=nearest,
                    next_neighbour=next_neighbour)


def _shape_groups(centroids: np.ndarray, positions: np.ndarray, block: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Which entries (all of them) are compared with which enabled ones (sorted)."""
    everyone = np.arange(len(centroids))
    if len(positions) <= _EXACT_SHAPE_ENTRIES:
        return [(everyone, positions)]
    rng = np.random.default_rng(0)
    heads = centroids[np.sort(rng.choice(positions, size=int(np.sqrt(len(positions))), replace=False))]
    closest = np.empty((len(centroids), _SHAPE_HEADS), dtype=np.int64)
    for start in range(0, len(centroids), block):
        similarity = centroids[start : start + block] @ heads.T
        few = np.argpartition(-similarity, _SHAPE_HEADS - 1, axis=1)[:, :_SHAPE_HEADS]
        rows = np.arange(len(few))[:, None]
        closest[start : start + block] = np.take_along_axis(few, np.argsort(-similarity[rows, few], axis=1), axis=1)
    members = closest[positions]
    groups = []
    for head in range(len(heads)):
        among = np.unique(positions[(members == head).any(axis=1)])
        asked = np.flatnonzero(closest[:, 0] == head)
        if len(asked) and len(among):
            groups.append((asked, among))
    return groups
