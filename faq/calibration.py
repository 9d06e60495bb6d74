"""Calibrated confidence, and choosing when the bot may answer on its own.

A raw similarity is not a probability: 0.8 can be a sure match in one knowledge base and a
coin toss in another. ``Calibrator`` is a logistic regression (Platt scaling with a few
features) fitted on held-out questions whose right entry is known, so its output is the
probability that the best entry is right. Thresholds are then chosen on the same held-out
questions for a target precision, and never on the questions used to report results.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import NormalDist

import numpy as np
from pydantic import BaseModel

from models.faq import FaqEntry, ThresholdPolicy

# What the ranking knows about its best entry; see FaqIndex for how each is computed.
FEATURES = ("score", "margin", "semantic", "lexical")
# What the knowledge base's shape adds: how close the best entry's nearest other entry is,
# how close entries are to each other on average, and how many variants the best entry has
# (a single variant is a noisier picture of an entry, so its score and margin count less).
KB_FEATURES = ("neighbour", "kb_neighbour", "log_variants", "one_variant", "one_variant_score", "one_variant_gap")
# The features of the prior (``faq.prior``) and of every calibration blended with it. "gap"
# is the margin to the runner-up, where a runner-up that was not retrieved counts as the
# lowest similarity retrieved (not as 0, which made a lone candidate look certain).
PRIOR_FEATURES = ("score", "gap", "semantic", "lexical", *KB_FEATURES)
# A feature that hardly varies in the data (the knowledge base's shape is one value for all
# its questions) still keeps this much of the prior's pull.
_LEAST_SPREAD = 0.01
# A calibrated model never claims certainty; a threshold of 1.0 therefore means "never".
_LOWEST, _HIGHEST = 1e-6, 1.0 - 1e-6


class Calibrator(BaseModel):
    features: tuple[str, ...] = FEATURES
    intercept: float
    weights: list[float]

    def logits(self, features: np.ndarray) -> np.ndarray:
        return self.intercept + np.asarray(features, dtype=np.float64) @ np.asarray(self.weights)

    def confidence(self, features: np.ndarray) -> np.ndarray:
        """Probability that the best entry is right, for each row of ``features``."""
        return np.clip(1.0 / (1.0 + np.exp(-self.logits(features))), _LOWEST, _HIGHEST)

    def rescaled(self, features: np.ndarray, correct: np.ndarray) -> Calibrator:
        """The same ranking with its probabilities refitted on ``features`` and ``correct``
        (Platt scaling of this model's logit, folded back into its coefficients).

        A model fitted where questions the knowledge base cannot answer are over-represented
        learns to tell them apart better, but its probabilities speak of that mix; rescaled
        on the mix a knowledge base expects, they speak of that one again."""
        logits = self.logits(features)[:, None]
        platt = Calibrator.fit(logits, correct, names=("logit",))
        slope = platt.weights[0]
        return Calibrator(features=self.features, intercept=platt.intercept + slope * self.intercept,
                          weights=[slope * w for w in self.weights])

    @classmethod
    def fit(
        cls,
        features: np.ndarray,
        correct: np.ndarray,
        *,
        ridge: float = 1e-2,
        names: tuple[str, ...] = FEATURES,
        prior: Calibrator | None = None,
        prior_weight: float = 5.0,
    ) -> Calibrator:
        """Logistic regression by Newton's method; the small ridge keeps weights finite when
        the held-out questions are all right (or all wrong).

        With a ``prior`` (same feature names), the fit is its maximum a posteriori blend with
        the data: a Gaussian penalty of strength ``prior_weight`` pulls every coefficient,
        intercept (on centred features: the mean logit) included, towards the prior's,
        measured by how far the change moves the logit across the data (each coefficient's
        penalty is scaled by its feature's variance). A few held-out questions move it little; thousands outweigh it, and the
        knowledge base's own evidence decides.
        """
        x = np.asarray(features, dtype=np.float64)
        y = np.asarray(correct, dtype=np.float64)
        if prior is not None:
            names = prior.features
        if x.ndim != 2 or x.shape[1] != len(names) or len(x) != len(y) or len(y) == 0:
            raise ValueError(f"need one row of {len(names)} features per held-out question")
        # With a prior, the fit runs on centred features: the intercept is then the mean
        # logit, and pulling it towards the prior's does not also hold back a weight whose
        # feature sits far from zero (a similarity of about 0.7).
        mean = x.mean(axis=0) if prior is not None else np.zeros(x.shape[1])
        design = np.hstack([np.ones((len(x), 1)), x - mean])
        if prior is None:
            centre = np.zeros(design.shape[1])
            penalty = np.full(design.shape[1], ridge)
            penalty[0] = 0.0
        else:
            centre = np.array([prior.intercept + float(np.dot(prior.weights, mean)), *prior.weights])
            # The pull is measured in what a coefficient does to the logit across the data:
            # a feature that varies little (a similarity spans about 0.1) would otherwise be
            # held to the prior far more firmly than one that varies a lot.
            spread = np.maximum(x.var(axis=0), _LEAST_SPREAD)
            penalty = prior_weight * np.concatenate([[1.0], spread])
        coefficients = centre.copy()
        for _ in range(100):
            p = 1.0 / (1.0 + np.exp(-(design @ coefficients)))
            gradient = design.T @ (p - y) + penalty * (coefficients - centre)
            hessian = (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty) + 1e-9 * np.eye(len(penalty))
            step = np.linalg.solve(hessian, gradient)
            coefficients -= step
            if np.max(np.abs(step)) < 1e-10:
                break
        coefficients[0] -= float(np.dot(coefficients[1:], mean))
        return cls(features=tuple(names), intercept=float(coefficients[0]), weights=[float(w) for w in coefficients[1:]])


def choose_threshold(
    confidences: np.ndarray,
    correct: np.ndarray,
    *,
    target_precision: float = 0.97,
    confidence_level: float = 0.9,
) -> float:
    """The lowest threshold whose answered held-out questions reach ``target_precision``.

    "Reach" means the lower end of a Wilson interval at ``confidence_level`` (one-sided) is
    at least the target, so a few lucky held-out questions do not set a threshold that
    misses the target on new ones; 0.5 means the observed precision itself. Returns 1.0
    (never answer automatically) when no threshold reaches the target.
    """
    confidences = np.asarray(confidences, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    if len(confidences) == 0:
        return 1.0
    order = np.argsort(-confidences, kind="stable")
    sorted_confidences = confidences[order]
    right = np.cumsum(correct[order])
    answered = np.arange(1, len(order) + 1)
    z = NormalDist().inv_cdf(confidence_level) if confidence_level > 0.5 else 0.0
    lower = _wilson_lower_bound(right, answered, z)
    # A threshold answers every question at or above it, so only the last of equal
    # confidences is a place to cut.
    cut = np.ones(len(order), dtype=bool)
    cut[:-1] = sorted_confidences[:-1] > sorted_confidences[1:]
    reaching = np.flatnonzero(cut & (lower >= target_precision))
    if len(reaching) == 0:
        return 1.0
    return float(sorted_confidences[reaching[-1]])


def choose_thresholds(
    confidences: np.ndarray,
    correct: np.ndarray,
    departments: Sequence[str],
    *,
    target_precision: float = 0.97,
    confidence_level: float = 0.9,
    min_department_samples: int = 200,
) -> ThresholdPolicy:
    """A default threshold, and one per department that has enough held-out questions.

    ``departments`` is the department of each question's best entry: the department whose
    automatic answers the threshold controls.
    """
    confidences = np.asarray(confidences, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    department_array = np.asarray(departments, dtype=object)
    default = choose_threshold(
        confidences, correct, target_precision=target_precision, confidence_level=confidence_level
    )
    per_department: dict[str, float] = {}
    for department in sorted(set(departments)):
        mine = department_array == department
        if mine.sum() >= min_department_samples:
            per_department[department] = choose_threshold(
                confidences[mine], correct[mine], target_precision=target_precision, confidence_level=confidence_level
            )
    return ThresholdPolicy(default=default, per_department=per_department)


def out_of_scope_threshold(confidences: np.ndarray, recall: float) -> float:
    """The lowest threshold that keeps at least ``recall`` of these out-of-scope examples
    unanswered (answered means confidence >= threshold)."""
    confidences = np.sort(np.asarray(confidences, dtype=np.float64))
    if len(confidences) == 0:
        return 0.0
    kept_back = int(np.ceil(recall * len(confidences)))
    if kept_back == 0:
        return 0.0
    return float(min(np.nextafter(confidences[kept_back - 1], np.inf), 1.0))


def precision_and_coverage(
    confidences: np.ndarray, correct: np.ndarray, thresholds: np.ndarray | float
) -> tuple[float | None, float]:
    """Precision of the answered questions (None if none) and the share answered."""
    confidences = np.asarray(confidences, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    answered = confidences >= np.asarray(thresholds, dtype=np.float64)
    if len(confidences) == 0:
        return None, 0.0
    precision = float(correct[answered].mean()) if answered.any() else None
    return precision, float(answered.mean())


def split_for_calibration(
    entries: Sequence[FaqEntry], *, fraction: float = 0.15, seed: int = 0, min_questions: int = 3
) -> tuple[list[FaqEntry], list[str], list[str]]:
    """Hold out some question variants of each entry to calibrate with.

    Returns the entries without the held-out variants (to build the index from), the
    held-out questions, and the id of the entry each belongs to. Entries with fewer than
    ``min_questions`` variants, and disabled entries, keep all their variants.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError("fraction must be between 0 and 1")
    rng = np.random.default_rng(seed)
    kept_entries: list[FaqEntry] = []
    questions: list[str] = []
    expected: list[str] = []
    for entry in sorted(entries, key=lambda e: e.id):
        if not entry.enabled or len(entry.questions) < min_questions:
            kept_entries.append(entry)
            continue
        held = max(1, round(fraction * len(entry.questions)))
        held_out = set(rng.choice(len(entry.questions), size=held, replace=False).tolist())
        kept_entries.append(
            entry.model_copy(update={"questions": [q for i, q in enumerate(entry.questions) if i not in held_out]})
        )
        for i in sorted(held_out):
            questions.append(entry.questions[i])
            expected.append(entry.id)
    return kept_entries, questions, expected


def _wilson_lower_bound(right: np.ndarray, answered: np.ndarray, z: float) -> np.ndarray:
    p = right / answered
    if z == 0.0:
        return p
    denominator = 1.0 + z * z / answered
    centre = p + z * z / (2 * answered)
    spread = z * np.sqrt(p * (1 - p) / answered + z * z / (4 * answered * answered))
    return (centre - spread) / denominator
