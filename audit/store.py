"""Where closed tickets' histories are kept once Temporal's retention would drop them.

:class:`ArchiveStore` is the interface: a directory (:class:`DirectoryStore`, the default)
implements it, and an object store can by the same four calls. Each ticket is one record
(the same file an archive holds) and one Ed25519 signature over its bytes, so a record read
back years later can still be shown to be the one written.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit.archive import TicketRecord, ticket_file, write_atomically
from audit.signing import signature_ok


class ArchiveStore(Protocol):
    def has(self, ticket_id: str) -> bool: ...

    def put(self, record: TicketRecord, key: Ed25519PrivateKey) -> None: ...

    def get(self, ticket_id: str) -> TicketRecord | None: ...

    def intact(self, ticket_id: str, key: Ed25519PublicKey) -> bool: ...


class DirectoryStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, ticket_id: str) -> Path:
        return self.root / ticket_file(ticket_id)

    def has(self, ticket_id: str) -> bool:
        path = self._path(ticket_id)
        return path.is_file() and path.with_suffix(".sig").is_file()

    def put(self, record: TicketRecord, key: Ed25519PrivateKey) -> None:
        """Write the record and its signature, each atomically; the signature last, so a
        record without one was cut off and is written again."""
        path = self._path(record.ticket_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = record.model_dump_json().encode()
        write_atomically(path, data)
        write_atomically(path.with_suffix(".sig"), base64.b64encode(key.sign(data)))

    def get(self, ticket_id: str) -> TicketRecord | None:
        path = self._path(ticket_id)
        if not path.is_file() or not path.with_suffix(".sig").is_file():
            return None
        return TicketRecord.model_validate_json(path.read_bytes())

    def intact(self, ticket_id: str, key: Ed25519PublicKey) -> bool:
        path = self._path(ticket_id)
        try:
            signature = base64.b64decode(path.with_suffix(".sig").read_bytes(), validate=True)
            return signature_ok(key, path.read_bytes(), signature)
        except (OSError, ValueError):
            return False
