"""The prior confidence model: how sure the bot may be before a knowledge base has taught it.

A shop writes each FAQ question once or twice, which leaves nothing to hold out and
calibrate on. The prior is a ``Calibrator`` over ``PRIOR_FEATURES`` fitted offline on many
knowledge bases sampled from public intent data: a random set of intents, each with a
random number of question variants (1 to 8), asked the intents' other questions, a fifth of
them with their own entry left out (a question the knowledge base cannot answer). Its
features include the knowledge base's shape (how close the best entry's nearest other entry
is, how close entries are on average, how many variants the best entry has), so the same
similarity is trusted more among a few distinct topics than among 77 near-identical banking
intents.

``FaqIndex.calibrate`` blends it with the knowledge base's own held-out variants and
reviewed evidence as they accumulate. The fitted model ships as ``prior.json`` beside this
module, with its provenance; refit it with ``python -m faq.prior --help``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import numpy as np

from faq.calibration import PRIOR_FEATURES, Calibrator
from faq.encoder import DEFAULT_MODEL
from faq.index import FaqIndex, _best_entry, _rank
from models.faq import FaqEntry

PRIOR_FILE = Path(__file__).with_name("prior.json")
# The sampling the shipped prior was fitted with; see ``fit``.
ENTRY_COUNTS = (5, 8, 12, 20, 35, 50, 77)
VARIANT_COUNTS = (1, 2, 3, 5, 8)
QUESTIONS_PER_ENTRY = 15
OUT_OF_SCOPE_SHARE = 0.2


@cache
def load_prior(path: Path = PRIOR_FILE) -> Calibrator:
    """The shipped prior (read once per process)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return Calibrator.model_validate(data["calibrator"])


def fit(
    texts: Sequence[str],
    labels: Sequence[str],
    vectors: np.ndarray,
    *,
    model_name: str = DEFAULT_MODEL,
    knowledge_bases: int = 300,
    seed: int = 0,
) -> tuple[Calibrator, dict]:
    """Fit the prior on ``knowledge_bases`` knowledge bases sampled from labelled questions
    (``texts`` with their intent ``labels`` and embeddings ``vectors``). Returns the model
    and what was measured on the sampled data."""
    rng = np.random.default_rng(seed)
    labels_array = np.asarray(labels)
    intents = np.array(sorted(set(labels)))
    entry_id = {intent: f"intent-{n}" for n, intent in enumerate(intents)}
    # one row per distinct text that can be a question variant
    usable: dict[str, int] = {}
    for row, text in enumerate(texts):
        if text.strip() == text and text and "|" not in text and len(text) <= 1000:
            usable.setdefault(text, row)
    distinct = np.array(sorted(usable.values()), dtype=np.int64)
    rows_of = {intent: distinct[labels_array[distinct] == intent] for intent in intents}
    features: list[np.ndarray] = []
    correct: list[np.ndarray] = []
    for _ in range(knowledge_bases):
        count = min(int(rng.choice(ENTRY_COUNTS)), len(intents))
        chosen = rng.choice(intents, size=count, replace=False)
        variants = int(rng.choice(VARIANT_COUNTS))
        entries, index_rows, query_rows, expected = [], [], [], []
        for intent in chosen:
            rows = rng.permutation(rows_of[intent])
            mine, asked = rows[:variants], rows[variants : variants + QUESTIONS_PER_ENTRY]
            entries.append(FaqEntry(id=entry_id[intent], questions=[texts[r] for r in mine], answer=f"About {intent}."))
            index_rows.extend(mine)
            query_rows.extend(asked)
            expected.extend([entry_id[intent]] * len(asked))
        index = FaqIndex.from_vectors(entries, vectors[index_rows], model_name=model_name)
        x, y = index_examples(index, [texts[r] for r in query_rows], expected, vectors[query_rows], rng)
        features.append(x)
        correct.append(y)
    x = np.vstack(features)
    y = np.concatenate(correct)
    calibrator = Calibrator.fit(x, y, names=PRIOR_FEATURES)
    confidence = calibrator.confidence(x)
    measured = {
        "examples": int(len(y)),
        "right": round(float(y.mean()), 4),
        "brier_score": round(float(np.mean((confidence - y) ** 2)), 4),
    }
    return calibrator, measured


def index_examples(
    index: FaqIndex, questions: Sequence[str], expected_ids: Sequence[str], vectors: np.ndarray, rng
) -> tuple[np.ndarray, np.ndarray]:
    """The prior's features for each question and whether the best entry is right; a share
    of the questions is ranked with its own entry left out (then nothing is right)."""
    expected = np.array([index._entry_position[i] for i in expected_ids])
    candidates = index._candidates(vectors, questions, None, None)
    out_of_scope = rng.random(len(candidates)) < OUT_OF_SCOPE_SHARE
    unanswerable = iter(index._out_of_scope(vectors[out_of_scope], [q for q, o in zip(questions, out_of_scope) if o],
                                            expected[out_of_scope]))
    examples = [next(unanswerable) if o else c for c, o in zip(candidates, out_of_scope, strict=True)]
    ranked = [_rank(c, index.params.lexical_weight) for c in examples]
    best = np.array([_best_entry(c, order) for c, (order, _) in zip(examples, ranked)])
    return index._feature_rows(examples, ranked, PRIOR_FEATURES), (best == expected) & ~out_of_scope


def write(path: Path, calibrator: Calibrator, measured: dict, *, source: str, questions: int, intents: int,
          model: str, knowledge_bases: int, seed: int) -> None:
    """Write a fitted prior with what it was fitted on."""
    document = {
        "calibrator": calibrator.model_dump(mode="json"),
        "provenance": {
            "data": source,
            "questions": questions,
            "intents": intents,
            "model": model,
            "knowledge_bases": knowledge_bases,
            "entries_per_knowledge_base": list(ENTRY_COUNTS),
            "variants_per_entry": list(VARIANT_COUNTS),
            "questions_per_entry": QUESTIONS_PER_ENTRY,
            "out_of_scope_share": OUT_OF_SCOPE_SHARE,
            "seed": seed,
            "fitted_at": datetime.now(UTC).date().isoformat(),
            "measured": measured,
        },
    }
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    from faq.encoder import encode, load_encoder

    parser = argparse.ArgumentParser(
        prog="python -m faq.prior",
        description="Fit the FAQ bot's prior confidence model on labelled intent data and write prior.json.",
    )
    parser.add_argument("--data", type=Path, required=True,
                        help="a CSV with columns text,category (BANKING77's train.csv has that form)")
    parser.add_argument("--source", default="BANKING77 train.csv (Casanueva et al. 2020), CC BY 4.0",
                        help="what the data is and its licence, recorded in the file")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--knowledge-bases", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=PRIOR_FILE)
    args = parser.parse_args(argv)

    with args.data.open(newline="", encoding="utf-8") as handle:
        rows = [(row["text"], row["category"]) for row in csv.DictReader(handle)]
    texts = [text for text, _ in rows]
    vectors = encode(load_encoder(args.model), texts)
    calibrator, measured = fit(texts, [label for _, label in rows], vectors, model_name=args.model,
                               knowledge_bases=args.knowledge_bases, seed=args.seed)
    write(args.out, calibrator, measured, source=args.source, questions=len(rows),
          intents=len({label for _, label in rows}), model=args.model, knowledge_bases=args.knowledge_bases,
          seed=args.seed)
    print(f"wrote {args.out.name}: {measured}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
