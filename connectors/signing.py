"""HMAC signatures on the chat platform's inbound webhook.

Header format (one header, comma-separated ``key=value`` pairs)::

    X-Ticketflow-Signature: t=1764240000,v1=5f2b...e9

``t`` is the Unix time in seconds when the sender signed; ``v1`` is the lowercase hex
HMAC-SHA256, keyed with the shared secret, of the bytes ``f"{t}."`` followed by the raw
request body exactly as received (verify before parsing JSON: re-serializing changes
bytes). Several ``v1`` entries may appear while a secret is being rotated; one match is
enough.

The timestamp is inside the signed material, so an attacker cannot refresh it; a request
older (or further in the future) than the tolerance is refused, which bounds replay to that
window. Within the window the receiver deduplicates by ``message_id``.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Ticketflow-Signature"
DEFAULT_TOLERANCE_SECONDS = 300
_SCHEME = "v1"


def _digest(secret: str | bytes, timestamp: int, raw_body: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    if not key:
        raise ValueError("webhook signing secret is empty; set it in settings")
    return hmac.new(key, f"{timestamp}.".encode() + raw_body, hashlib.sha256).hexdigest()


def sign(secret: str | bytes, raw_body: bytes, *, timestamp: int | None = None) -> str:
    """The signature header value for ``raw_body``, signed now (or at ``timestamp``)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},{_SCHEME}={_digest(secret, t, raw_body)}"


def verify_signature(
    secret: str | bytes,
    raw_body: bytes,
    header_value: str | None,
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """Whether ``header_value`` is a valid, fresh signature of ``raw_body``.

    Never raises on attacker-controlled input: a missing, garbled or stale header is just
    ``False``. An empty ``secret`` is a configuration error and raises ``ValueError``.
    """
    if not header_value:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header_value.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return False
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == _SCHEME:
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        return False
    expected = _digest(secret, timestamp, raw_body)
    # Compare against every candidate so timing does not reveal which position matched.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected.encode(), candidate.encode())
    return matched
