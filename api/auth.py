"""Bearer tokens: created by `ticketflow token create`, stored as sha256 hashes."""

from __future__ import annotations

import hashlib
import secrets
import time

from sqlmodel import Session, select

from models.auth import ApiToken, Principal, Role
from models.db import Database, utcnow

TOKEN_PREFIX = "tf_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, *, user: str, role: Role, department: str = "") -> str:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(token_hash=hash_token(token), user=user, role=role.value, department=department,
                         created_at=utcnow()))
    return token


def _principal_for_hash(session: Session, token_hash: str) -> Principal | None:
    row = session.exec(
        select(ApiToken).where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None))  # type: ignore[union-attr]
    ).first()
    if row is None:
        return None
    return Principal(name=row.user, role=Role(row.role), department=row.department)


class TokenVerifier:
    """Looks tokens up, remembering answers briefly so a busy API does not hit the database
    on every request. A revoked token stops working within `ttl_s` seconds."""

    def __init__(self, db: Database, ttl_s: float = 30.0, max_entries: int = 10_000) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    async def verify(self, token: str) -> Principal | None:
        if not token.startswith(TOKEN_PREFIX):
            return None
        key = hash_token(token)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit and hit[0] > now:
            return hit[1]
        principal = await self.db.run(_principal_for_hash, key)
        if len(self._cache) >= self.max_entries:
            self._cache.clear()
        self._cache[key] = (now + self.ttl_s, principal)
        return principal
