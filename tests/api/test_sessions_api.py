"""People signing in: a password opens a session in an HttpOnly cookie, changes under it need
its CSRF token, wrong passwords are throttled, sessions end when idle, at sign-out and when
the person is disabled, and an invite lets a person choose their own password."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import select

from api.main import create_app
from models.auth import SignInThrottle, WebSession
from models.db import utcnow
from policies import people
from policies.store import create_user, disable_user, grant
from settings import Settings

PASSWORD = "correct horse battery"


@pytest.fixture
def person(db) -> str:
    name = f"pat-{uuid.uuid4().hex[:12]}"  # a throttle of its own: attempts are counted per name

    def setup(session):
        create_user(session, "test", name)
        grant(session, "test", name, "admin", "*")
        people.set_password(session, "test", name, PASSWORD)

    db.call(setup)
    return name


@pytest.fixture
async def http(db):
    # a grant made by a fixture is in force at once
    app = create_app(Settings(database_url=db.url, policy_refresh_seconds=0), db=db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        yield client


async def sign_in(http: httpx.AsyncClient, user: str, password: str = PASSWORD) -> httpx.Response:
    return await http.post("/auth/session", json={"user": user, "password": password})


async def test_a_password_opens_a_session_in_an_httponly_strict_cookie(http, person):
    r = await sign_in(http, person)

    assert r.status_code == 200, r.text
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("tf_session=tfs_") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert r.json()["user"] == person and r.json()["idle_timeout_seconds"] == 1800
    assert (await http.get("/auth/session")).json()["csrf_token"] == r.json()["csrf_token"]
    r = await http.get("/admin/users")
    assert r.status_code == 200, r.text  # the cookie alone is the caller


async def test_a_change_under_the_cookie_needs_the_csrf_token_and_writes_nothing_without_it(http, person, db):
    csrf = (await sign_in(http, person)).json()["csrf_token"]

    refused = await http.post("/admin/departments", json={"name": "csrf-probe"})
    wrong = await http.post("/admin/departments", json={"name": "csrf-probe"}, headers={"X-CSRF-Token": "guess"})
    listed = (await http.get("/admin/departments")).json()
    assert refused.status_code == wrong.status_code == 403 and "X-CSRF-Token" in refused.json()["detail"]
    assert "csrf-probe" not in str(listed)

    made = await http.post("/admin/departments", json={"name": "csrf-probe"}, headers={"X-CSRF-Token": csrf})
    assert made.status_code in (200, 201), made.text


async def test_a_wrong_password_and_an_unknown_person_get_the_same_answer(http, person):
    wrong = await sign_in(http, person, "not the password")
    unknown = await sign_in(http, "nobody-at-all", PASSWORD)

    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "wrong user name or password"}
    assert "set-cookie" not in wrong.headers


async def test_wrong_passwords_lock_the_name_for_longer_each_time(http, person, db):
    for _ in range(people.FREE_FAILURES - 1):
        assert (await sign_in(http, person, "guess")).status_code == 401
    assert (await sign_in(http, person, "guess")).status_code == 401  # the fifth: locks for 30 s

    locked = await sign_in(http, person)  # even the right password waits
    assert locked.status_code == 429 and 0 < int(locked.headers["Retry-After"]) <= 31
    assert "try again in" in locked.json()["detail"]

    def unlock(session):
        session.execute(update(SignInThrottle).where(SignInThrottle.name == person).values(locked_until=utcnow()))

    db.call(unlock)
    assert (await sign_in(http, person, "guess")).status_code == 401  # admitted, and locks for longer
    second = await sign_in(http, person)
    assert second.status_code == 429 and 31 < int(second.headers["Retry-After"]) <= 15 * 60 + 1

    db.call(unlock)
    assert (await sign_in(http, person)).status_code == 200
    assert db.call(lambda s: s.get(SignInThrottle, person).attempts) == 0  # a success starts afresh


async def test_guesses_sent_all_at_once_get_no_more_checks_than_one_by_one(http, person):
    answers = await asyncio.gather(*(sign_in(http, person, f"guess {n}") for n in range(20)), sign_in(http, person))

    checked = [a for a in answers if a.status_code in (200, 401)]
    assert len(checked) <= people.FREE_FAILURES
    assert {a.status_code for a in answers} <= {200, 401, 429}


async def test_a_name_nobody_has_locks_like_a_real_one(http):
    name = f"nobody-{uuid.uuid4().hex[:12]}"
    for _ in range(people.FREE_FAILURES):
        assert (await sign_in(http, name, "guess")).status_code == 401
    assert (await sign_in(http, name, "guess")).status_code == 429


async def test_a_session_ends_when_idle(http, person, db):
    await sign_in(http, person)

    def idle(session):
        session.execute(update(WebSession).where(WebSession.user == person)
                        .values(last_seen_at=utcnow() - timedelta(minutes=31)))

    db.call(idle)
    r = await http.get("/admin/users")
    assert r.status_code == 401 and "session ended" in r.json()["detail"]
    assert db.call(lambda s: s.exec(select(WebSession).where(WebSession.user == person)).all()) == []  # deleted


async def test_a_sign_in_tidies_away_the_persons_ended_sessions(http, person, db):
    await sign_in(http, person)

    def age(session):
        session.execute(update(WebSession).where(WebSession.user == person)
                        .values(created_at=utcnow() - timedelta(hours=13)))

    db.call(age)
    assert (await sign_in(http, person)).status_code == 200
    assert len(db.call(lambda s: s.exec(select(WebSession).where(WebSession.user == person)).all())) == 1


async def test_sign_out_needs_the_csrf_token_and_ends_the_session(http, person):
    csrf = (await sign_in(http, person)).json()["csrf_token"]
    cookie = http.cookies.get("tf_session")

    assert (await http.delete("/auth/session")).status_code == 403
    out = await http.delete("/auth/session", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 204 and 'tf_session=""' in out.headers["set-cookie"]
    http.cookies.set("tf_session", cookie)  # the old cookie, kept by someone
    assert (await http.get("/admin/users")).status_code == 401


async def test_a_disabled_person_is_signed_out(http, person, db):
    await sign_in(http, person)
    db.call(disable_user, "test", person)

    assert (await http.get("/admin/users")).status_code == 401
    assert (await sign_in(http, person)).status_code == 401


async def test_an_invite_lets_a_person_choose_their_password_once(http, db):
    name = f"newcomer-{uuid.uuid4().hex[:12]}"
    db.call(create_user, "test", name)
    token = db.call(people.create_invite, "test", name)

    short = await http.post("/auth/invite", json={"token": token, "password": "short"})
    assert short.status_code == 422 and "at least 12 characters" in short.text
    assert (await http.post("/auth/invite", json={"token": token, "password": "my own long secret"})).status_code == 204
    again = await http.post("/auth/invite", json={"token": token, "password": "another long secret"})
    assert again.status_code == 422 and "unknown, used or expired" in again.text
    assert (await sign_in(http, name, "my own long secret")).status_code == 200


async def test_setting_a_password_spends_the_persons_open_invites(http, person, db):
    token = db.call(people.create_invite, "test", person)
    db.call(people.set_password, "test", person, "chosen by an admin")

    r = await http.post("/auth/invite", json={"token": token, "password": "taken over by a leak"})
    assert r.status_code == 422 and "unknown, used or expired" in r.text


async def test_a_disabled_persons_invite_does_nothing(http, db):
    name = f"leaver-{uuid.uuid4().hex[:12]}"
    db.call(create_user, "test", name)
    token = db.call(people.create_invite, "test", name)
    db.call(disable_user, "test", name)

    r = await http.post("/auth/invite", json={"token": token, "password": "a long enough secret"})
    assert r.status_code == 422


async def test_a_new_password_ends_every_open_session(http, person, db):
    await sign_in(http, person)
    db.call(people.set_password, "test", person, "a brand new password")

    assert (await http.get("/admin/users")).status_code == 401


async def test_names_tried_a_day_ago_are_forgotten_unless_locked(http, db, monkeypatch):
    monkeypatch.setattr(people, "PRUNE_ONE_IN", 1)
    old, locked = f"old-{uuid.uuid4().hex[:12]}", f"locked-{uuid.uuid4().hex[:12]}"
    day_ago = utcnow() - timedelta(days=2)

    def tried(session):
        session.add(SignInThrottle(name=old, attempts=3, last_attempt_at=day_ago))
        session.add(SignInThrottle(name=locked, attempts=9, last_attempt_at=day_ago,
                                   locked_until=utcnow() + timedelta(minutes=10)))

    db.call(tried)
    await sign_in(http, f"someone-{uuid.uuid4().hex[:12]}", "guess")

    assert db.call(lambda s: s.get(SignInThrottle, old)) is None
    assert db.call(lambda s: s.get(SignInThrottle, locked)) is not None
