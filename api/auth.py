"""Bearer tokens: issued to users (`ticketflow token create`, `/admin/tokens`), stored as
sha256 hashes, optionally expiring."""

from __future__ import annotations

import time

from sqlmodel import Session

from models.auth import Principal, Role
from models.db import Database
from policies.store import TOKEN_PREFIX, hash_token, token_for, user_for_token

# A revoked or expired token, or a disabled user, stops working within this many seconds in
# every API process.
TOKEN_CACHE_SECONDS = 2.0


def create_token(session: Session, *, user: str, role: Role | str, department: str | list[str] = "") -> str:
    """Create the user if needed, grant `role` in `department` (a list for several, `*` for
    every department) and issue a token for them."""
    departments = [department] if isinstance(department, str) else list(department)
    return token_for(session, user, role, departments)


class TokenVerifier:
    """Looks tokens up, remembering answers briefly so a busy API does not hit the database
    on every request."""

    def __init__(self, db: Database, ttl_s: float = TOKEN_CACHE_SECONDS, max_entries: int = 10_000) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    async def verify(self, token: str) -> Principal | None:
        if not token.startswith(TOKEN_PREFIX):
            return None
        key = hash_token(token)  # the secret itself is not kept in memory
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit and hit[0] > now:
            return hit[1]
        user = await self.db.run(user_for_token, key)
        principal = Principal(name=user) if user else None
        if len(self._cache) >= self.max_entries:
            self._cache.clear()
        self._cache[key] = (now + self.ttl_s, principal)
        return principal
