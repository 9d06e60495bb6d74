"""People signing in to the console: passwords, one-time invites, sessions, and the throttle
on wrong passwords. API tokens stay what integrations use.

- A password is kept as an argon2id hash (``argon2-cffi``'s defaults); at least
  ``MIN_PASSWORD`` characters. Setting one ends the person's open sessions.
- An invite is a one-time secret, valid ``INVITE_VALID`` by default, that lets its person
  set a password without an admin ever knowing it.
- A session is a random secret in an HttpOnly cookie; the database keeps only its sha256
  and a CSRF token the console sends back on every change. It ends after the idle time or
  the longest age in the settings, at sign-out, or when the person is disabled.
- Wrong passwords: from the ``FREE_FAILURES``-th in a row, each locks the account for twice
  as long as the one before, from 30 s up to 15 minutes. Someone who guesses can only
  delay a person's sign-in this way, never learn more than one guess per lock.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete
from sqlmodel import Session, select

from models.auth import PasswordInvite, UserAccount, WebSession
from models.db import utcnow
from policies.store import AccessInputError, _audit, _aware, _existing_user, hash_token

MIN_PASSWORD = 12
MAX_PASSWORD = 1024
INVITE_VALID = timedelta(hours=72)
FREE_FAILURES = 5
FIRST_LOCK = timedelta(seconds=30)
LONGEST_LOCK = timedelta(minutes=15)
SESSION_PREFIX = "tfs_"
WRONG = "wrong user name or password"
COOKIE = "tf_session"
CSRF_REFUSED = ("missing or wrong X-CSRF-Token header: a change made with the console's session cookie must send "
                "the csrf_token that POST or GET /auth/session gave")
_DUMMY_HASH: str | None = None
INVITE_PREFIX = "tfi_"
# How stale a session's last-seen time may get before a request writes it again.
TOUCH_EVERY = timedelta(seconds=60)

_hasher = None


def hasher():  # noqa: ANN201 - argon2.PasswordHasher, imported when first needed
    """argon2id with argon2-cffi's defaults (RFC 9106's low-memory profile)."""
    global _hasher
    if _hasher is None:
        from argon2 import PasswordHasher

        _hasher = PasswordHasher()
    return _hasher


@dataclass(frozen=True)
class SignInRefused:
    """Wrong name or password, or too many of them: ``retry_after`` seconds to wait, if locked."""

    message: str
    retry_after: int | None = None


@dataclass(frozen=True)
class SignedIn:
    user: str
    token: str  # the cookie's secret; never stored
    csrf_token: str


def set_password(session: Session, actor: str, user: str, password: str, *, hashed: str | None = None) -> None:
    """Give ``user`` this password (``hashed``: its hash, made beforehand off the event
    loop); every session they had ends."""
    account = _existing_user(session, user)
    check_password(password)
    account.password_hash = hashed or hasher().hash(password)
    account.password_set_at = utcnow()
    account.failed_sign_ins = 0
    account.locked_until = None
    session.add(account)
    session.execute(delete(WebSession).where(WebSession.user == user))  # type: ignore[arg-type]
    _audit(session, actor, "user.password", f"user:{user}", None, {"password": "set"})


def create_invite(session: Session, actor: str, user: str, valid_for: timedelta = INVITE_VALID) -> str:
    """A one-time secret that lets ``user`` set their password within ``valid_for``."""
    account = _existing_user(session, user)
    if account.disabled_at is not None:
        raise AccessInputError("user", f"user {user} is disabled; an invite would not let them in")
    if valid_for <= timedelta(0):
        raise AccessInputError("valid_for", "an invite must be valid for some time")
    token = INVITE_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    session.add(PasswordInvite(token_hash=hash_token(token), user=user, created_at=now, expires_at=now + valid_for))
    _audit(session, actor, "user.invite", f"user:{user}", None, {"expires_at": (now + valid_for).isoformat()})
    return token


def redeem_invite(session: Session, token: str, password: str, *, hashed: str | None = None) -> str:
    """Set the password of the invite's person; the invite is spent. Returns the user."""
    check_password(password)
    invite = session.get(PasswordInvite, hash_token(token)) if token.startswith(INVITE_PREFIX) else None
    if invite is None or invite.used_at is not None or _aware(invite.expires_at) <= utcnow():
        raise AccessInputError("token", "this invite is unknown, used or expired: ask an admin for a new one")
    invite.used_at = utcnow()
    session.add(invite)
    set_password(session, f"invite:{invite.user}", invite.user, password, hashed=hashed)
    return invite.user


def sign_in_check(session: Session, user: str) -> tuple[str | None, int | None]:
    """What checking ``user``'s password needs: their password hash (None: no such person
    may sign in), and the seconds they must still wait after too many wrong ones.

    Signing in is three steps, so that the slow hash check (about 50 ms of CPU) runs on a
    worker thread and not inside a database transaction: this, ``password_matches``, and
    ``record_sign_in``."""
    account = session.get(UserAccount, user) if 0 < len(user) <= 100 else None
    if account is None or account.disabled_at is not None or account.password_hash is None:
        return None, None
    now = utcnow()
    if account.locked_until is not None and _aware(account.locked_until) > now:
        return account.password_hash, int((_aware(account.locked_until) - now).total_seconds()) + 1
    return account.password_hash, None


def password_matches(password_hash: str | None, password: str) -> bool:
    """The argon2 check; without a hash, one against a dummy, so that an unknown name is
    answered no faster than a wrong password."""
    global _DUMMY_HASH
    if password_hash is None:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = hasher().hash(secrets.token_urlsafe(16))
        _verify(_DUMMY_HASH, password)
        return False
    return _verify(password_hash, password)


def record_sign_in(session: Session, user: str, matched: bool, password: str) -> SignedIn | SignInRefused:
    """Open a session after a matching password, or count a wrong one (locking the account
    from the ``FREE_FAILURES``-th in a row)."""
    account = session.get(UserAccount, user) if 0 < len(user) <= 100 else None
    if account is None or account.disabled_at is not None or account.password_hash is None:
        return SignInRefused(WRONG)
    now = utcnow()
    if not matched:
        account.failed_sign_ins += 1
        beyond = account.failed_sign_ins - FREE_FAILURES
        if beyond >= 0:
            account.locked_until = now + min(FIRST_LOCK * (2 ** min(beyond, 10)), LONGEST_LOCK)
        session.add(account)
        return SignInRefused(WRONG)
    if hasher().check_needs_rehash(account.password_hash):
        account.password_hash = hasher().hash(password)
    account.failed_sign_ins = 0
    account.locked_until = None
    session.add(account)
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    session.add(WebSession(token_hash=hash_token(token), user=user, csrf_token=csrf, created_at=now, last_seen_at=now))
    return SignedIn(user=user, token=token, csrf_token=csrf)


def session_for(session: Session, token: str, *, idle: timedelta, max_age: timedelta) -> WebSession | None:
    """The live session of this cookie secret (its last-seen time kept current), or None."""
    if not token.startswith(SESSION_PREFIX):
        return None
    row = session.get(WebSession, hash_token(token))
    if row is None:
        return None
    now = utcnow()
    account = session.get(UserAccount, row.user)
    ended = (account is None or account.disabled_at is not None or now - _aware(row.last_seen_at) > idle
             or now - _aware(row.created_at) > max_age)
    if ended:
        session.delete(row)
        return None
    if now - _aware(row.last_seen_at) > TOUCH_EVERY:
        row.last_seen_at = now
        session.add(row)
    return row


def sign_out(session: Session, token: str) -> None:
    if token.startswith(SESSION_PREFIX):
        session.execute(delete(WebSession).where(WebSession.token_hash == hash_token(token)))  # type: ignore[arg-type]


def csrf_matches(row: WebSession, sent: str | None) -> bool:
    return sent is not None and hmac.compare_digest(row.csrf_token.encode(), sent.encode())


def prune_sessions(session: Session, user: str, *, idle: timedelta, max_age: timedelta) -> int:
    """Delete ``user``'s sessions past their idle time or age (each sign-in tidies its
    person's); returns how many."""
    now = utcnow()
    stale = session.exec(select(WebSession).where(WebSession.user == user).where(
        (WebSession.last_seen_at < now - idle) | (WebSession.created_at < now - max_age))).all()  # type: ignore[operator]
    for row in stale:
        session.delete(row)
    return len(stale)


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccessInputError("password", f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccessInputError("password", f"a password may have at most {MAX_PASSWORD} characters")


def _verify(password_hash: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
