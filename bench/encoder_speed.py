"""Speed and accuracy of FAQ encoder variants on BANKING77: float32 against int8 weights,
torch against ONNX Runtime, thread counts, the maximum sequence length, and
``SentenceTransformer.encode`` against the one-question path of ``faq.encoder.encode``.

For each variant: single-query p50/p99 (one question at a time: encode, and encode plus
search of a plain index of all train.csv rows), batch throughput, cosine agreement of the
test embeddings with float32, test.csv top-1, and the p50 ratio to the baseline (float32
through ``SentenceTransformer.encode`` on one thread, as the FAQ worker ran before). The
variants take turns in blocks of queries in one process, so that they share whatever
else the machine is doing; the accuracy figures come from the same process.

Run from the repository root:  .venv/bin/python bench/encoder_speed.py   (--help for options)

Data: Casanueva et al., "Efficient Intent Detection with Dual Sentence Encoders" (2020),
CC BY 4.0.
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from faq.encoder import BASE_MODEL, encode, load_encoder, model_variant  # noqa: E402
from faq.index import FaqIndex  # noqa: E402
from faq.onnx_model import OnnxEncoder  # noqa: E402
from bench.banking77 import DEFAULT_DATA, entry_id, intents_as_entries, read_rows  # noqa: E402

TARGETS = {"p50_ms": 5.0, "top1_drop": 0.005}


@dataclass
class Variant:
    name: str
    # "fp32"; "onnx-int8" (ONNX Runtime, the default); "int8" (torch, per output channel, the
    # earlier default); "int8-tensor" (torch, one scale per layer)
    weights: str
    threads: int
    path: str = "faq"  # "faq": faq.encoder.encode; "st": SentenceTransformer.encode as before
    max_length: int | None = None
    encode_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    batch_qps: list[float] = field(default_factory=list)


VARIANTS = [
    Variant("fp32, st encode, 1 thread (before)", "fp32", 1, "st"),
    Variant("fp32, st encode, 2 threads", "fp32", 2, "st"),
    Variant("fp32, one-question path, 1 thread", "fp32", 1),
    Variant("int8 per layer, one-question path, 1 thread", "int8-tensor", 1),
    Variant("int8, st encode, 1 thread", "int8", 1, "st"),
    Variant("int8, one-question path, 1 thread (torch-int8)", "int8", 1),
    Variant("int8, one-question path, 2 threads", "int8", 2),
    Variant("int8, one-question path, max length 64, 1 thread", "int8", 1, max_length=64),
    Variant("ONNX int8, 1 thread (default)", "onnx-int8", 1),
    Variant("ONNX int8, 2 threads", "onnx-int8", 2),
]
DEFAULT = next(v for v in VARIANTS if v.name.endswith("(default)"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with train.csv and test.csv")
    parser.add_argument("--latency-queries", type=int, default=300, help="test questions timed per variant and round")
    parser.add_argument("--rounds", type=int, default=3, help="times every variant takes its turn")
    parser.add_argument("--block", type=int, default=25, help="questions a variant answers per turn")
    parser.add_argument("--batch-texts", type=int, default=256, help="texts per batch-throughput measurement")
    parser.add_argument("--skip-accuracy", action="store_true", help="latency only (no index of all train rows)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    import torch

    print(f"load average at start: {load()} (on {os.cpu_count()} cores); torch {torch.__version__},"
          f" quantized engine {torch.backends.quantized.engine}")
    started = time.perf_counter()
    threads_before = torch.get_num_threads()
    train, test = read_rows(args.data / "train.csv"), read_rows(args.data / "test.csv")
    entries = intents_as_entries(train)
    train_texts = [question for entry in entries for question in entry.questions]
    test_texts = [" ".join(text.split()) for text, _ in test]
    test_ids = np.array([entry_id(intent) for _, intent in test])
    models = {
        "fp32": load_encoder(BASE_MODEL),
        "int8": load_encoder(model_variant(BASE_MODEL, "torch-int8")),
        "onnx-int8": load_encoder(model_variant(BASE_MODEL, "int8")),
        "int8-tensor": quantized_per_layer(load_encoder(BASE_MODEL)),
    }
    tokens = max(len(ids) for ids in models["fp32"].tokenizer(train_texts + test_texts)["input_ids"])
    print(f"BANKING77: {len(entries)} entries, {len(train_texts)} train variants indexed, {len(test_texts)} test"
          f" questions; the longest is {tokens} tokens (model maximum {models['fp32'].max_seq_length})")
    seen, repeats = {text.casefold() for text in train_texts}, 0
    for text in test_texts:
        repeats += text.casefold() in seen
        seen.add(text.casefold())
    print(f"test questions word for word in train.csv or asked before: {repeats} of {len(test_texts)}"
          f" (what a cache of repeated texts would save)")

    # --- accuracy: a plain index per weights, queries encoded one at a time ----------------
    indexes: dict[str, FaqIndex] = {}
    test_vectors: dict[str, np.ndarray] = {}
    top1: dict[str, float] = {}
    torch.set_num_threads(1)  # a second thread gains little with both cores shared (see the table)
    if args.skip_accuracy:
        small = [entry.model_copy(update={"questions": entry.questions[:5]}) for entry in entries]
        for weights, model in models.items():
            vectors = encode_each(model, [q for entry in small for q in entry.questions], one_at_a_time=True)
            indexes[weights] = FaqIndex.from_vectors(small, vectors, model_name=weights, encoder=model)
    else:
        for weights, model in models.items():
            t = time.perf_counter()
            train_vectors = encode_each(model, train_texts, one_at_a_time=weights != "fp32")
            test_vectors[weights] = encode_each(model, test_texts, one_at_a_time=weights != "fp32")
            indexes[weights] = FaqIndex.from_vectors(entries, train_vectors, model_name=weights, encoder=model)
            top1[weights] = accuracy(indexes[weights], test_vectors[weights], test_texts, test_ids)
            print(f"{weights:<12} encoded {len(train_texts) + len(test_texts)} texts in"
                  f" {time.perf_counter() - t:.0f} s; test top-1 {top1[weights]:.4f}", flush=True)
        mixed = accuracy(indexes["fp32"], test_vectors["onnx-int8"], test_texts, test_ids)
        print(f"float32 index queried with int8 vectors (what the model name in an index prevents): top-1 {mixed:.4f}")

    # --- latency: variants take turns ------------------------------------------------------
    sample = test_texts[: args.latency_queries]
    for variant in VARIANTS:
        run_block(variant, models, indexes, test_texts[-10:], record=False)  # warm-up
    for round_ in range(args.rounds):
        t = time.perf_counter()
        for start in range(0, len(sample), args.block):
            for variant in VARIANTS:
                run_block(variant, models, indexes, sample[start : start + args.block])
        for variant in VARIANTS:
            with settings_of(variant, models[variant.weights]):
                batch = test_texts[: args.batch_texts]
                t_batch = time.perf_counter()
                variant_encode(variant, models[variant.weights], batch, batch=True)
                variant.batch_qps.append(len(batch) / (time.perf_counter() - t_batch))
        print(f"round {round_ + 1} of {args.rounds}: {time.perf_counter() - t:.0f} s, load average {load()}", flush=True)
    torch.set_num_threads(threads_before)

    baseline = float(np.percentile(VARIANTS[0].total_ms, 50))
    print()
    print(f"== one question at a time ({args.rounds} rounds x {len(sample)} questions per variant) ==")
    print(f"{'variant':<50} {'encode p50/p99':>15} {'+search p50/p99':>16} {'ratio':>6} {'batch q/s':>9}"
          f" {'agree mean/min':>15} {'top-1':>7}")
    for variant in VARIANTS:
        p50 = float(np.percentile(variant.total_ms, 50))
        agree = "n/a"
        if variant.weights in test_vectors and variant.max_length is None:
            cosine = (test_vectors[variant.weights] * test_vectors["fp32"]).sum(axis=1)
            agree = f"{cosine.mean():.4f}/{cosine.min():.3f}"
        print(f"{variant.name:<50} {pct(variant.encode_ms):>15} {pct(variant.total_ms):>16} {p50 / baseline:>6.2f}"
              f" {np.median(variant.batch_qps):>9.0f} {agree:>15}"
              f" {fmt(None if variant.max_length else top1.get(variant.weights)):>7}")
    p50 = float(np.percentile(DEFAULT.total_ms, 50))
    print()
    print("== targets (the default variant) ==")
    print(f"single-query p50 ms (encode+search)   {p50:>7.2f} <= {TARGETS['p50_ms']}"
          f"   {'met' if p50 <= TARGETS['p50_ms'] else 'MISSED'}")
    if top1:
        drop = top1["fp32"] - top1[DEFAULT.weights]
        print(f"top-1 below float32                   {drop:>7.4f} <= {TARGETS['top1_drop']}"
              f"   {'met' if drop <= TARGETS['top1_drop'] else 'MISSED'}")
    print(f"(benchmark ran {time.perf_counter() - started:.0f} s; load average at the end: {load()};"
          f" other work on the machine inflates latencies, the ratios share it)")
    return 0


# --- variants --------------------------------------------------------------------------------


def quantized_per_layer(fp32):
    """The int8 variant with one activation and weight scale per layer (torch's default)."""
    import torch
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_dynamic(copy.deepcopy(fp32), {torch.nn.Linear}, dtype=torch.qint8)


@contextmanager
def settings_of(variant: Variant, model) -> Iterator[None]:
    """A variant's thread count and maximum length for a block, put back afterwards."""
    import torch

    if isinstance(model, OnnxEncoder):
        threads = model.threads
        model.set_threads(variant.threads)
        try:
            yield
        finally:
            model.set_threads(threads)
        return
    threads, max_length = torch.get_num_threads(), model.max_seq_length
    torch.set_num_threads(variant.threads)
    model.max_seq_length = variant.max_length or max_length
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        model.max_seq_length = max_length


def variant_encode(variant: Variant, model, texts: list[str], *, batch: bool = False) -> np.ndarray:
    if variant.path == "st":
        vectors = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                               show_progress_bar=False)
        return np.ascontiguousarray(vectors, dtype=np.float32)
    return encode_each(model, texts, one_at_a_time=batch and variant.weights != "fp32")


def encode_each(model, texts: list[str], *, one_at_a_time: bool) -> np.ndarray:
    """int8 vectors depend on the batch (one activation scale per call), so int8 variants
    encode index rows one at a time, as ``faq.encoder.encode`` does for the shipped one."""
    if one_at_a_time:
        return np.concatenate([encode(model, [text]) for text in texts])
    return encode(model, texts)


def run_block(variant: Variant, models, indexes, texts: list[str], *, record: bool = True) -> None:
    model, index = models[variant.weights], indexes[variant.weights]
    with settings_of(variant, model):
        for text in texts:
            t = time.perf_counter()
            vector = variant_encode(variant, model, [text])
            t_encoded = time.perf_counter()
            index.search_vectors(vector, [text])
            if record:
                variant.encode_ms.append((t_encoded - t) * 1000)
                variant.total_ms.append((time.perf_counter() - t) * 1000)


def accuracy(index: FaqIndex, vectors: np.ndarray, texts: list[str], expected: np.ndarray) -> float:
    results = index.search_vectors(vectors, texts)
    return float(np.mean([r.best is not None and r.best.entry_id == e for r, e in zip(results, expected)]))


# --- printing --------------------------------------------------------------------------------


def pct(times: list[float]) -> str:
    return f"{np.percentile(times, 50):.2f}/{np.percentile(times, 99):.2f}"


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
