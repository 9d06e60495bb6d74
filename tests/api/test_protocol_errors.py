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
