"""The payload codec and its keys: what Temporal stores is ciphertext, rotation keeps old
payloads readable, and anything altered or under an unknown key fails loudly."""

from __future__ import annotations

import base64
import secrets
import stat

import pytest
from temporalio.api.common.v1 import Payload

from encryption.codec import DecryptionError, EncryptionCodec
from encryption.keys import KeyRing, MissingKeys, add_key, load_key_ring, parse_keys, read_key_file
from settings import Settings


def ring(*ids: str) -> KeyRing:
    return KeyRing(tuple((i, secrets.token_bytes(32)) for i in ids))


def payload(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=f'"{text}"'.encode())


async def test_a_payload_is_ciphertext_that_round_trips():
    codec = EncryptionCodec(ring("k1"))
    [sealed] = await codec.encode([payload("12 Secret Lane")])
    assert b"Secret Lane" not in sealed.SerializeToString()
    assert sealed.metadata["encryption-key-id"] == b"k1"
    assert await codec.decode([sealed]) == [payload("12 Secret Lane")]


async def test_after_rotation_the_newest_key_encrypts_and_old_payloads_still_decrypt():
    old = ring("k1")
    [sealed_before] = await EncryptionCodec(old).encode([payload("before")])
    rotated = KeyRing(old.keys + ring("k2").keys)
    codec = EncryptionCodec(rotated)
    [sealed_after] = await codec.encode([payload("after")])
    assert sealed_after.metadata["encryption-key-id"] == b"k2"
    assert await codec.decode([sealed_before, sealed_after]) == [payload("before"), payload("after")]


async def test_plain_payloads_from_before_encryption_pass_through():
    assert await EncryptionCodec(ring("k1")).decode([payload("old")]) == [payload("old")]


async def test_an_unknown_key_or_an_altered_payload_is_refused():
    [sealed] = await EncryptionCodec(ring("k1")).encode([payload("x")])
    with pytest.raises(DecryptionError, match="does not hold"):
        await EncryptionCodec(ring("k9")).decode([sealed])
    forged = ring("k1")  # same id, another key
    with pytest.raises(DecryptionError, match="altered"):
        await EncryptionCodec(forged).decode([sealed])
    tampered = Payload(metadata=sealed.metadata, data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]))
    codec = EncryptionCodec(KeyRing(((sealed.metadata["encryption-key-id"].decode(), b"\0" * 32),)))
    with pytest.raises(DecryptionError):
        await codec.decode([tampered])


def test_keys_from_the_environment_newest_last():
    a, b = base64.b64encode(b"a" * 32).decode(), base64.b64encode(b"b" * 32).decode()
    keys = parse_keys(f"old:{a}, new:{b}")
    assert [i for i, _ in keys.items()] == ["old", "new"] and keys.current == "new"


@pytest.mark.parametrize("text,problem", [("k1:not-base64!", "not base64"), ("k1:" + base64.b64encode(b"short").decode(),
                                                                             "32 bytes"), ("", "at least one key")])
def test_bad_keys_say_what_is_wrong(text, problem):
    with pytest.raises(MissingKeys, match=problem):
        parse_keys(text)


def test_the_key_file_is_its_owners_alone_and_grows_on_rotation(tmp_path):
    path = tmp_path / "payload-keys.json"
    first = add_key(path)
    second = add_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [i for i, _ in read_key_file(path).items()] == [first, second]


def test_no_key_is_an_error_that_says_what_to_do(tmp_path):
    with pytest.raises(MissingKeys, match="ticketflow keys rotate"):
        load_key_ring(Settings(_env_file=None, data_dir=tmp_path, payload_encryption=True))
