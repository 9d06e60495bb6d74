"""Approximate nearest-neighbour search for large FAQ indexes: an inverted file (IVF).

Brute force over 100,000 x 384 float32 vectors reads 150 MB per query and is bound by
memory bandwidth (about 6 ms on two cores). An IVF groups vectors by k-means into lists
stored contiguously and reads only the lists whose centroids are nearest to the query,
about a sixteenth of the index by default. Pure numpy: nothing to compile or install, and
the lists save as plain arrays. Small indexes do not use it (see ``SearchParams``).
"""

from __future__ import annotations

import math

import numpy as np

from faq.arrays import concatenated_ranges


def default_list_count(vectors: int) -> int:
    """About 4 * sqrt(n) lists, a power of two: about 1,024 lists for 100,000 vectors."""
    return max(1, 2 ** round(math.log2(max(1.0, 4.0 * math.sqrt(vectors)))))


def default_probe_count(lists: int) -> int:
    return max(1, min(lists, max(8, lists // 16)))


class IvfQuantizer:
    def __init__(self, centroids: np.ndarray, offsets: np.ndarray, order: np.ndarray, vectors: np.ndarray):
        """``vectors`` are in variant order; the quantiser keeps its own copy in list order."""
        self.centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.order = np.asarray(order, dtype=np.int64)  # list position -> variant row
        self.position = np.empty_like(self.order)  # variant row -> list position
        self.position[self.order] = np.arange(len(self.order))
        self.vectors = np.ascontiguousarray(vectors[self.order], dtype=np.float32)

    @property
    def lists(self) -> int:
        return len(self.centroids)

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        *,
        lists: int | None = None,
        seed: int = 0,
        iterations: int = 12,
        sample_per_list: int = 128,
    ) -> IvfQuantizer:
        """Spherical k-means on a sample, then every vector goes to its nearest centroid."""
        count = len(vectors)
        lists = min(lists or default_list_count(count), count)
        rng = np.random.default_rng(seed)
        sample = vectors[np.sort(rng.choice(count, size=min(count, lists * sample_per_list), replace=False))]
        centroids = sample[rng.choice(len(sample), size=lists, replace=False)].copy()
        for _ in range(iterations):
            assignment = _nearest(sample, centroids)
            sums = np.zeros_like(centroids)
            by_list = np.argsort(assignment, kind="stable")
            starts = np.searchsorted(assignment[by_list], np.arange(lists))
            sizes = np.bincount(assignment, minlength=lists)
            nonempty = sizes > 0
            sums[nonempty] = np.add.reduceat(sample[by_list], starts[nonempty], axis=0)
            # An empty list gets a random sample vector, so that no centroid is wasted.
            empty = np.flatnonzero(~nonempty)
            sums[empty] = sample[rng.choice(len(sample), size=len(empty), replace=False)]
            centroids = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
        assignment = _nearest(vectors, centroids)
        order = np.argsort(assignment, kind="stable")
        offsets = np.searchsorted(assignment[order], np.arange(lists + 1))
        return cls(centroids.astype(np.float32), offsets, order, vectors)

    def search(
        self, query: np.ndarray, *, probes: int, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Variant rows and scores of the best ``k`` vectors in the ``probes`` nearest lists.

        ``allowed`` is a boolean mask in list order (``mask[self.order]``), or None for all.
        """
        centroid_scores = self.centroids @ query
        probes = min(probes, self.lists)
        probed = (
            np.argpartition(-centroid_scores, probes - 1)[:probes] if probes < self.lists else np.arange(self.lists)
        )
        starts = self.offsets[probed]
        sizes = self.offsets[probed + 1] - starts
        total = int(sizes.sum())
        scores = np.empty(total, dtype=np.float32)
        at = 0
        for start, size in zip(starts.tolist(), sizes.tolist(), strict=True):
            if size:
                np.dot(self.vectors[start : start + size], query, out=scores[at : at + size])
                at += size
        positions = concatenated_ranges(starts, sizes)
        if allowed is not None:
            scores[~allowed[positions]] = -np.inf
        k = min(k, total)
        if k == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        best = np.argpartition(-scores, k - 1)[:k] if k < total else np.arange(total)
        best = best[np.isfinite(scores[best])]
        return self.order[positions[best]], scores[best]

    def arrays(self) -> dict[str, np.ndarray]:
        return {"centroids": self.centroids, "offsets": self.offsets, "order": self.order}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], vectors: np.ndarray) -> IvfQuantizer:
        return cls(arrays["centroids"], arrays["offsets"], arrays["order"], vectors)


def _nearest(vectors: np.ndarray, centroids: np.ndarray, chunk: int = 8192) -> np.ndarray:
    assignment = np.empty(len(vectors), dtype=np.int64)
    for start in range(0, len(vectors), chunk):
        assignment[start : start + chunk] = np.argmax(vectors[start : start + chunk] @ centroids.T, axis=1)
    return assignment
