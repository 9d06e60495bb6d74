"""Every route of the API, called by every kind of caller, against the expected decisions in
policies/route_matrix.csv; and the OpenAPI document lists every answer a route gave."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from pydantic import SecretStr

from api.main import create_app
from harness import resolved_ticket, serve, ticket_body, unique_ref
from policies.store import create_user, disable_user, export_policy, issue_token

MATRIX = Path(__file__).resolve().parents[2] / "policies" / "route_matrix.csv"
CALLERS = {"anonymous": None, "customer_own": "cust-1", "customer_other": "cust-2", "agent_same": "ana",
           "agent_other": "gil", "agent_two": "dee", "supervisor": "sam", "admin": "admin", "auditor": "aud"}
# The one text every "not yours" answer carries, and only those: a 404 about something the
# route looked for in earnest ("no agent profile", "no FAQ index yet") is the route at work.
HIDDEN = "(or you may not see it)"


def expected_table() -> dict[tuple[str, str], dict[str, str]]:
    lines = [line for line in MATRIX.read_text().splitlines() if line and not line.startswith("#")]
    return {(row["method"], row["path"]): {c: row[c] for c in CALLERS} for row in csv.DictReader(lines)}


def route_table(app) -> set[tuple[str, str]]:  # noqa: ANN001
    """(method, path) of every route of the API, outside the docs FastAPI adds itself and the
    console's pages (people's pages behind a session, held to their own tests in tests/console)."""
    found = set()

    def walk(routes) -> None:  # noqa: ANN001
        for route in routes:
            if isinstance(route, APIRoute) and route.include_in_schema:
                found.update((m, route.path) for m in route.methods)
            elif hasattr(route, "original_router"):  # an included router
                walk(route.original_router.routes)

    walk(app.routes)
    return found


def decision(status: int, body: str) -> str:
    if status in (401, 403):
        return str(status)
    if status == 404 and HIDDEN in body:
        return "404"
    return "allow"


def test_the_table_names_every_route_and_only_those(db):
    from settings import Settings

    served = route_table(create_app(Settings(database_url=db.url), db=db))
    table = set(expected_table())
    assert served - table == set(), "routes without an expected decision: add them to policies/route_matrix.csv"
    assert table - served == set(), "policies/route_matrix.csv names routes the API does not serve"


@pytest.fixture
async def world(stack):
    """One ticket of cust-1 in logistics whose task ana completed; ana's routing profile; FAQ
    entries; a user with a token for the token routes."""
    ticket, task = await resolved_ticket(stack)
    assert (await stack.http.put("/agents/ana", json={"queues": ["logistics"]}, headers=stack.as_("sam"))).is_success
    for entry_id in ("matrix-entry", "matrix-delete"):
        r = await stack.http.post("/faq/entries", params={"wait": 0}, headers=stack.as_("admin"),
                                  json={"id": entry_id, "questions": ["How do I pay?"], "answer": "By card."})
        assert r.status_code in (200, 201, 409), r.text
    stack.db.call(create_user, "tests", "matrix-user")
    stack.db.call(create_user, "tests", "matrix-leaver")
    _, token = stack.db.call(issue_token, "tests", "matrix-user")
    return {"ticket_id": ticket["id"], "task_id": task["id"], "agent_id": "ana", "entry_id": "matrix-entry",
            "name": "matrix-user", "token_id": token.id, "policy": stack.db.call(export_policy)}


def requests(world: dict) -> dict[tuple[str, str], tuple[str, dict]]:
    """How each route is called: its path with the world's ids, and a valid body (an invalid
    one would be refused before the route decides anything)."""
    entry = {"questions": ["How do I pay?"], "answer": "By card."}
    member = {"user": "matrix-user", "role": "agent", "department": "logistics"}
    calls = {
        ("POST", "/tickets"): {"json": ticket_body(customer_id="cust-1", external_ref=unique_ref())},
        ("POST", "/cases/support-ticket"): {"json": ticket_body(customer_id="cust-1", external_ref=unique_ref())},
        ("POST", "/cases/return-request"): {"json": {**ticket_body(customer_id="cust-1", external_ref=unique_ref()),
                                                     "order_id": "ORD-1001"}},
        ("POST", "/cases/{case_type}"): {"case_type": "no-such-case"},
        ("POST", "/tickets/{ticket_id}/messages"): {"json": {"text": "Any news?", "message_id": "matrix"}},
        ("POST", "/tickets/{ticket_id}/feedback"): {"json": {"helpful": True}},
        ("POST", "/tasks/{task_id}/complete"): {"json": {"outcome": "resolve", "reply": "Done."}},
        ("POST", "/tasks/{task_id}/reassign"): {"json": {"agent": "ana"}},
        ("POST", "/tasks/{task_id}/notes"): {"json": {"text": "Checked."}},
        ("POST", "/webhooks/chat"): {"json": {"conversation_id": "c", "message_id": "m", "customer_id": "cust-1",
                                             "text": "hi", "sent_at": "2026-11-30T10:00:00Z"}},
        ("PUT", "/agents/me/presence"): {"json": {"presence": "away"}},
        ("PUT", "/agents/{agent_id}"): {"json": {"queues": ["logistics"]}},
        ("POST", "/faq/entries"): {"json": {"id": "matrix-new", **entry}, "params": {"wait": 0}},
        ("PUT", "/faq/entries/{entry_id}"): {"json": entry, "params": {"wait": 0}},
        ("DELETE", "/faq/entries/{entry_id}"): {"params": {"wait": 0}, "entry_id": "matrix-delete"},
        ("POST", "/faq/import"): {"json": [{"id": "matrix-import", **entry}], "params": {"wait": 0}},
        ("POST", "/faq/index/publish"): {"params": {"wait": 0}},
        ("PUT", "/faq/thresholds"): {"json": {}, "params": {"wait": 0}},
        ("POST", "/faq/suggestions/review"): {"json": {"reject": [1_000_000]}, "params": {"wait": 0}},
        ("POST", "/faq/ask"): {"json": {"question": "How do I pay?"}},
        ("POST", "/admin/users"): {"json": {"name": "matrix-user"}},
        ("POST", "/admin/users/{name}/disable"): {"name": "matrix-leaver"},
        ("POST", "/admin/departments"): {"json": {"name": "matrix-dept"}},
        ("POST", "/admin/memberships"): {"json": member},
        ("POST", "/admin/memberships/revoke"): {"json": member},
        ("POST", "/admin/policy/diff"): {"json": {"policy": world["policy"]}},
        ("PUT", "/admin/policy"): {"json": {"policy": world["policy"]}},
        ("POST", "/admin/tokens"): {"json": {"user": "matrix-user"}},
        ("POST", "/admin/tokens/{token_id}/rotate"): {"json": {}},
        ("POST", "/codec/decode"): {"json": {"payloads": []}},
        ("POST", "/codec/encode"): {"json": {"payloads": []}},
        # a name of each caller's own: attempts on one name lock it after five
        ("POST", "/auth/session"): {"json_for": lambda caller: {"user": f"matrix-{caller}", "password": "wrong"}},
        ("POST", "/auth/invite"): {"json": {"token": "tfi_no-such-invite", "password": "long enough secret"}},
    }
    return calls


async def call(http, method: str, path: str, how: dict, world: dict, headers: dict):  # noqa: ANN001
    ids = {**world, **{k: v for k, v in how.items() if k not in ("json", "params")}}
    url = path.format(**{k: ids[k] for k in ("ticket_id", "task_id", "agent_id", "entry_id", "name", "token_id", "case_type")
                         if "{" + k + "}" in path})
    if path == "/events":  # a stream: its status line is the answer
        async with http.stream(method, url, headers=headers) as r:
            return r.status_code, "" if r.is_success else (await r.aread()).decode()
    r = await http.request(method, url, json=how.get("json"), params=how.get("params"), headers=headers)
    return r.status_code, r.text


@pytest.mark.slow
async def test_every_route_decides_as_the_table_says(stack, world):
    table = expected_table()
    settings = stack.settings.model_copy(update={"messaging_webhook_secret": SecretStr("matrix-secret")})
    app = create_app(settings, db=stack.db, temporal=stack.client)
    how = requests(world)
    wrong, seen = [], {key: set() for key in table}
    async with serve(app) as http:
        for (method, path), row in table.items():
            for caller, user in CALLERS.items():
                headers = stack.as_(user) if user else {}
                route_how = how.get((method, path), {})
                if "json_for" in route_how:
                    route_how = {"json": route_how["json_for"](caller)}
                status, body = await call(http, method, path, route_how, world, headers)
                seen[(method, path)].add(status)
                got = decision(status, body)
                if got != row[caller] or status >= 500:
                    wrong.append(f"{method} {path} as {caller}: expected {row[caller]}, got {status} {body[:160]}")
    assert wrong == [], "\n".join(wrong)

    paths = app.openapi()["paths"]

    def listed(method: str, path: str) -> set[int]:
        return {int(code) for code in paths[path][method.lower()]["responses"] if code.isdigit()}

    undocumented = [f"{m} {p}: {sorted(codes - listed(m, p))}" for (m, p), codes in seen.items()
                    if codes - listed(m, p)]
    assert undocumented == [], "answers the OpenAPI document does not list:\n" + "\n".join(undocumented)
