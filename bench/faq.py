"""Benchmark of the FAQ matching engine on BANKING77, against a TF-IDF + cosine baseline.

Each BANKING77 intent is one FAQ entry whose question variants are its train.csv rows.
A stratified part of train.csv (per intent, fixed seed) is held out: it chooses the lexical
weight, fits the confidence calibration and chooses thresholds. test.csv is only scored.
The scale test searches an index of synthetic entries (random unit vectors).

Run from the repository root:  .venv/bin/python bench/faq.py   (--help for options)

Data: Casanueva et al., "Efficient Intent Detection with Dual Sentence Encoders" (2020),
CC BY 4.0.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from faq.calibration import choose_threshold, precision_and_coverage, split_for_calibration  # noqa: E402
from faq.encoder import DEFAULT_MODEL, encode, load_encoder  # noqa: E402
from faq.index import FaqIndex, SearchParams  # noqa: E402
from bench.banking77 import DEFAULT_DATA, entry_id, intents_as_entries, read_rows  # noqa: E402
from models.faq import FaqDecision, FaqEntry, FaqResult, ThresholdPolicy  # noqa: E402

FEW = {"target_precision": 0.9, "precision": 0.95, "coverage": {1: 0.08, 2: 0.15}}
OUT_OF_SCOPE = {"recall": 0.90, "gain": 0.10}
# top-1 0.930 and precision 0.980 at coverage 0.827 were measured before the prior, the
# out-of-scope thresholds and the int8 encoder; top-1 may lose at most 0.005 of it.
TARGETS = {"reference_coverage": 0.827, "reference_precision": 0.980, "top1": 0.925, "precision": 0.97,
           "coverage": 0.60, "p50_ms": 5.0, "scale_ms": 2.0}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with train.csv and test.csv")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="sentence-transformers model name or directory")
    parser.add_argument("--holdout", type=float, default=0.15, help="share of each intent's train rows held out")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--target-precision", type=float, default=TARGETS["precision"])
    parser.add_argument("--latency-queries", type=int, default=300, help="queries timed one at a time")
    parser.add_argument("--scale-entries", type=int, default=100_000)
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--skip-alternatives", action="store_true", help="skip the other matching methods tried")
    parser.add_argument("--skip-few", action="store_true", help="skip the few-variant knowledge bases")
    parser.add_argument("--skip-out-of-scope", action="store_true", help="skip the out-of-scope scenario")
    parser.add_argument("--also-out-of-scope-recall", type=float, nargs="*", default=[], metavar="RECALL",
                        help="run the out-of-scope scenario again with these TICKETFLOW_FAQ_OUT_OF_SCOPE_RECALL values"
                             " (the targets use the setting's)")
    parser.add_argument("--few-target-precision", type=float, default=FEW["target_precision"],
                        help="target precision the few-variant knowledge bases are published with")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    started = time.perf_counter()

    train = read_rows(args.data / "train.csv")
    test = read_rows(args.data / "test.csv")
    entries = intents_as_entries(train)
    kb, calibration_questions, calibration_ids = split_for_calibration(
        entries, fraction=args.holdout, seed=args.seed
    )
    test_texts = [text for text, _ in test]
    test_ids = np.array([entry_id(intent) for _, intent in test])
    kb_variants = sum(len(entry.questions) for entry in kb)
    print(f"BANKING77: {len(entries)} entries, {kb_variants} question variants in the index,")
    print(f"  {len(calibration_questions)} held-out train rows for calibration, {len(test)} test rows scored")

    print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())} (on {os.cpu_count()} cores)")

    encoder = load_encoder(args.model)
    kb_texts = [q for entry in kb for q in entry.questions]
    t = time.perf_counter()
    kb_vectors = encode(encoder, kb_texts)
    encode_seconds = time.perf_counter() - t
    index = FaqIndex.from_vectors(kb, kb_vectors, model_name=args.model, encoder=encoder)
    print(f"index built in {time.perf_counter() - t:.1f} s, {encode_seconds:.1f} s of it encoding (version {index.version})")
    calibration_vectors = encode(encoder, calibration_questions)
    uncalibrated = index
    index, report = index.calibrate(
        calibration_questions, calibration_ids, target_precision=args.target_precision, vectors=calibration_vectors
    )
    weights = ", ".join(f"{w}: {a:.4f}" for w, a in report.accuracy_by_lexical_weight.items())
    print(f"calibration: lexical weight {report.lexical_weight:g} chosen (held-out top-1 by weight {{{weights}}})")
    print(f"  thresholds {format_policy(report.thresholds)}; held-out precision "
          f"{report.precision_at_threshold:.4f}, coverage {report.coverage_at_threshold:.4f}, "
          f"Brier {report.brier_score:.4f}")

    # --- accuracy, precision and coverage on test.csv, and batch throughput ---------------
    # search_many is these two steps; they are timed apart to reuse the test vectors.
    t = time.perf_counter()
    test_vectors = encode(encoder, test_texts)
    t_encoded = time.perf_counter()
    results = index.search_vectors(test_vectors, test_texts)
    batch_seconds = time.perf_counter() - t
    batch_search_seconds = time.perf_counter() - t_encoded
    ours = score(results, test_ids)
    global_only = score(
        [decide_again(r, ThresholdPolicy(default=index.thresholds.default)) for r in results], test_ids
    )

    # --- single-query latency, one query at a time ----------------------------------------
    sample = test_texts[: args.latency_queries]
    for text in test_texts[-20:]:
        index.search(text)  # warm-up
    total_ms = timed(lambda text: index.search(text), sample)
    encode_ms = timed(lambda text: encode(encoder, [text]), sample)
    search_ms = timed(lambda i: index.search_vectors(test_vectors[i : i + 1], [test_texts[i]]), range(len(sample)))

    print()
    print("== ours: MiniLM embeddings, top-2 variant pooling, char n-gram TF-IDF, calibrated ==")
    print(f"top-1 accuracy            {ours['top1']:.4f}")
    print(f"precision at threshold    {ours['precision']:.4f}   coverage {ours['coverage']:.4f}"
          f"   (per-department thresholds)")
    print(f"  one global threshold    {global_only['precision']:.4f}   coverage {global_only['coverage']:.4f}")
    at_coverage = precision_at_coverage(results, test_ids, TARGETS["reference_coverage"])
    print(f"precision at coverage {TARGETS['reference_coverage']:g} (the most confident answers) {at_coverage:.4f}")
    print(f"single query (encode+search) p50 {np.percentile(total_ms, 50):.2f} ms  p99 {np.percentile(total_ms, 99):.2f} ms"
          f"  [encode p50 {np.percentile(encode_ms, 50):.2f} ms, search p50 {np.percentile(search_ms, 50):.2f} ms]")
    print(f"batch throughput          {len(test_texts) / batch_seconds:.0f} queries/s (encode+search, batches of 64;"
          f" search alone {len(test_texts) / batch_search_seconds:.0f} queries/s)")

    # Questions the knowledge base cannot answer: each test question without its own entry.
    print("test questions matched with their own entry left out (any automatic answer is wrong):")
    unanswerable = index.search_without_own_entry(test_texts, list(test_ids), vectors=test_vectors)
    print(f"  answered automatically  {np.mean([r.decision == FaqDecision.answer for r in unanswerable]):.4f}"
          f"   (calibrated on answerable questions only)")
    cautious, cautious_report = uncalibrated.calibrate(
        calibration_questions, calibration_ids, target_precision=args.target_precision,
        vectors=calibration_vectors, out_of_scope_share=0.1,
    )
    careful = score(cautious.search_vectors(test_vectors, test_texts), test_ids)
    unanswerable = cautious.search_without_own_entry(test_texts, list(test_ids), vectors=test_vectors)
    print(f"  answered automatically  {np.mean([r.decision == FaqDecision.answer for r in unanswerable]):.4f}"
          f"   (calibrated with 10% such examples: thresholds {format_policy(cautious_report.thresholds)};"
          f" test precision {fmt(careful['precision'])}, coverage {careful['coverage']:.4f})")

    # --- baseline ------------------------------------------------------------------------
    kb_owner = np.array([entry.id for entry in kb for _ in entry.questions])
    baselines = [
        tfidf_baseline("word 1-2-grams", kb_texts, kb_owner, calibration_questions, calibration_ids, test_texts,
                       test_ids, sample, args.target_precision, analyzer="word", ngram_range=(1, 2)),
        tfidf_baseline("char_wb 2-4-grams", kb_texts, kb_owner, calibration_questions, calibration_ids, test_texts,
                       test_ids, sample, args.target_precision, analyzer="char_wb", ngram_range=(2, 4)),
    ]
    print()
    print("== baseline: scikit-learn TF-IDF + cosine to the nearest variant, one query at a time ==")
    for b in baselines:
        print(f"{b['name']:<18} top-1 {b['top1']:.4f}  precision {fmt(b['precision'])} coverage {b['coverage']:.4f}"
              f"  single p50 {b['p50']:.2f} ms p99 {b['p99']:.2f} ms  {b['qps']:.0f} queries/s")
    best = max(baselines, key=lambda b: b["top1"])
    print(f"ours / best baseline ({best['name']}): top-1 x{ours['top1'] / best['top1']:.3f}, "
          f"coverage at target precision x{ours['coverage'] / max(best['coverage'], 1e-9):.2f}, "
          f"single-query p50 latency x{np.percentile(total_ms, 50) / best['p50']:.1f}, "
          f"throughput x{len(test_texts) / batch_seconds / best['qps']:.2f}")

    if not args.skip_alternatives:
        print()
        print("== other matching methods tried (same index rows; test top-1) ==")
        alternatives(index, kb, kb_vectors, test_texts, test_vectors, test_ids)

    vector_of = dict(zip(kb_texts, kb_vectors)) | dict(zip(calibration_questions, calibration_vectors))
    few_rows: list[tuple[str, float | None, str, float]] = []
    if not args.skip_few:
        print()
        print("== few variants: every intent with 1 or 2 of its train rows, calibrated by the prior alone ==")
        few_rows = few_variants(entries, vector_of, test_texts, test_vectors, test_ids, args.model,
                                args.few_target_precision)
    oos_rows: list[tuple[str, float | None, str, float]] = []
    if not args.skip_out_of_scope:
        print()
        print("== out of scope: 20% of the intents left out of the index, their test rows asked ==")
        oos_rows = out_of_scope(entries, vector_of, test_texts, test_vectors, test_ids, args.model)
        for recall in args.also_out_of_scope_recall:
            print(f"-- the same with the out-of-scope recall set to {recall:g} --")
            out_of_scope(entries, vector_of, test_texts, test_vectors, test_ids, args.model, recall=recall)

    scale = None
    if not args.skip_scale:
        print()
        print(f"== scale: {args.scale_entries:,} synthetic entries, one random unit vector each ==")
        scale = scale_test(args.scale_entries, index.dimension, test_texts[0])

    print()
    print("== targets ==")
    p50 = float(np.percentile(total_ms, 50))
    rows = [
        ("top-1 accuracy", ours["top1"], ">=", TARGETS["top1"]),
        (f"precision at coverage {TARGETS['reference_coverage']:g}", at_coverage, ">=", TARGETS["reference_precision"]),
        ("precision at threshold", ours["precision"], ">=", args.target_precision),
        ("coverage at threshold", ours["coverage"], ">=", TARGETS["coverage"]),
        ("single-query p50 ms", p50, "<=", TARGETS["p50_ms"]),
    ]
    rows += few_rows + oos_rows
    if scale is not None:
        rows.append((f"search p50 ms, {args.scale_entries:,} entries", scale, "<=", TARGETS["scale_ms"]))
    for name, value, op, target in rows:
        met = value is not None and (value >= target if op == ">=" else value <= target)
        print(f"{name:<36} {fmt(value):>8} {op} {target:<6} {'met' if met else 'MISSED'}")
    print(f"(benchmark ran {time.perf_counter() - started:.0f} s; load average at the end:"
          f" {', '.join(f'{x:.2f}' for x in os.getloadavg())}: other work on the machine inflates latencies)")
    return 0


# --- data ------------------------------------------------------------------------------------


def score(results: list[FaqResult], expected: np.ndarray) -> dict[str, float | None]:
    best = np.array([r.best.entry_id if r.best else "" for r in results])
    right = best == expected
    answered = np.array([r.decision == FaqDecision.answer for r in results])
    return {
        "top1": float(right.mean()),
        "precision": float(right[answered].mean()) if answered.any() else None,
        "coverage": float(answered.mean()),
    }


def decide_again(result: FaqResult, policy: ThresholdPolicy) -> FaqResult:
    threshold = policy.threshold_for(result.best.department if result.best else None)
    confident = result.confidence is not None and result.confidence >= threshold
    decision = FaqDecision.answer if confident else FaqDecision.escalate
    return result.model_copy(update={"threshold": threshold, "decision": decision})


def timed(call: Callable, items) -> np.ndarray:
    times = []
    for item in items:
        t = time.perf_counter()
        call(item)
        times.append((time.perf_counter() - t) * 1000)
    return np.array(times)


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}" if value < 10 else f"{value:.1f}"


def format_policy(policy: ThresholdPolicy) -> str:
    per = ", ".join(f"{d} {t:.3f}" for d, t in sorted(policy.per_department.items()))
    return f"default {policy.default:.3f}" + (f" ({per})" if per else "")


# --- baseline --------------------------------------------------------------------------------


def tfidf_baseline(
    name, kb_texts, kb_owner, calibration_questions, calibration_ids, test_texts, test_ids, sample, target, **tfidf
) -> dict:
    """The old way: TF-IDF rows of every variant, cosine with each query, best variant wins."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(sublinear_tf=True, **tfidf)
    rows = vectorizer.fit_transform(kb_texts)
    rows_t = rows.T.tocsr()

    def best(text: str) -> tuple[str, float]:
        similarity = (vectorizer.transform([text]) @ rows_t).toarray().ravel()
        i = int(np.argmax(similarity))
        return kb_owner[i], float(similarity[i])

    calibration = [best(q) for q in calibration_questions]
    threshold = choose_threshold(
        np.array([s for _, s in calibration]),
        np.array([b for b, _ in calibration]) == np.array(calibration_ids),
        target_precision=target,
    )
    t = time.perf_counter()
    predictions = [best(q) for q in test_texts]
    seconds = time.perf_counter() - t
    right = np.array([b for b, _ in predictions]) == test_ids
    precision, coverage = precision_and_coverage(np.array([s for _, s in predictions]), right, threshold)
    latency = timed(best, sample)
    return {
        "name": name,
        "top1": float(right.mean()),
        "precision": precision,
        "coverage": coverage,
        "p50": float(np.percentile(latency, 50)),
        "p99": float(np.percentile(latency, 99)),
        "qps": len(test_texts) / seconds,
    }


# --- few variants and out of scope ---------------------------------------------------------


def few_variants(entries, vector_of, test_texts, test_vectors, test_ids, model, target_precision, draws=5):
    """Knowledge bases of 1 and 2 variants per intent (random train rows, ``draws`` draws),
    published as ``faq.knowledge_base`` would: nothing to hold out, the prior alone
    calibrates, the threshold is the target precision. Scored on test.csv, beside the best
    a plain cosine threshold on the nearest variant could do (chosen on test.csv itself)."""
    from faq.prior import load_prior

    rows = []
    for variants in (1, 2):
        measured = []
        for draw in range(draws):
            rng = np.random.default_rng(1000 * variants + draw)
            kb = [e.model_copy(update={"questions": [e.questions[i] for i in
                                                     rng.choice(len(e.questions), size=variants, replace=False)]})
                  for e in entries]
            vectors = np.array([vector_of[q] for e in kb for q in e.questions])
            index = FaqIndex.from_vectors(kb, vectors, model_name=model)
            index, _ = index.calibrate([], [], prior=load_prior(), target_precision=target_precision)
            got = score(index.search_vectors(test_vectors, test_texts), test_ids)
            nearest = test_vectors @ vectors.T
            owner = np.array([e.id for e in kb for _ in e.questions])
            right = owner[nearest.argmax(axis=1)] == test_ids
            frontier = cosine_frontier(nearest.max(axis=1), right, FEW["precision"])
            measured.append((got["top1"], got["precision"], got["coverage"], frontier))
        m = np.array([[np.nan if v is None else v for v in row] for row in measured], dtype=float)
        print(f"{variants} variant{'s' if variants > 1 else ''}: top-1 {m[:, 0].mean():.4f}; at threshold "
              f"{target_precision:g}: precision {np.nanmean(m[:, 1]):.4f} (draws {fmt_list(m[:, 1])}), "
              f"coverage {m[:, 2].mean():.4f} (draws {fmt_list(m[:, 2])})")
        print(f"  plain cosine on the nearest variant, best threshold for precision {FEW['precision']:g} chosen on"
              f" test.csv: coverage {m[:, 3].mean():.4f} (draws {fmt_list(m[:, 3])})")
        rows += [(f"{variants}-variant precision", float(np.nanmean(m[:, 1])), ">=", FEW["precision"]),
                 (f"{variants}-variant coverage", float(m[:, 2].mean()), ">=", FEW["coverage"][variants])]
    return rows


def out_of_scope(entries, vector_of, test_texts, test_vectors, test_ids, model, draws=5, left_out=0.2,
                 recall: float | None = None):
    """A fifth of the intents left out of the index (``draws`` draws); their test rows are
    questions it cannot answer. The index is built and calibrated as ``faq.knowledge_base``
    publishes it (held-out variants, simulated out-of-scope questions, the prior, the
    default settings). Compared with a plain cosine threshold on the nearest variant set to
    reach the same out-of-scope recall on the same questions."""
    from faq.knowledge_base import CALIBRATION
    from faq.prior import load_prior

    c = CALIBRATION if recall is None else CALIBRATION.model_copy(update={"out_of_scope_recall": recall})
    print(f"published with out-of-scope recall {c.out_of_scope_recall:g} of the simulated questions")
    measured = []
    for draw in range(draws):
        rng = np.random.default_rng(500 + draw)
        out = set(rng.choice([e.id for e in entries], size=round(left_out * len(entries)), replace=False).tolist())
        kept_entries = [e for e in entries if e.id not in out]
        kb, questions, expected = split_for_calibration(kept_entries, fraction=c.holdout_fraction, seed=c.seed)
        vectors = np.array([vector_of[q] for e in kb for q in e.questions])
        index = FaqIndex.from_vectors(kb, vectors, model_name=model)
        index, report = index.calibrate(
            questions, expected, target_precision=c.target_precision, confidence_level=c.confidence_level,
            out_of_scope_share=c.out_of_scope_share, out_of_scope_recall=c.out_of_scope_recall,
            min_department_samples=c.min_department_samples, prior=load_prior(),
            vectors=np.array([vector_of[q] for q in questions]),
        )
        results = index.search_vectors(test_vectors, test_texts)
        answered = np.array([r.decision == FaqDecision.answer for r in results])
        best = np.array([r.best.entry_id if r.best else "" for r in results])
        in_scope = ~np.isin(test_ids, list(out))
        recall = float((~answered[~in_scope]).mean())
        ours = float((answered & in_scope & (best == test_ids)).sum() / in_scope.sum())
        nearest = test_vectors @ vectors.T
        owner = np.array([e.id for e in kb for _ in e.questions])[nearest.argmax(axis=1)]
        cosine = nearest.max(axis=1)
        # the lowest cosine threshold that keeps back as many out-of-scope questions
        cut = np.sort(cosine[~in_scope])[min(int(np.ceil(recall * (~in_scope).sum())), (~in_scope).sum() - 1)]
        plain = float(((cosine > cut) & in_scope & (owner == test_ids)).sum() / in_scope.sum())
        measured.append((recall, ours, plain, report.out_of_scope_recall))
        print(f"draw {draw}: thresholds {format_policy(index.thresholds)}; out-of-scope recall {recall:.4f}"
              f" (simulated at publish {report.out_of_scope_recall:.4f}); in-scope answered and right {ours:.4f},"
              f" plain cosine at the same recall {plain:.4f}")
    m = np.array(measured)
    print(f"mean: out-of-scope recall {m[:, 0].mean():.4f}, in-scope answered and right {m[:, 1].mean():.4f}"
          f" vs plain cosine {m[:, 2].mean():.4f} (gain {m[:, 1].mean() - m[:, 2].mean():+.4f})")
    return [("out-of-scope recall", float(m[:, 0].mean()), ">=", OUT_OF_SCOPE["recall"]),
            ("in-scope right, gain over cosine", float(m[:, 1].mean() - m[:, 2].mean()), ">=", OUT_OF_SCOPE["gain"])]


def precision_at_coverage(results: list[FaqResult], expected: np.ndarray, coverage: float) -> float:
    """Precision of the ``coverage`` share of questions answered with the highest confidence."""
    confidence = np.array([r.confidence if r.confidence is not None else -1.0 for r in results])
    right = np.array([(r.best.entry_id if r.best else "") == e for r, e in zip(results, expected, strict=True)])
    top = np.argsort(-confidence, kind="stable")[: max(1, round(coverage * len(results)))]
    return float(right[top].mean())


def cosine_frontier(similarity: np.ndarray, right: np.ndarray, precision: float) -> float:
    """The largest share of questions a threshold on ``similarity`` answers at ``precision``."""
    order = np.argsort(-similarity, kind="stable")
    reached = np.flatnonzero(np.cumsum(right[order]) / np.arange(1, len(order) + 1) >= precision)
    return float((reached[-1] + 1) / len(order)) if len(reached) else 0.0


def fmt_list(values: np.ndarray) -> str:
    return " ".join(fmt(None if np.isnan(v) else float(v)) for v in values)


# --- alternatives ----------------------------------------------------------------------------


def alternatives(index, kb, kb_vectors, test_texts, test_vectors, test_ids):
    """Every method here learns from the index's question variants only."""
    kb_texts = [q for entry in kb for q in entry.questions]
    owner_names = np.array([entry.id for entry in kb for _ in entry.questions])
    names, owner = np.unique(owner_names, return_inverse=True)
    similarity = test_vectors @ kb_vectors.T

    def report(name: str, predicted: np.ndarray) -> None:
        print(f"{name:<58} {float((names[predicted] == test_ids).mean()):.4f}")

    for pool_top, weight, label in (
        (1, 0.0, "nearest variant (semantic only)"),
        (2, 0.0, "mean of 2 nearest variants per entry (semantic only)"),
        (3, 0.0, "mean of 3 nearest variants per entry (semantic only)"),
        (2, index.params.lexical_weight, f"2 nearest + char n-gram lexical x{index.params.lexical_weight:g} (ours)"),
    ):
        params = index.params.model_copy(update={"pool_top": pool_top, "lexical_weight": weight})
        variant = FaqIndex.from_vectors(kb, kb_vectors, model_name=index.model_name, params=params)
        results = variant.search_vectors(test_vectors, test_texts)
        print(f"{label:<58} {float(np.mean([r.best.entry_id == e for r, e in zip(results, test_ids)])):.4f}")

    centroids = np.stack([kb_vectors[owner == c].mean(axis=0) for c in range(len(names))])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    report("entry centroid", np.argmax(test_vectors @ centroids.T, axis=1))

    k = 10
    nearest = np.argsort(-similarity, axis=1)[:, :k]
    votes = np.zeros((len(test_vectors), len(names)))
    for j in range(k):
        np.add.at(votes, (np.arange(len(test_vectors)), owner[nearest[:, j]]), similarity[np.arange(len(test_vectors)), nearest[:, j]])
    report(f"kNN voting (k={k}, similarity-weighted)", np.argmax(votes, axis=1))

    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    t = time.perf_counter()
    head = LogisticRegression(C=10, max_iter=2000).fit(kb_vectors, owner)
    report(f"logistic-regression head on embeddings ({time.perf_counter() - t:.0f} s to train)", head.predict(test_vectors))
    t = time.perf_counter()
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True).fit(kb_texts)
    both = hstack([csr_matrix(kb_vectors), chars.transform(kb_texts)]).tocsr()
    head = LogisticRegression(C=10, max_iter=3000).fit(both, owner)
    predicted = head.predict(hstack([csr_matrix(test_vectors), chars.transform(test_texts)]).tocsr())
    report(f"logistic-regression head on embeddings + char n-grams ({time.perf_counter() - t:.0f} s)", predicted)


# --- scale -----------------------------------------------------------------------------------


def scale_test(count: int, dimension: int, query_text: str) -> float:
    """Search time and recall@1 against exact search, on random unit vectors.

    Uniform random vectors are the hardest case for an IVF (no clusters to exploit). A
    query is a stored vector moved to cosine 0.90 or 0.75 from it: on BANKING77 the median
    test query has cosine 0.92 with its nearest train variant and the 5th percentile 0.75.
    """
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((count, dimension), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    entries = [FaqEntry(id=f"e{i:06d}", questions=[f"synthetic question {i}"], answer="-") for i in range(count)]
    t = time.perf_counter()
    index = FaqIndex.from_vectors(entries, vectors, model_name="synthetic", params=SearchParams())
    info = index.info()
    kind = f"IVF, {info.ivf_lists} lists, {info.ivf_probes} probed" if info.approximate_search else "exact"
    print(f"index built in {time.perf_counter() - t:.1f} s ({kind})")
    brute = timed(lambda q: int(np.argmax(vectors @ q)), vectors[:200])
    print(f"exact brute force (numpy float32 product + argmax)   p50 {np.percentile(brute, 50):.2f} ms")
    p50_overall = []
    for cosine in (0.90, 0.75):
        queries, _ = near_copies(rng, vectors, 500, cosine)
        exact = np.argmax(queries @ vectors.T, axis=1)
        found = []
        times = timed(lambda q: found.append(index.search_vectors(q[None], [query_text])[0]), queries)
        recall = float(np.mean([r.best.entry_id == f"e{e:06d}" for r, e in zip(found, exact)]))
        p50_overall.append(float(np.percentile(times, 50)))
        print(f"queries at cosine {cosine:.2f}: FaqIndex search p50 {np.percentile(times, 50):.2f} ms,"
              f" p99 {np.percentile(times, 99):.2f} ms, recall@1 vs exact {recall:.3f}")
    return max(p50_overall)


def near_copies(rng, vectors: np.ndarray, count: int, cosine: float) -> tuple[np.ndarray, np.ndarray]:
    sources = rng.choice(len(vectors), size=count, replace=False)
    noise = rng.standard_normal((count, vectors.shape[1])).astype(np.float32)
    noise -= (noise * vectors[sources]).sum(axis=1, keepdims=True) * vectors[sources]
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    queries = cosine * vectors[sources] + np.sqrt(1 - cosine**2) * noise
    return queries.astype(np.float32), sources


if __name__ == "__main__":
    sys.exit(main())
