"""People signing in to the console: passwords, one-time invites, sessions, and the throttle
on wrong passwords. API tokens stay what integrations use.

- A password is kept as an argon2id hash (``argon2-cffi``'s defaults); at least
  ``MIN_PASSWORD`` characters. Setting one ends the person's open sessions.
- An invite is a one-time secret, valid ``INVITE_VALID`` by default, that lets its person
  set a password without an admin ever knowing it.
- A session is a random secret in an HttpOnly cookie; the database keeps only its sha256
  and a CSRF token the console sends back on every change. It ends after the idle time or
  the longest age in the settings, at sign-out, or when the person is disabled.
- Attempts are counted per name, known or not, before the password is checked: from the
  ``FREE_FAILURES``-th in a row without success, each admitted attempt locks the name for
  twice as long as the one before, from 30 s up to 15 minutes. Someone guessing, however
  many guesses they send at once, gets one per lock, and can only delay a person's sign-in.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, update
from sqlmodel import Session, select

from models.auth import PasswordInvite, SignInThrottle, UserAccount, WebSession
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
# A name's attempts are forgotten a day after the last (looked at on one sign-in in PRUNE_ONE_IN).
FORGET_AFTER = timedelta(days=1)
PRUNE_ONE_IN = 100
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
    now = utcnow()
    account.password_hash = hashed or hasher().hash(password)
    account.password_set_at = now
    session.add(account)
    session.execute(delete(WebSession).where(WebSession.user == user))  # type: ignore[arg-type]
    # an invite still open would let whoever holds it choose another password
    session.execute(update(PasswordInvite).where(PasswordInvite.user == user, PasswordInvite.used_at.is_(None))  # type: ignore[union-attr]
                    .values(used_at=now))
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


def invite_user(session: Session, token: str) -> str:
    """The person of a live invite (unknown, used, expired or disabled: refused)."""
    invite = session.get(PasswordInvite, hash_token(token)) if token.startswith(INVITE_PREFIX) else None
    account = session.get(UserAccount, invite.user) if invite is not None else None
    if (invite is None or invite.used_at is not None or _aware(invite.expires_at) <= utcnow()
            or account is None or account.disabled_at is not None):
        raise AccessInputError("token", "this invite is unknown, used or expired: ask an admin for a new one")
    return invite.user


def redeem_invite(session: Session, token: str, password: str, *, hashed: str | None = None) -> str:
    """Set the password of the invite's person; the invite is spent, once however many ask at
    the same moment. Returns the user."""
    check_password(password)
    user = invite_user(session, token)
    spent = session.execute(update(PasswordInvite).where(
        PasswordInvite.token_hash == hash_token(token), PasswordInvite.used_at.is_(None))  # type: ignore[union-attr]
        .values(used_at=utcnow())).rowcount
    if spent != 1:
        raise AccessInputError("token", "this invite is unknown, used or expired: ask an admin for a new one")
    set_password(session, f"invite:{user}", user, password, hashed=hashed)
    return user


def sign_in_check(session: Session, user: str) -> tuple[str | None, int | None]:
    """Count an attempt for the name ``user`` and say what checking its password needs: the
    password hash (None: nobody of that name may sign in), or the seconds to wait while the
    name is locked.

    Signing in is three steps, so that the slow hash check (about 50 ms of CPU) runs on a
    worker thread and not inside a database transaction: this, ``password_matches``, and
    ``record_sign_in``. The attempt counts here, before its check, in one atomic update:
    guesses sent all at once are counted as they arrive, and from the ``FREE_FAILURES``-th in
    a row each admitted attempt locks the name for the next. Names nobody has are counted
    alike, so a lock says nothing about who exists."""
    now = utcnow()
    _count_attempt(session, user)
    throttle = session.get(SignInThrottle, user)
    session.refresh(throttle)
    if throttle.locked_until is not None and _aware(throttle.locked_until) > now:
        return None, int((_aware(throttle.locked_until) - now).total_seconds()) + 1
    beyond = throttle.attempts - FREE_FAILURES
    if beyond >= 0:
        throttle.locked_until = now + min(FIRST_LOCK * (2 ** min(beyond, 10)), LONGEST_LOCK)
        session.add(throttle)
    account = session.get(UserAccount, user)
    if account is None or account.disabled_at is not None:
        return None, None
    return account.password_hash, None


def _count_attempt(session: Session, user: str) -> None:
    table = SignInThrottle.__table__
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    now = utcnow()
    statement = insert(table).values(name=user, attempts=1, last_attempt_at=now)
    session.execute(statement.on_conflict_do_update(index_elements=[table.c.name],
                                                    set_={"attempts": table.c.attempts + 1, "last_attempt_at": now}))
    # Names tried a day ago and not locked now are forgotten (any name makes a row; now and
    # then, the old ones go).
    if secrets.randbelow(PRUNE_ONE_IN) == 0:
        session.execute(delete(SignInThrottle).where(
            SignInThrottle.last_attempt_at < now - FORGET_AFTER,  # type: ignore[operator]
            (SignInThrottle.locked_until.is_(None)) | (SignInThrottle.locked_until < now)))  # type: ignore[union-attr, operator]


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


def record_sign_in(session: Session, user: str, checked_hash: str | None, matched: bool,
                   password: str) -> SignedIn | SignInRefused:
    """Open a session after a matching password (the count of attempts starts afresh), or
    refuse. A match no longer counts if the password changed (or the person was disabled)
    while it was checked."""
    account = session.get(UserAccount, user)
    throttle = session.get(SignInThrottle, user)
    now = utcnow()
    if (not matched or checked_hash is None or account is None or account.disabled_at is not None
            or account.password_hash != checked_hash):
        return SignInRefused(WRONG)
    if hasher().check_needs_rehash(account.password_hash):
        account.password_hash = hasher().hash(password)
        session.add(account)
    if throttle is not None:
        throttle.attempts, throttle.locked_until = 0, None
        session.add(throttle)
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    session.add(WebSession(token_hash=hash_token(token), user=user, csrf_token=csrf, created_at=now, last_seen_at=now))
    return SignedIn(user=user, token=token, csrf_token=csrf)


def session_for(session: Session, token: str, *, idle: timedelta, max_age: timedelta,
                touch: bool = True) -> WebSession | None:
    """The live session of this cookie secret, or None. With `touch` (a request the person
    made, not a page refreshing itself) its last-seen time is kept current."""
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
    if touch and now - _aware(row.last_seen_at) > TOUCH_EVERY:
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
