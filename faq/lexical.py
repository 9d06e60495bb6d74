"""Lexical similarity: TF-IDF over character n-grams.

Character n-grams need no word segmentation, so Chinese, Japanese or Thai questions get a
lexical signal as well as space-separated languages, and typos cost only a few n-grams.
N-grams are hashed with CRC-32 into a fixed number of features: the scheme has no
vocabulary to store and gives the same features in every process and every version of any
library, so a saved index stays valid. Change anything here and change ``SCHEME`` too: it is
part of every index version.
"""

from __future__ import annotations

import unicodedata
import zlib
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from faq.arrays import concatenated_ranges

SCHEME = "char-wb-2-4/crc32-2^18/sublinear-tf-smooth-idf-maxdf/l2"
N_FEATURES = 1 << 18
MAX_DF = 0.1
# Document frequencies in a handful of texts are noise; prune only in larger collections.
_MIN_TEXTS_TO_PRUNE = 200
_MIN_N, _MAX_N = 2, 4


def ngram_features(text: str) -> np.ndarray:
    """Hashed ids of the character 2- to 4-grams of each word padded with spaces."""
    normalised = unicodedata.normalize("NFKC", text).casefold()
    ids: list[int] = []
    mask = N_FEATURES - 1
    for word in normalised.split():
        padded = f" {word} "
        length = len(padded)
        for n in range(_MIN_N, min(_MAX_N, length) + 1):
            ids.extend(zlib.crc32(padded[i : i + n].encode("utf-8")) & mask for i in range(length - n + 1))
    return np.asarray(ids, dtype=np.int64)


def _term_counts(texts: Sequence[str]) -> sp.csr_matrix:
    indptr = [0]
    indices: list[np.ndarray] = []
    counts: list[np.ndarray] = []
    for text in texts:
        features, feature_counts = np.unique(ngram_features(text), return_counts=True)
        indices.append(features)
        counts.append(feature_counts)
        indptr.append(indptr[-1] + len(features))
    return sp.csr_matrix(
        (
            np.concatenate(counts).astype(np.float32) if counts else np.zeros(0, np.float32),
            np.concatenate(indices).astype(np.int32) if indices else np.zeros(0, np.int32),
            np.asarray(indptr, dtype=np.int64),
        ),
        shape=(len(texts), N_FEATURES),
    )


class CharNgramTfidf:
    """TF-IDF weights fitted on a knowledge base's question variants."""

    def __init__(self, idf: np.ndarray):
        if idf.shape != (N_FEATURES,):
            raise ValueError(f"idf must have {N_FEATURES} values, has {idf.shape}")
        self.idf = idf.astype(np.float32, copy=False)

    @classmethod
    def fit(cls, texts: Sequence[str], *, max_df: float = MAX_DF) -> tuple[CharNgramTfidf, sp.csr_matrix]:
        """The weights, and the unit-length TF-IDF rows of ``texts``.

        N-grams found in more than ``max_df`` of the texts get weight 0: they say little
        about which entry is meant ("ing ", " th") and they would make up nearly all of
        the posting lists a query reads. On BANKING77, 10% cuts the postings read per
        query about tenfold with the same held-out accuracy; 5% loses accuracy.
        """
        counts = _term_counts(texts)
        document_frequency = np.bincount(counts.indices, minlength=N_FEATURES)
        idf = np.log((1.0 + len(texts)) / (1.0 + document_frequency)) + 1.0
        if len(texts) >= _MIN_TEXTS_TO_PRUNE:
            idf[document_frequency > max_df * len(texts)] = 0.0
        model = cls(idf.astype(np.float32))
        return model, model._weigh(counts)

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        return self._weigh(_term_counts(texts))

    def query(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """One text's unit-length TF-IDF vector as sorted feature ids and their weights;
        the same values as a row of ``transform``, without building a sparse matrix."""
        features, counts = np.unique(ngram_features(text), return_counts=True)
        weights = (1.0 + np.log(counts)) * self.idf[features]
        kept = weights > 0
        features, weights = features[kept], weights[kept]
        norm = float(np.sqrt(np.dot(weights, weights)))
        return features, (weights / norm if norm > 0 else weights).astype(np.float32)

    def _weigh(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        weighted = counts.copy()
        weighted.data = (1.0 + np.log(weighted.data)) * self.idf[weighted.indices]
        weighted.eliminate_zeros()
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
        weighted.data /= np.repeat(np.where(norms > 0, norms, 1.0), np.diff(weighted.indptr))
        weighted.data = weighted.data.astype(np.float32)
        return weighted


Query = tuple[np.ndarray, np.ndarray]  # sorted feature ids, weights: see CharNgramTfidf.query


def similarity_to_all(by_feature: sp.csr_matrix, query: Query) -> np.ndarray:
    """Cosine of the query with every row, from ``rows.T.tocsr()``: only the posting lists
    of the query's n-grams are read."""
    features, weights = query
    starts = by_feature.indptr[features]
    lengths = by_feature.indptr[features + 1] - starts
    postings = concatenated_ranges(starts, lengths)
    return np.bincount(
        by_feature.indices[postings],
        weights=by_feature.data[postings] * np.repeat(weights, lengths),
        minlength=by_feature.shape[1],
    )


def similarity_to_rows(rows_matrix: sp.csr_matrix, rows: np.ndarray, query: Query) -> np.ndarray:
    """Cosine of the query with a few rows: their n-grams are looked up in the query's."""
    features, weights = query
    if len(features) == 0:
        return np.zeros(len(rows))
    starts = rows_matrix.indptr[rows]
    lengths = rows_matrix.indptr[rows + 1] - starts
    cells = concatenated_ranges(starts, lengths)
    cell_features = rows_matrix.indices[cells]
    found = np.minimum(np.searchsorted(features, cell_features), len(features) - 1)
    matched = np.where(features[found] == cell_features, weights[found], 0.0)
    return np.bincount(
        np.repeat(np.arange(len(rows)), lengths), weights=rows_matrix.data[cells] * matched, minlength=len(rows)
    )
