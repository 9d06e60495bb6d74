"""The API the fuzz tests attack: served over real HTTP on loopback, with the real Temporal
dev server, a worker running the real activities, and a database of its own.

The fuzz run gets a private SQLite database rather than the session's shared `db`: fuzzing
as an admin revokes tokens by id, disables users and rewrites the policy, and the shared
database holds the tokens every other test of the session uses. For the same reason its
workflows run on a task queue of their own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
from pydantic import SecretStr
from sqlmodel import Session

from api.main import create_app
from harness import eventually, serve, staff_ticket_body
from migrations import upgrade
from models.auth import Role, UserAccount
from models.db import Database
from policies import store
from settings import Settings
from worker import build_worker

# Who the fuzzer calls as: (role, departments). `None`: no Authorization header at all.
CALLERS: dict[str, tuple[Role, list[str]] | None] = {
    "anonymous": None,
    "customer": (Role.customer, ["*"]),
    "auditor": (Role.auditor, ["*"]),
    "agent": (Role.agent, ["logistics"]),
    "supervisor": (Role.supervisor, ["*"]),
    "admin": (Role.admin, ["*"]),
}


@pytest.fixture(params=list(CALLERS))  # in this order: an admin last, as it changes the most
def caller(request) -> str:  # noqa: ANN001
    return request.param


def caller_name(caller: str) -> str:
    return f"fuzz-{caller}"


@dataclass
class FuzzTarget:
    """The served API, who may call it, and ids of objects that exist in it."""

    base_url: str
    db: Database
    webhook_secret: str
    policy: str  # the policy file as seeded, to put back what a fuzzed admin replaced
    tokens: dict[str, str] = field(default_factory=dict)
    known: dict[str, str | int] = field(default_factory=dict)  # path parameter -> an id that exists

    def headers(self, caller: str) -> dict[str, str]:
        token = self.tokens.get(caller)
        return {"Authorization": f"Bearer {token}"} if token else {}

    def keep_access(self, caller: str) -> None:
        """Give `caller` back what a fuzzed admin request took from them: the seeded policy,
        their memberships, an enabled account and a working token. Runs after every example
        so each one is answered as the role it is meant to test. Called from the fuzzing
        thread; plain database calls."""
        who = CALLERS[caller]
        if who is None:
            return
        role, departments = who
        name = caller_name(caller)
        token_works = self.db.call(store.user_for_token, store.hash_token(self.tokens[caller])) == name
        if token_works and self.db.call(store.current_version) == self._version:
            return
        self.db.call(store.import_policy, "fuzz", self.policy)
        self.db.call(_enable, name)
        for department in departments:
            self.db.call(store.grant, "fuzz", name, role.value, department)
        if not token_works:
            self.tokens[caller], _ = self.db.call(store.issue_token, "fuzz", name)
        self._version = self.db.call(store.current_version)

    def __post_init__(self) -> None:
        self._version = self.db.call(store.current_version)


def _enable(session: Session, name: str) -> None:
    row = session.get(UserAccount, name)
    if row is not None and row.disabled_at is not None:
        row.disabled_at = None
        session.add(row)


@pytest.fixture(scope="module")
async def fuzz_target(dev_env, tmp_path_factory) -> AsyncIterator[FuzzTarget]:
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz-db') / 'ticketflow.db'}"
    upgrade(url)
    db = Database(url)
    for department in ("logistics", "billing"):
        db.call(store.add_department, "fuzz", department)
    tokens = {caller: db.call(store.token_for, caller_name(caller), who[0], who[1])
              for caller, who in CALLERS.items() if who is not None}
    # No FAQ worker (it loads the embedding model): publications stay pending. A webhook
    # secret, so the chat webhook checks signatures instead of answering "disabled".
    run = uuid.uuid4().hex[:8]
    secret = f"fuzz-webhook-{run}"
    settings = Settings(database_url=url, task_queue=f"fuzz-{run}", faq_task_queue=f"fuzz-faq-{run}",
                        faq_enabled=False, policy_refresh_seconds=0, messaging_webhook_secret=SecretStr(secret))
    app = create_app(settings, db=db, temporal=dev_env.client)
    try:
        with ThreadPoolExecutor(max_workers=settings.activity_threads) as executor:
            async with build_worker(dev_env.client, settings, db, executor):
                async with serve(app) as http:
                    known = await _seed(http, db, tokens)
                    yield FuzzTarget(base_url=str(http.base_url).rstrip("/"), db=db, webhook_secret=secret,
                                     policy=db.call(store.export_policy), tokens=tokens, known=known)
    finally:
        await db.aclose()


async def _seed(http, db: Database, tokens: dict[str, str]) -> dict[str, str | int]:  # noqa: ANN001
    """Objects for the fuzzer to find: a ticket of the customer in logistics with an open
    task, the agent's routing profile, an FAQ entry, a user with a token."""
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    agent = caller_name("agent")
    r = await http.put(f"/agents/{agent}", json={"queues": ["logistics"]}, headers=admin)
    assert r.is_success, r.text
    r = await http.post("/tickets", json=staff_ticket_body(customer_id=caller_name("customer")), headers=admin)
    assert r.is_success, r.text
    ticket_id = r.json()["id"]

    async def open_task() -> dict | None:
        r = await http.get("/tasks", params={"limit": 200}, headers=admin)
        return next((t for t in r.json()["items"] if t["ticket_id"] == ticket_id), None)

    task = await eventually(open_task)
    r = await http.post("/faq/entries", params={"wait": 0}, headers=admin,
                        json={"id": "fuzz-entry", "questions": ["How do I pay?"], "answer": "By card."})
    assert r.is_success, r.text
    db.call(store.create_user, "fuzz", "fuzz-user")
    _, token = db.call(store.issue_token, "fuzz", "fuzz-user")
    return {"ticket_id": ticket_id, "task_id": task["id"], "agent_id": agent, "entry_id": "fuzz-entry",
            "name": "fuzz-user", "token_id": token.id}

