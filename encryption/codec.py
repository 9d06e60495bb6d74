"""AES-256-GCM payload codec.

An encrypted payload keeps nothing readable but two metadata entries: `encoding` is
`binary/encrypted` and `encryption-key-id` names the key. Its data is a 12-byte random
nonce followed by the ciphertext of the whole original payload (metadata and data), with
the key id as associated data, so a payload cannot be moved under another key's name.

Payloads that are not encrypted (histories recorded before encryption was turned on) pass
through decoding unchanged; an encrypted payload whose key is unknown fails loudly.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from encryption.keys import KeyRing

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


class DecryptionError(ValueError):
    """A payload cannot be decrypted: its key is not in the ring, or it was altered."""


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: KeyRing) -> None:
        self.keys = keys
        self._ciphers = {key_id: AESGCM(secret) for key_id, secret in keys.items()}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return self.encode_sync(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return self.decode_sync(payloads)

    # Encryption is microseconds of CPU: no thread hop, and usable from sync code (tools).

    def encode_sync(self, payloads: Iterable[Payload]) -> list[Payload]:
        key_id = self.keys.current
        cipher = self._ciphers[key_id]
        out = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            sealed = cipher.encrypt(nonce, payload.SerializeToString(), key_id.encode())
            out.append(Payload(metadata={"encoding": ENCODING, KEY_ID: key_id.encode()}, data=nonce + sealed))
        return out

    def decode_sync(self, payloads: Iterable[Payload]) -> list[Payload]:
        out = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                out.append(payload)
                continue
            key_id = payload.metadata.get(KEY_ID, b"").decode()
            cipher = self._ciphers.get(key_id)
            if cipher is None:
                raise DecryptionError(f"payload encrypted with key {key_id!r}, which this process does not hold: "
                                      "add it to TICKETFLOW_PAYLOAD_KEYS or the key file")
            try:
                plain = cipher.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], key_id.encode())
            except InvalidTag as exc:
                raise DecryptionError(f"payload under key {key_id!r} was altered or is not ticketflow's") from exc
            out.append(Payload.FromString(plain))
        return out
