"""The archive signing key: Ed25519, one per deployment.

The exporter signs an archive's manifest with the private key; anyone holding the public
key (``ticketflow audit key``) can check that neither the manifest nor, through its digests,
any file it lists was changed since. The private key is a PEM file (``TICKETFLOW_AUDIT_KEY_FILE``,
by default ``audit-signing-key.pem`` in the data directory); ``ticketflow up`` creates one.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from settings import Settings


class MissingSigningKey(Exception):
    pass


def signing_key_path(settings: Settings) -> Path:
    return settings.audit_key_file or settings.data_dir / "audit-signing-key.pem"


def ensure_signing_key(path: Path) -> bool:
    """Create the signing key at `path` (readable by its owner only) if there is none."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return True


def load_signing_key(settings: Settings) -> Ed25519PrivateKey:
    path = signing_key_path(settings)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise MissingSigningKey(f"no archive signing key at {path}: run `ticketflow audit key --create`, or set "
                                "TICKETFLOW_AUDIT_KEY_FILE to the deployment's key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise MissingSigningKey(f"{path} is not an Ed25519 private key")
    return key


def public_key_text(key: Ed25519PublicKey) -> str:
    """The public key as one line of base64 (32 raw bytes): what an auditor is given."""
    return base64.b64encode(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()


def public_key_from_text(text: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise ValueError(f"not an Ed25519 public key (one line of base64, 32 bytes): {exc}") from None


def key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def signature_ok(key: Ed25519PublicKey, data: bytes, signature: bytes) -> bool:
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True
