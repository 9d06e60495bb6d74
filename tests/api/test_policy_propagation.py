"""Access changes made by one process are in force in another API process on the same
database within 5 s: grants, revocations, revoked tokens and policy imports.

The other process is a real `uvicorn` subprocess with the default policy refresh (1 s) and
token cache (2 s); the changes come from this process through the access store, as the CLI
or a second API process makes them. Only routes that read the database are called, so no
Temporal server is needed. Each delay is measured from the change's commit to the first
different answer, and printed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from harness import eventually, person, queue_name
from models.auth import Role
from models.db import Database
from policies.store import create_user, grant, import_policy, issue_token, revoke, revoke_token, rules

# 10-16 s per database: a second API process starts (3-8 s), and each change waits out the
# real policy refresh (1 s) or token cache (2 s).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
WITHIN_S = 5.0
ACTOR = "propagation-test"
# An agent's only right to list tasks. (`ticket, read, department` would not do: `ticket,
# read, assigned` keeps GET /tickets open to the agent, and GET /tickets/{id} needs Temporal.)
AGENTS_READ_TASKS = ("p", "agent", "task", "read", "department", "")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api_process(database_url: str, log: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, "TICKETFLOW_DATABASE_URL": database_url,
           # Nothing listens there, and no payload keys: what this test calls never reaches Temporal.
           "TICKETFLOW_TEMPORAL_ADDRESS": f"127.0.0.1:{_free_port()}", "TICKETFLOW_PAYLOAD_ENCRYPTION": "false"}
    env.pop("TICKETFLOW_POLICY_REFRESH_SECONDS", None)  # the default is what is measured
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.main:app_from_settings", "--factory",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    return proc, f"http://127.0.0.1:{port}"


def _wait_until_answering(proc: subprocess.Popen, base_url: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the second API process exited with {proc.returncode}:\n{log.read_text()}")
        try:
            httpx.get(f"{base_url}/healthz", timeout=10)  # 503 without Temporal, but an answer
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"the second API process did not answer within {timeout} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def second_api_url(db: Database, tmp_path_factory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("second-api") / "uvicorn.log"
    proc, base_url = _api_process(db.url, log)
    try:
        _wait_until_answering(proc, base_url, log)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture
async def second_api(second_api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=second_api_url, timeout=10) as http:
        yield http


async def _answers(http: httpx.AsyncClient, path: str, headers: dict[str, str], expected: int) -> float:
    """Poll `path` until it answers `expected`; seconds from now until it did."""
    since = time.monotonic()

    async def check() -> bool:
        return (await http.get(path, headers=headers)).status_code == expected

    await eventually(check, timeout=WITHIN_S + 10, interval=0.05)  # past the limit: report the delay
    return time.monotonic() - since


def _newcomer(db: Database) -> tuple[str, dict[str, str], int]:
    """A user with a token and no membership yet: (name, headers, token id)."""
    name = f"newcomer-{uuid.uuid4().hex[:8]}"
    db.call(create_user, ACTOR, name)
    token, view = db.call(issue_token, ACTOR, name)
    return name, {"Authorization": f"Bearer {token}"}, view.id


async def test_a_grant_and_its_revocation_are_in_force_in_another_process(db, second_api):
    user, headers, _ = _newcomer(db)
    department = queue_name(db)
    assert (await second_api.get("/tickets", headers=headers)).status_code == 403

    db.call(grant, ACTOR, user, "agent", department)
    granted = await _answers(second_api, "/tickets", headers, 200)
    db.call(revoke, ACTOR, user, "agent", department)
    revoked = await _answers(second_api, "/tickets", headers, 403)

    print(f"\n{db.engine.dialect.name}: grant seen after {granted:.2f} s, revocation after {revoked:.2f} s")
    assert granted < WITHIN_S, f"grant seen by the other process after {granted:.2f} s"
    assert revoked < WITHIN_S, f"revocation seen by the other process after {revoked:.2f} s"


async def test_a_revoked_token_is_refused_by_another_process(db, second_api):
    _, headers, token_id = _newcomer(db)
    assert (await second_api.get("/tickets", headers=headers)).status_code == 403  # known, allowed nothing

    db.call(revoke_token, ACTOR, token_id)
    refused = await _answers(second_api, "/tickets", headers, 401)

    print(f"\n{db.engine.dialect.name}: revoked token refused after {refused:.2f} s")
    assert refused < WITHIN_S, f"revoked token refused by the other process after {refused:.2f} s"


async def test_a_policy_import_is_in_force_in_another_process(db, second_api):
    _, headers = person(db, Role.agent, queue_name(db))
    await _answers(second_api, "/tasks", headers, 200)
    original = db.call(rules)
    assert AGENTS_READ_TASKS in original
    without = "\n".join(", ".join(rule) for rule in original if rule != AGENTS_READ_TASKS)

    try:
        db.call(import_policy, ACTOR, without)
        denied = await _answers(second_api, "/tasks", headers, 403)
    finally:
        db.call(import_policy, ACTOR, "\n".join(", ".join(rule) for rule in original))
        assert db.call(rules) == original

    print(f"\n{db.engine.dialect.name}: policy import in force after {denied:.2f} s")
    assert denied < WITHIN_S, f"policy import in force in the other process after {denied:.2f} s"
