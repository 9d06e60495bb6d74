"""Saved FAQ index versions, and the one new tickets should use.

Layout of the store directory::

    <root>/<version>/...   one saved FaqIndex per version (see FaqIndex.save)
    <root>/CURRENT         the version new tickets use

Publishing a new version writes its directory and then replaces CURRENT in one rename, so
a worker sees either the old or the new version, never half of one. Old versions stay on
disk and loadable: a ticket that started with a version finishes with it.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

from faq.index import FaqIndex, FaqIndexError
from models.faq import FaqQuery, FaqResult

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

_CURRENT = "CURRENT"
_VERSION = re.compile(r"^[0-9a-f]{20}$")


class FaqIndexNotFound(FaqIndexError):
    """No such version in the store, or nothing published yet."""


class FaqIndexStore:
    """Loads versions on demand and keeps the ``keep_loaded`` most recently used in memory."""

    def __init__(
        self, root: str | os.PathLike[str], *, keep_loaded: int = 3, encoder: SentenceTransformer | None = None
    ):
        self.root = Path(root)
        self.keep_loaded = max(1, keep_loaded)
        self._encoder = encoder
        self._loaded: OrderedDict[str, FaqIndex] = OrderedDict()
        self._lock = threading.Lock()

    def publish(self, index: FaqIndex) -> str:
        """Save ``index`` and make it the current version; returns the version."""
        index.save(self.root)
        handle, staging = tempfile.mkstemp(prefix=".CURRENT-", dir=self.root)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(index.version + "\n")
        os.replace(staging, self.root / _CURRENT)
        with self._lock:
            self._remember(index.version, index)
        return index.version

    def current_version(self) -> str | None:
        try:
            version = (self.root / _CURRENT).read_text("utf-8").strip()
        except FileNotFoundError:
            return None
        return version or None

    def versions(self) -> list[str]:
        """Every saved version, in no particular order."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if _VERSION.match(p.name) and (p / "index.json").exists())

    def get(self, version: str | None = None) -> FaqIndex:
        """The index of ``version``, or of the current version when None."""
        if version is None:
            version = self.current_version()
            if version is None:
                raise FaqIndexNotFound(f"no FAQ index has been published in {self.root}")
        if not _VERSION.match(version):
            raise FaqIndexNotFound(f"{version!r} is not a FAQ index version")
        with self._lock:
            index = self._loaded.get(version)
            if index is not None:
                self._loaded.move_to_end(version)
                return index
            path = self.root / version
            if not (path / "index.json").exists():
                raise FaqIndexNotFound(f"FAQ index version {version} is not in {self.root}")
            index = FaqIndex.load(path, encoder=self._encoder)
            self._remember(version, index)
            return index

    def answer(self, query: FaqQuery) -> FaqResult:
        """Match a query with the version it names, or the current one."""
        return self.get(query.index_version).answer(query)

    def _remember(self, version: str, index: FaqIndex) -> None:
        self._loaded[version] = index
        self._loaded.move_to_end(version)
        while len(self._loaded) > self.keep_loaded:
            self._loaded.popitem(last=False)
