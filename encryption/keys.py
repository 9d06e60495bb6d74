"""Payload keys: where they come from, and rotation.

A key ring is an ordered list of (key id, 32-byte key); the newest encrypts, all of them
decrypt. Keys come from `TICKETFLOW_PAYLOAD_KEYS` (`id:base64key,id:base64key`, newest
last) or else from the key file (`TICKETFLOW_PAYLOAD_KEY_FILE`, by default
`payload-keys.json` in the data directory), a JSON document only its owner may read.

Every process of a deployment must hold the same keys: a worker that lacks the key a
payload was encrypted with cannot run that ticket. So nothing here invents a key on its
own; `ticketflow up` (one machine) and `ticketflow keys rotate` create them explicitly.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from settings import Settings

KEY_BYTES = 32  # AES-256
KEY_ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"


class MissingKeys(ValueError):
    """No usable key: the message says what to set or run."""


@dataclass(frozen=True)
class KeyRing:
    keys: tuple[tuple[str, bytes], ...]  # oldest first

    def __post_init__(self) -> None:
        if not self.keys:
            raise MissingKeys("a key ring needs at least one key")
        ids = [key_id for key_id, _ in self.keys]
        if len(set(ids)) != len(ids):
            raise MissingKeys("payload key ids must be unique")
        for key_id, secret in self.keys:
            if not re.fullmatch(KEY_ID_PATTERN, key_id):
                raise MissingKeys(f"payload key id {key_id!r}: 1 to 64 letters, digits, . _ -")
            if len(secret) != KEY_BYTES:
                raise MissingKeys(f"payload key {key_id!r} must be {KEY_BYTES} bytes (base64 of 32 random bytes)")

    @property
    def current(self) -> str:
        return self.keys[-1][0]

    def items(self) -> Iterator[tuple[str, bytes]]:
        return iter(self.keys)


def parse_keys(text: str) -> KeyRing:
    """`id:base64key,id:base64key`, newest last."""
    keys = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key_id, _, encoded = part.partition(":")
        try:
            secret = base64.b64decode(encoded, validate=True)
        except ValueError as exc:
            raise MissingKeys(f"payload key {key_id!r} is not base64") from exc
        keys.append((key_id, secret))
    return KeyRing(tuple(keys))


def read_key_file(path: Path) -> KeyRing:
    try:
        document = json.loads(path.read_text())
        keys = tuple((k["id"], base64.b64decode(k["key"], validate=True)) for k in document["keys"])
    except FileNotFoundError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise MissingKeys(f"{path} is not a payload key file (JSON with a `keys` list of id and key)") from exc
    return KeyRing(keys)


def key_file_path(settings: Settings) -> Path:
    return settings.payload_key_file or settings.data_dir / "payload-keys.json"


def load_key_ring(settings: Settings) -> KeyRing:
    if settings.payload_keys is not None:
        return parse_keys(settings.payload_keys.get_secret_value())
    path = key_file_path(settings)
    try:
        return read_key_file(path)
    except FileNotFoundError:
        raise MissingKeys(
            f"payload encryption is on but there is no key: no TICKETFLOW_PAYLOAD_KEYS and no key file at {path}. "
            "Create one with `ticketflow keys rotate` and give every worker and API process the same keys "
            "(or set TICKETFLOW_PAYLOAD_ENCRYPTION=false)"
        ) from None


def add_key(path: Path) -> str:
    """Append a new random key to the key file (creating it, readable by its owner only);
    the new key encrypts from now on, the older ones still decrypt. Returns its id."""
    try:
        existing = list(read_key_file(path).items())
    except FileNotFoundError:
        existing = []
    key_id = f"k{datetime.now(UTC):%Y%m%d%H%M%S}-{secrets.token_hex(2)}"
    existing.append((key_id, secrets.token_bytes(KEY_BYTES)))
    document = {"keys": [{"id": i, "key": base64.b64encode(k).decode()} for i, k in existing]}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(document, f, indent=2)
    os.replace(tmp, path)  # whole or not at all: a crash never leaves half a key file
    return key_id


def ensure_key_file(path: Path) -> bool:
    """Create the key file with one key if there is none (for one-machine `up`)."""
    if path.exists():
        return False
    add_key(path)
    return True
