"""The FAQ model on ONNX Runtime, with int8 weights: the default for new indexes.

The network is the sentence-transformers model on disk (transformer, mean pooling,
normalisation) exported once to ONNX and quantized (int8 weights, one scale per output
channel; activations quantized per call). The file is cached under the data directory,
named after a digest of the model's weights and the exporter, so every worker that runs
the same model and versions makes the same file and a changed model makes a new one.

The export runs in a child process, so the process that answers never loads torch or
sentence-transformers (about 400 MB of a worker): ONNX Runtime runs the network and the model's own
``tokenizer.json`` cuts the text. On
this machine one question takes about 2.5 ms against 5.6 ms for the same model quantized
by torch, and its embeddings are closer to the float32 model's (cosine 0.994 against
0.98; see ``bench/encoder_speed.py``).

As with any int8 model whose activations are scaled per call, a text is encoded alone:
in a batch its vector would depend on the others.
"""

from __future__ import annotations

import hashlib
import json
import logging
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# Bump when the exported graph changes, so cached files of the old form are not reused.
EXPORT_FORMAT = 1
_OPSET = 17
_EXPORT_TIMEOUT = 600


class OnnxModelError(RuntimeError):
    """The model cannot be exported to, or run on, ONNX Runtime."""


class OnnxEncoder:
    """One sentence-embedding model on ONNX Runtime; thread-safe, one text per call."""

    def __init__(self, model_file: Path, model_dir: Path, *, max_length: int, dimension: int, threads: int) -> None:
        from tokenizers import Tokenizer

        self.model_file = model_file
        self.dimension = dimension
        self.max_length = max_length
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=max_length)
        self._lock = threading.Lock()
        self.threads = 0
        self._session = None
        self.set_threads(threads)

    def set_threads(self, threads: int) -> None:
        """Run each call on ``threads`` CPU threads (a new session if that changes)."""
        import onnxruntime

        with self._lock:
            if threads == self.threads:
                return
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
            # An idle pool must not spin on a core between questions (see limit_model_threads).
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._session = onnxruntime.InferenceSession(
                str(self.model_file), options, providers=["CPUExecutionProvider"]
            )
            self.threads = threads

    def embed_one(self, text: str) -> np.ndarray:
        """The unit-length embedding of one text, shape (1, dimension)."""
        encoding = self._tokenizer.encode(text)
        feeds = {
            "input_ids": np.asarray([encoding.ids], dtype=np.int64),
            "attention_mask": np.asarray([encoding.attention_mask], dtype=np.int64),
        }
        session = self._session
        vector = session.run(None, feeds)[0].astype(np.float32, copy=False)
        vector /= np.maximum(np.linalg.norm(vector, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(vector)


def load_onnx_int8(model_dir: Path, cache_dir: Path, *, threads: int) -> OnnxEncoder:
    """The int8 ONNX encoder of the sentence-transformers model in ``model_dir``, exported
    into ``cache_dir`` first if no earlier run left it there."""
    config = _model_config(model_dir)
    key = _cache_key(model_dir)
    model_file = cache_dir / f"{model_dir.name}-{key}-int8.onnx"
    if not model_file.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        # Workers sharing the directory export one after another, and only the first does.
        with open(cache_dir / ".export.lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if not model_file.exists():
                    _remove_scratch(cache_dir)
                    export_int8(model_dir, model_file)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    try:
        return OnnxEncoder(model_file, model_dir, max_length=config["max_length"], dimension=config["dimension"],
                           threads=threads)
    except Exception as exc:  # noqa: BLE001 - ONNX Runtime and tokenizers raise their own kinds
        raise OnnxModelError(f"cannot run {model_file.name} on ONNX Runtime: {exc}") from exc


def _remove_scratch(cache_dir: Path) -> None:
    """Scratch left by an export that was killed (only ever called under the export lock)."""
    for path in cache_dir.glob("tmp*"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def _model_config(model_dir: Path) -> dict:
    """What the exported graph assumes of the model, checked: mean pooling, then normalisation."""
    try:
        modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
        types = [module["type"].rsplit(".", 1)[-1] for module in modules]
        pooling_dir = next(model_dir / m["path"] for m in modules if m["type"].endswith(".Pooling"))
        pooling = json.loads((pooling_dir / "config.json").read_text(encoding="utf-8"))
        settings = json.loads((model_dir / "sentence_bert_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, StopIteration) as exc:
        raise OnnxModelError(f"{model_dir} is not a sentence-transformers model directory: {exc}") from exc
    modes = [name for name, on in pooling.items() if name.startswith("pooling_mode_") and on]
    if types != ["Transformer", "Pooling", "Normalize"] or modes != ["pooling_mode_mean_tokens"]:
        raise OnnxModelError(
            f"the ONNX runtime takes a transformer with mean pooling and normalisation; {model_dir} has "
            f"{types} pooled by {modes}: set TICKETFLOW_FAQ_QUANTIZE=torch-int8 or none for it"
        )
    if not (model_dir / "tokenizer.json").is_file():
        raise OnnxModelError(f"{model_dir} has no tokenizer.json (a fast tokenizer) for ONNX Runtime to use")
    return {"max_length": int(settings["max_seq_length"]), "dimension": int(pooling["word_embedding_dimension"])}


def _cache_key(model_dir: Path) -> str:
    """A digest of the model's weights and configuration and of the exporter's versions."""
    import onnxruntime

    digest = hashlib.sha256(f"format {EXPORT_FORMAT} opset {_OPSET} ort {onnxruntime.__version__}".encode())
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file() and not p.name.startswith(".")):
        digest.update(str(path.relative_to(model_dir)).encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def export_int8(model_dir: Path, model_file: Path) -> None:
    """Export in a child process, so that torch and sentence-transformers (about 400 MB)
    never load into the process that answers questions."""
    log.info("exporting the FAQ model to ONNX int8 (once per model, about 10 s): %s", model_file)
    try:
        subprocess.run([sys.executable, "-m", "faq.onnx_model", str(model_dir), str(model_file)],
                       check=True, capture_output=True, text=True, timeout=_EXPORT_TIMEOUT)
    except subprocess.CalledProcessError as exc:
        last = (exc.stderr or "").strip().splitlines()[-1:] or ["no output"]
        raise OnnxModelError(f"exporting {model_dir} to ONNX failed: {last[0]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise OnnxModelError(f"exporting {model_dir} to ONNX took over {_EXPORT_TIMEOUT} s") from exc
    if not model_file.is_file():
        raise OnnxModelError(f"exporting {model_dir} to ONNX wrote no {model_file}")


def _export_int8(model_dir: Path, model_file: Path) -> None:
    """Export the model to ONNX and quantize it; the file appears whole or not at all."""
    import copy
    import warnings

    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from sentence_transformers import SentenceTransformer

    class MeanPooled(torch.nn.Module):
        """The transformer's token vectors averaged over the real tokens, then normalised."""

        def __init__(self, network) -> None:
            super().__init__()
            self.network = network

        def forward(self, input_ids, attention_mask):
            tokens = self.network(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            mean = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=1)

    model_file.parent.mkdir(parents=True, exist_ok=True)
    transformer = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)[0].auto_model
    network = copy.deepcopy(transformer).eval()
    # The default attention builds its mask from the traced length; eager attention keeps
    # the length a free dimension.
    network.set_attn_implementation("eager")
    example = {"input_ids": torch.tensor([[101, 2073, 2003, 2026, 11690, 102]]),
               "attention_mask": torch.ones((1, 6), dtype=torch.int64)}
    with tempfile.TemporaryDirectory(dir=model_file.parent) as scratch:
        float_file = Path(scratch) / "float32.onnx"
        int8_file = Path(scratch) / "int8.onnx"
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                MeanPooled(network), (example["input_ids"], example["attention_mask"]), str(float_file),
                input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                              "embedding": {0: "batch"}},
                opset_version=_OPSET, dynamo=False,
            )
        # The quantizer narrates each tensor on the root logger; its errors still show.
        root = logging.getLogger()
        narration = _BelowError()
        root.addFilter(narration)
        try:
            quantize_dynamic(str(float_file), str(int8_file), weight_type=QuantType.QInt8, per_channel=True)
        finally:
            root.removeFilter(narration)
        os.replace(int8_file, model_file)


class _BelowError(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


if __name__ == "__main__":  # the child process of export_int8: MODEL_DIR MODEL_FILE
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    _export_int8(Path(sys.argv[1]), Path(sys.argv[2]))
