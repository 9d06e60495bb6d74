"""A templated FAQ answer that names a field a template may not use, or has bad syntax, is
refused by the API with a 422 that says where and what to fix; nothing is stored."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

import faq.knowledge_base as kb
from api.main import create_app
from models.db import Database
from settings import Settings
from tests.faq.knowledge_base_helpers import reset_knowledge_base

PARCEL = "Your parcel is {{ shipment.status }}, expected {{ shipment.eta }}."


@pytest.fixture
async def api(dev_env, db: Database, tokens, task_queue: str) -> AsyncIterator[httpx.AsyncClient]:
    reset_knowledge_base(db)
    app = create_app(Settings(database_url=db.url, task_queue=task_queue), db=db, temporal=dev_env.client)
    headers = {"Authorization": f"Bearer {tokens['admin']}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", headers=headers) as http:
        yield http


def entry(answer: str, entry_id: str = "track") -> dict:
    return {"id": entry_id, "questions": [f"Where is parcel {entry_id}?"], "answer": answer}


async def test_creating_an_entry_with_an_unknown_template_field_is_refused_naming_the_field(api, db: Database):
    r = await api.post("/faq/entries", json=entry("Hello!\nYour parcel is {{ shipment.colour }}."))

    assert r.status_code == 422
    [problem] = r.json()["detail"]
    assert problem["loc"] == ["body", "answer"]
    assert "line 2: shipment.colour is not a field a template may use" in problem["msg"]
    assert "shipment.status" in problem["msg"]  # says what it could have used
    assert db.call(kb.kb_state).revision == 0


async def test_updating_an_entry_with_broken_template_syntax_is_refused_naming_the_line(api):
    r = await api.put("/faq/entries/track", json={"questions": ["Where?"], "answer": "Hi\n{{ order.status "})

    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "answer"]
    assert "line 2: unexpected end of template" in r.json()["detail"][0]["msg"]


async def test_an_import_with_one_bad_template_is_refused_whole_with_the_entry_and_its_line(api, db: Database):
    data = "[\n" + json.dumps(entry(PARCEL, "a")) + ",\n" + json.dumps(entry("{{ order.state }}", "b")) + "\n]"

    r = await api.post("/faq/import", params={"format": "json"}, content=data.encode())

    assert r.status_code == 422
    [problem] = r.json()["problems"]
    assert (problem["index"], problem["line"], problem["field"]) == (1, 3, "answer")
    assert "order.state is not a field a template may use" in problem["message"]
    assert db.call(kb.kb_state).revision == 0 and db.call(kb.list_entries, limit=10)[0] == []  # not even entry a
