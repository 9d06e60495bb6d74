"""Answers about the request itself, not the objects: what a fuzzer or a careless client
meets first, and what the OpenAPI document promises."""

from __future__ import annotations

import httpx

from api.main import create_app
from settings import Settings


def _app(db):  # noqa: ANN001, ANN202
    return create_app(Settings(database_url=db.url), db=db)


async def test_a_body_that_is_not_json_is_a_422_saying_so(db, tokens):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app(db)), base_url="http://t") as http:
        r = await http.post("/admin/departments", content=b"\xff{", headers={
            "Authorization": f"Bearer {tokens['admin']}", "content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["msg"] == "the body is not valid JSON"


async def test_a_wrong_method_names_every_method_of_the_path(db):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app(db)), base_url="http://t") as http:
        r = await http.delete("/admin/departments")
    assert r.status_code == 405 and set(r.headers["allow"].split(", ")) == {"GET", "POST"}


async def test_a_nul_character_anywhere_is_a_422_saying_where_and_nothing_is_written(db, tokens):
    """PostgreSQL's text holds no NUL: before, such an id answered 500 there."""
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app(db)), base_url="http://t") as http:
        before = (await http.get("/admin/departments", headers=admin)).json()
        for method, url, body, where in (
            ("GET", "/agents/a%00b", None, "path"),
            ("GET", "/console/tickets/%00", None, "path"),
            ("GET", "/tasks?queue=log%00istics", None, "query"),
            ("GET", "/healthz?probe=%00", None, "query"),
            ("POST", "/admin/departments", '{"name": "desk\\u0000"}', "body"),
            ("POST", "/admin/departments", '{"name": "desk", "description": "\\\\\\u0000"}', "body"),
        ):
            r = await http.request(method, url, content=body, headers={**admin, "content-type": "application/json"})
            assert r.status_code == 422, (url, r.text)
            assert r.json()["detail"][0]["loc"] == [where] and "NUL character" in r.json()["detail"][0]["msg"]
        assert (await http.get("/admin/departments", headers=admin)).json() == before

        # the text "\u0000" (a backslash, then u0000) is no NUL and is kept as written
        r = await http.post("/admin/departments", json={"name": "nul-text", "description": "see \\u0000"},
                            headers=admin)
        assert r.status_code in (200, 201), r.text
        assert r.json()["description"] == "see \\u0000"


def test_every_operation_declares_the_422_any_request_may_get(db):
    """The NUL guard answers 422 on any route, so the document says so for every operation."""
    spec = _app(db).openapi()
    undeclared = [(method, path) for path, ops in spec["paths"].items() for method, op in ops.items()
                  if "422" not in op["responses"]]
    assert undeclared == []
