"""`/admin`: users, departments, memberships, policy rules, tokens and the access audit, as
an admin (and everyone who is not) sees them. No Temporal: these routes never touch it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from api.main import create_app
from harness import eventually
from models.db import Database
from settings import Settings

EXTRA_RULE = ["p", "auditor", "faq", "ask", "all", ""]
AUDITOR_READS_ACCESS = ["p", "auditor", "access", "read", "all", ""]


def line(rule: list[str]) -> str:
    return ", ".join(rule) + "\n"


class AdminApi:
    def __init__(self, http: httpx.AsyncClient, tokens: dict[str, str]) -> None:
        self.http = http
        self.tokens = tokens

    async def call(self, method: str, path: str, *, who: str = "admin", token: str | None = None,
                   **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.tokens[who]}"}
        return await self.http.request(method, path, headers=headers, **kwargs)

    async def new_user(self, *grants: tuple[str, str]) -> str:
        name = f"u-{uuid.uuid4().hex[:8]}"
        assert (await self.call("POST", "/admin/users", json={"name": name})).status_code == 201
        for role, department in grants:
            r = await self.call("POST", "/admin/memberships", json={"user": name, "role": role,
                                                                    "department": department})
            assert r.status_code == 200, r.text
        return name

    async def memberships(self, user: str) -> list[dict]:
        return (await self.call("GET", f"/admin/users/{user}")).json()["memberships"]

    async def newest_audit_id(self) -> int:
        return (await self.call("GET", "/admin/audit", params={"limit": 1})).json()[0]["id"]

    async def answers(self, token: str, expected: int) -> None:
        """Poll until `token` gets `expected` on a read: grants reach the authorizer within a
        second, revocations the token cache within two."""
        async def check():
            return (await self.call("GET", "/admin/users", token=token)).status_code == expected

        await eventually(check, timeout=10)


@pytest.fixture
async def api(db: Database, tokens: dict[str, str]) -> AsyncIterator[AdminApi]:
    app = create_app(Settings(database_url=db.url), db=db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        yield AdminApi(http, tokens)


# --- memberships -----------------------------------------------------------------------------


async def test_a_grant_shows_in_the_users_memberships(api):
    name = await api.new_user()

    r = await api.call("POST", "/admin/memberships", json={"user": name, "role": "agent", "department": "billing"})

    assert r.status_code == 200
    assert r.json() == {"user": name, "changed": True, "memberships": [{"role": "agent", "department": "billing"}]}
    assert await api.memberships(name) == [{"role": "agent", "department": "billing"}]


async def test_granting_what_the_user_holds_changes_nothing(api):
    name = await api.new_user(("agent", "billing"))
    newest = await api.newest_audit_id()

    r = await api.call("POST", "/admin/memberships", json={"user": name, "role": "agent", "department": "billing"})

    assert r.status_code == 200 and r.json()["changed"] is False
    assert await api.newest_audit_id() == newest


@pytest.mark.parametrize("field, value, says", [
    ("role", "wizard", "'auditor'"),
    ("department", "atlantis", "unknown department 'atlantis': known are"),
    ("user", "nobody-here", "unknown user 'nobody-here': create it first"),
])
async def test_a_grant_naming_something_unknown_is_422_and_changes_nothing(api, field, value, says):
    name = await api.new_user()
    newest = await api.newest_audit_id()

    r = await api.call("POST", "/admin/memberships",
                       json={"user": name, "role": "agent", "department": "logistics", field: value})

    assert r.status_code == 422
    problem = r.json()["detail"][0]
    assert problem["loc"] == ["body", field] and says in problem["msg"]
    assert await api.memberships(name) == []
    assert await api.newest_audit_id() == newest


async def test_revoke_takes_one_membership_away(api):
    name = await api.new_user(("agent", "billing"), ("agent", "logistics"))
    body = {"user": name, "role": "agent", "department": "billing"}

    r = await api.call("POST", "/admin/memberships/revoke", json=body)

    assert r.json()["changed"] is True
    assert await api.memberships(name) == [{"role": "agent", "department": "logistics"}]
    assert (await api.call("POST", "/admin/memberships/revoke", json=body)).json()["changed"] is False


# --- who may ---------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["ana", "sam", "aud", "cust-1"])
async def test_only_admins_change_access(api, who):
    r = await api.call("POST", "/admin/memberships", who=who,
                       json={"user": who, "role": "admin", "department": "*"})

    assert r.status_code == 403 and f"{who} lacks the right access:write" in r.json()["detail"]
    assert {"role": "admin", "department": "*"} not in await api.memberships(who)


@pytest.mark.parametrize("who", ["ana", "sam", "cust-1"])
async def test_agents_supervisors_and_customers_cannot_read_access(api, who):
    for path in ("/admin/audit", "/admin/users", "/admin/tokens", "/admin/policy"):
        r = await api.call("GET", path, who=who)
        assert r.status_code == 403 and "access:read" in r.json()["detail"], path


async def test_an_auditor_reads_access_and_the_audit(api):
    for path in ("/admin/audit", "/admin/users", "/admin/tokens", "/admin/policy", "/admin/departments"):
        assert (await api.call("GET", path, who="aud")).status_code == 200, path


async def test_admin_routes_need_a_token(api):
    r = await api.http.get("/admin/users")

    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


# --- users and departments -----------------------------------------------------------------


async def test_creating_a_user_twice_returns_the_first(api):
    name = f"u-{uuid.uuid4().hex[:8]}"

    first = await api.call("POST", "/admin/users", json={"name": name, "display_name": "Ann"})
    again = await api.call("POST", "/admin/users", json={"name": name, "display_name": "Other"})

    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["display_name"] == "Ann"


async def test_a_bad_user_name_is_422_naming_the_field(api):
    r = await api.call("POST", "/admin/users", json={"name": "two words"})

    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "name"]


async def test_an_unknown_user_is_404(api):
    assert (await api.call("GET", "/admin/users/nobody-here")).status_code == 404
    assert (await api.call("POST", "/admin/users/nobody-here/disable")).status_code == 404


async def test_a_disabled_user_loses_their_tokens(api):
    name = await api.new_user(("auditor", "*"))
    token = (await api.call("POST", "/admin/tokens", json={"user": name})).json()["token"]
    await api.answers(token, 200)

    r = await api.call("POST", f"/admin/users/{name}/disable")

    assert r.status_code == 200 and r.json()["disabled_at"] is not None
    await api.answers(token, 401)
    assert (await api.call("GET", "/admin/tokens", params={"user": name})).json() == []
    r = await api.call("POST", "/admin/tokens", json={"user": name})
    assert r.status_code == 422 and "disabled" in r.json()["detail"][0]["msg"]


async def test_a_department_is_added_once_and_listed(api):
    name = f"d-{uuid.uuid4().hex[:8]}"

    assert (await api.call("POST", "/admin/departments", json={"name": name})).status_code == 201
    assert (await api.call("POST", "/admin/departments", json={"name": name})).status_code == 200
    assert name in [d["name"] for d in (await api.call("GET", "/admin/departments")).json()]


async def test_a_bad_department_name_is_422_naming_the_field(api):
    r = await api.call("POST", "/admin/departments", json={"name": "Not OK"})

    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "name"]


# --- tokens --------------------------------------------------------------------------------


async def test_an_issued_token_works_until_revoked(api):
    name = await api.new_user(("auditor", "*"))

    r = await api.call("POST", "/admin/tokens", json={"user": name, "label": "report job", "expires_in_days": 30})

    assert r.status_code == 201
    issued = r.json()
    assert issued["token"].startswith("tf_") and issued["expires_at"] is not None
    await api.answers(issued["token"], 200)
    listed = (await api.call("GET", "/admin/tokens", params={"user": name})).json()
    assert [(t["id"], t["label"]) for t in listed] == [(issued["id"], "report job")]
    assert "token" not in listed[0]

    assert (await api.call("POST", f"/admin/tokens/{issued['id']}/revoke")).status_code == 200
    await api.answers(issued["token"], 401)


async def test_rotate_stops_the_old_token_and_the_new_one_works(api):
    name = await api.new_user(("auditor", "*"))
    old = (await api.call("POST", "/admin/tokens", json={"user": name})).json()
    await api.answers(old["token"], 200)

    r = await api.call("POST", f"/admin/tokens/{old['id']}/rotate")

    assert r.status_code == 201 and r.json()["id"] != old["id"]
    await api.answers(r.json()["token"], 200)
    await api.answers(old["token"], 401)
    again = await api.call("POST", f"/admin/tokens/{old['id']}/rotate")
    assert again.status_code == 409 and "revoked already" in again.json()["detail"]


async def test_a_token_for_an_unknown_user_is_refused(api):
    r = await api.call("POST", "/admin/tokens", json={"user": "nobody-here"})

    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "user"]


async def test_an_unknown_token_is_404(api):
    assert (await api.call("POST", "/admin/tokens/999999/revoke")).status_code == 404
    assert (await api.call("POST", "/admin/tokens/999999/rotate")).status_code == 404


# --- policy --------------------------------------------------------------------------------


async def _policy_file(api: AdminApi) -> str:
    r = await api.call("GET", "/admin/policy", params={"format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return r.text


async def test_policy_diff_shows_the_change_and_writes_nothing(api):
    before = (await api.call("GET", "/admin/policy")).json()
    text = await _policy_file(api)
    proposal = text.replace(line(AUDITOR_READS_ACCESS), "") + line(EXTRA_RULE)

    r = await api.call("POST", "/admin/policy/diff", json={"policy": proposal})

    assert r.status_code == 200
    assert r.json()["added"] == [EXTRA_RULE]
    assert r.json()["removed"] == [AUDITOR_READS_ACCESS]
    assert (await api.call("GET", "/admin/policy")).json() == before


async def test_importing_a_malformed_policy_is_422_naming_the_line_and_changes_nothing(api):
    before = (await api.call("GET", "/admin/policy")).json()
    text = await _policy_file(api)
    bad_line = len(text.splitlines()) + 1

    r = await api.call("PUT", "/admin/policy", json={"policy": text + "p, agent, ticket, fly\n"})

    assert r.status_code == 422
    problem = r.json()["detail"][0]
    assert problem["loc"] == ["body", "policy"] and problem["msg"].startswith(f"line {bad_line}: ")
    assert (await api.call("GET", "/admin/policy")).json() == before


async def test_importing_a_policy_replaces_the_rules_and_is_audited(api):
    text = await _policy_file(api)
    try:
        r = await api.call("PUT", "/admin/policy", json={"policy": text + line(EXTRA_RULE)})

        assert r.status_code == 200 and r.json()["added"] == [EXTRA_RULE] and r.json()["removed"] == []
        assert EXTRA_RULE in (await api.call("GET", "/admin/policy")).json()["rules"]
        entry = (await api.call("GET", "/admin/audit", params={"subject": "policy", "limit": 1})).json()[0]
        assert (entry["action"], entry["actor"]) == ("policy.import", "admin")
        assert EXTRA_RULE not in entry["before"] and EXTRA_RULE in entry["after"]
    finally:  # the database is shared by the session's tests
        restored = await api.call("PUT", "/admin/policy", json={"policy": text})
        assert restored.status_code == 200, restored.text
    assert EXTRA_RULE not in (await api.call("GET", "/admin/policy")).json()["rules"]


# --- audit ---------------------------------------------------------------------------------


async def test_every_change_leaves_one_audit_row_with_actor_before_and_after(api):
    user = f"u-{uuid.uuid4().hex[:8]}"
    department = f"d-{uuid.uuid4().hex[:8]}"
    membership = {"user": user, "role": "agent", "department": department}
    changes = [
        ("/admin/departments", {"name": department}, "department.add", f"department:{department}"),
        ("/admin/users", {"name": user}, "user.create", f"user:{user}"),
        ("/admin/memberships", membership, "membership.grant", f"user:{user}"),
        ("/admin/memberships/revoke", membership, "membership.revoke", f"user:{user}"),
        ("/admin/tokens", {"user": user}, "token.create", f"user:{user}"),
        (f"/admin/users/{user}/disable", None, "user.disable", f"user:{user}"),
    ]
    for path, body, action, subject in changes:
        newest = await api.newest_audit_id()

        assert (await api.call("POST", path, json=body)).status_code in (200, 201), path

        new = [e for e in (await api.call("GET", "/admin/audit", params={"limit": 10})).json() if e["id"] > newest]
        assert [(e["action"], e["subject"], e["actor"]) for e in new] == [(action, subject, "admin")]
        assert new[0]["after"] is not None and new[0]["before"] != new[0]["after"], action


async def test_the_audit_pages_newest_first(api):
    await api.new_user()
    await api.new_user()

    first = (await api.call("GET", "/admin/audit", params={"limit": 2})).json()
    older = (await api.call("GET", "/admin/audit", params={"limit": 2, "before_id": first[-1]["id"]})).json()

    ids = [e["id"] for e in first + older]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 4
