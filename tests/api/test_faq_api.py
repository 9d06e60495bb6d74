"""The FAQ knowledge base over HTTP: the API in process, the real Temporal dev server, a FAQ
worker with the real embedding model publishing index versions, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

import faq.knowledge_base as kb
from activities.faq import build_faq_worker
from activities.readmodel import ReadModelActivities
from api.main import create_app
from faq.io import export_entries, parse_entries
from harness import Stack, eventually
from models.db import Database
from settings import Settings
from tests.faq.conftest import KNOWLEDGE_BASE
from tests.faq.knowledge_base_helpers import reset_knowledge_base
from tests.faq.learning_helpers import judged

pytestmark = pytest.mark.slow  # the FAQ worker loads the embedding model (once per session)

DEMO = sorted(parse_entries(kb.DEMO_KB.read_bytes(), "json"), key=lambda entry: entry.id)
CLEAR_BILLING_QUESTION = "I was charged twice for one order"
CLEAR_LOGISTICS_QUESTION = "My parcel is marked as delivered but I never got it"


@pytest.fixture
async def faq_stack(dev_env, db: Database, tokens, task_queue: str) -> AsyncIterator[Stack]:
    reset_knowledge_base(db)
    settings = Settings(database_url=db.url, task_queue=task_queue, faq_task_queue=f"faq-{task_queue}")
    app = create_app(settings, db=db, temporal=dev_env.client)
    with ThreadPoolExecutor(max_workers=settings.activity_threads) as executor:
        async with build_faq_worker(dev_env.client, settings, db, executor):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://ticketflow.test") as http:
                yield Stack(http, db, settings, dev_env.client, tokens)


async def import_demo(faq_stack: Stack) -> dict:
    r = await faq_stack.http.post("/faq/import", params={"format": "json"}, content=export_entries(DEMO, "json"),
                            headers=faq_stack.as_("admin"))
    assert r.status_code == 200, r.text
    return r.json()


async def ask(faq_stack: Stack, question: str, user: str = "ana", **fields) -> dict:
    r = await faq_stack.http.post("/faq/ask", json={"question": question, **fields}, headers=faq_stack.as_(user))
    assert r.status_code == 200, r.text
    return r.json()


async def set_thresholds(faq_stack: Stack, body: dict) -> dict:
    r = await faq_stack.http.put("/faq/thresholds", json=body, headers=faq_stack.as_("sam"))
    assert r.status_code == 200, r.text
    assert r.json()["publication"]["status"] == "published"
    return r.json()


# --- import and export -----------------------------------------------------------------------


@pytest.mark.parametrize(("file_format", "upload"), [("csv", "multipart"), ("json", "raw body")])
async def test_an_imported_file_is_published_and_exported_unchanged(faq_stack: Stack, file_format: str, upload: str):
    data = export_entries(DEMO, file_format)
    if upload == "multipart":
        r = await faq_stack.http.post("/faq/import", files={"file": (f"faq.{file_format}", data, "text/csv")},
                                headers=faq_stack.as_("admin"))
    else:
        r = await faq_stack.http.post("/faq/import", params={"format": file_format}, content=data,
                                headers=faq_stack.as_("admin") | {"content-type": "application/json"})
    exported = await faq_stack.http.get("/faq/export", params={"format": file_format}, headers=faq_stack.as_("ana"))
    index = (await faq_stack.http.get("/faq/index", headers=faq_stack.as_("ana"))).json()

    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["created"], body["updated"], body["deleted"]) == (len(DEMO), 0, 0)
    assert body["publication"]["status"] == "published"
    assert exported.status_code == 200 and exported.content == data
    assert f'filename="faq.{file_format}"' in exported.headers["content-disposition"]
    assert index["current"]["version"] == body["publication"]["index_version"]
    assert index["current"]["calibrated"] and index["current"]["calibration"]["samples"] > 0
    assert index["current"]["entries"] == len(DEMO) and index["publication"]["status"] == "published"


async def test_a_bad_file_is_rejected_with_its_problems_and_nothing_is_imported(faq_stack: Stack):
    imported = await import_demo(faq_stack)
    before = (await faq_stack.http.get("/faq/export", headers=faq_stack.as_("admin"))).content
    bad_csv = (
        "id,questions,answer,department\n"
        "delivery-time,How long does delivery take?,Two days now.,logistics\n"  # fine, but not imported
        "bad id,Where is it?,Here.,logistics\n"
        "refunds,,Within 3 days.,Billing\n"
    ).encode()
    bad_json = json.dumps([{"id": "ok", "questions": ["Q?"], "answer": "A."}, {"id": "x", "answer": "no questions"}],
                          indent=1).encode()

    csv_rejected = await faq_stack.http.post("/faq/import", files={"file": ("faq.csv", bad_csv, "text/csv")},
                                       headers=faq_stack.as_("admin"))
    json_rejected = await faq_stack.http.post("/faq/import", content=bad_json,
                                        headers=faq_stack.as_("admin") | {"content-type": "application/json"})
    unknown_format = await faq_stack.http.post("/faq/import", content=b"id,questions,answer\n",
                                         headers=faq_stack.as_("admin") | {"content-type": "text/plain"})

    assert csv_rejected.status_code == 422
    problems = csv_rejected.json()["problems"]
    assert {(p["line"], p["field"]) for p in problems} == {(3, "id"), (4, "questions"), (4, "department")}
    assert "nothing imported" in csv_rejected.json()["detail"]
    assert json_rejected.status_code == 422
    [missing] = json_rejected.json()["problems"]
    assert (missing["index"], missing["line"], missing["field"]) == (1, 9, "questions")
    assert unknown_format.status_code == 422 and "?format=csv" in unknown_format.json()["detail"]
    assert (await faq_stack.http.get("/faq/export", headers=faq_stack.as_("admin"))).content == before
    index = (await faq_stack.http.get("/faq/index", headers=faq_stack.as_("admin"))).json()
    assert index["kb_revision"] == imported["publication"]["kb_revision"]


async def test_an_import_that_replaces_deletes_what_the_file_lacks(faq_stack: Stack):
    await import_demo(faq_stack)
    only_two = export_entries(DEMO[:2], "json")

    r = await faq_stack.http.post("/faq/import", params={"format": "json", "mode": "replace"}, content=only_two,
                            headers=faq_stack.as_("admin"))

    assert r.status_code == 200 and (r.json()["unchanged"], r.json()["deleted"]) == (2, len(DEMO) - 2)
    page = (await faq_stack.http.get("/faq/entries", headers=faq_stack.as_("ana"))).json()
    assert [e["id"] for e in page["items"]] == [e.id for e in DEMO[:2]]


# --- entries ---------------------------------------------------------------------------------


async def test_every_change_to_an_entry_publishes_a_new_index_version(faq_stack: Stack):
    entry = {"id": "gift-wrap", "questions": ["Can you gift wrap my order?", "Do you offer gift wrapping?",
                                              "Can I add a gift message?"],
             "answer": "Choose gift wrap at checkout (2.50 EUR).", "department": "general"}
    admin = faq_stack.as_("admin")

    created = await faq_stack.http.post("/faq/entries", json=entry, headers=admin)
    read = await faq_stack.http.get("/faq/entries/gift-wrap", headers=faq_stack.as_("gil"))
    changed = await faq_stack.http.put("/faq/entries/gift-wrap", json={**entry, "id": None, "answer": "Free gift wrap."},
                                 headers=admin)
    deleted = await faq_stack.http.delete("/faq/entries/gift-wrap", headers=admin)

    assert created.status_code == 201, created.text
    assert read.status_code == 200 and read.json()["answer"] == entry["answer"]
    assert changed.status_code == 200 and changed.json()["entry"]["answer"] == "Free gift wrap."
    assert deleted.status_code == 200 and deleted.json()["entry"]["answer"] == "Free gift wrap."
    publications = [r.json()["publication"] for r in (created, changed, deleted)]
    assert [p["status"] for p in publications] == ["published"] * 3
    assert [p["kb_revision"] for p in publications] == [1, 2, 3]
    assert len({p["index_version"] for p in publications}) == 3
    index = (await faq_stack.http.get("/faq/index", headers=admin)).json()
    assert index["current"]["version"] == publications[-1]["index_version"] and index["current"]["entries"] == 0
    assert (await faq_stack.http.get("/faq/entries/gift-wrap", headers=admin)).status_code == 404


async def test_entry_changes_that_cannot_be_made_say_why_and_change_nothing(faq_stack: Stack):
    await import_demo(faq_stack)
    admin = faq_stack.as_("admin")
    clash = {"id": "parcel", "questions": ["Where is my parcel?"], "answer": "Look.", "department": "logistics"}
    revision = (await faq_stack.http.get("/faq/index", headers=admin)).json()["kb_revision"]

    taken = await faq_stack.http.post("/faq/entries", json={**clash, "id": "track-parcel"}, headers=admin)
    asked_elsewhere = await faq_stack.http.post("/faq/entries", json=clash, headers=admin)
    invalid = await faq_stack.http.post("/faq/entries", json={**clash, "department": "Logistics"}, headers=admin)
    missing = await faq_stack.http.put("/faq/entries/nope", json={"questions": ["Q?"], "answer": "A."}, headers=admin)
    gone = await faq_stack.http.delete("/faq/entries/nope", headers=admin)

    assert taken.status_code == 409 and "exists already" in taken.json()["detail"]
    assert asked_elsewhere.status_code == 409 and "'track-parcel'" in asked_elsewhere.json()["detail"]
    assert invalid.status_code == 422
    assert missing.status_code == 404 and gone.status_code == 404
    assert (await faq_stack.http.get("/faq/index", headers=admin)).json()["kb_revision"] == revision


async def test_entries_are_listed_a_page_at_a_time(faq_stack: Stack):
    await import_demo(faq_stack)
    seen, cursor = [], None
    while True:
        params = {"limit": 7} | ({"cursor": cursor} if cursor else {})
        page = (await faq_stack.http.get("/faq/entries", params=params, headers=faq_stack.as_("ana"))).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    billing = (await faq_stack.http.get("/faq/entries", params={"department": "billing"}, headers=faq_stack.as_("ana"))).json()
    bad_cursor = await faq_stack.http.get("/faq/entries", params={"cursor": "garbage"}, headers=faq_stack.as_("ana"))

    assert seen == [e.id for e in DEMO]
    assert {e["department"] for e in billing["items"]} == {"billing"}
    assert bad_cursor.status_code == 422


async def test_a_change_need_not_wait_for_its_index(faq_stack: Stack):
    await import_demo(faq_stack)
    entry = {"id": "gift-wrap", "questions": ["Can you gift wrap my order?"], "answer": "Yes."}

    r = await faq_stack.http.post("/faq/entries", params={"wait": 0}, json=entry, headers=faq_stack.as_("admin"))

    assert r.status_code == 201 and r.json()["publication"]["status"] == "pending"
    revision = r.json()["publication"]["kb_revision"]

    async def published():
        index = (await faq_stack.http.get("/faq/index", headers=faq_stack.as_("admin"))).json()
        return index if index["publication"]["published_revision"] >= revision else None

    index = await eventually(published, timeout=60)
    assert index["current"]["entries"] == len(DEMO) + 1


# --- asking ----------------------------------------------------------------------------------


async def test_the_bot_answers_at_its_threshold_and_escalates_just_below_it(faq_stack: Stack):
    await import_demo(faq_stack)
    calibrated = await ask(faq_stack, CLEAR_BILLING_QUESTION)
    confidence = calibrated["confidence"]

    at = await set_thresholds(faq_stack, {"default": confidence})
    answered = await ask(faq_stack, CLEAR_BILLING_QUESTION)
    above = await set_thresholds(faq_stack, {"default": math.nextafter(confidence, 1.0)})
    escalated = await ask(faq_stack, CLEAR_BILLING_QUESTION)

    assert calibrated["decision"] == "answer" and calibrated["best"]["entry_id"] == "double-charge"
    assert len(calibrated["alternatives"]) == 3 and calibrated["answer"]
    assert answered["confidence"] == confidence and answered["threshold"] == confidence
    assert answered["decision"] == "answer"
    assert answered["index_version"] == at["publication"]["index_version"] != calibrated["index_version"]
    assert escalated["decision"] == "escalate" and escalated["best"] == answered["best"]
    assert escalated["answer"] == answered["answer"]  # the agent still sees the suggestion
    assert escalated["index_version"] == above["publication"]["index_version"]


async def test_each_department_can_have_its_own_threshold(faq_stack: Stack):
    await import_demo(faq_stack)

    change = await set_thresholds(faq_stack, {"default": 0.0, "per_department": {"billing": 1.0}})
    billing = await ask(faq_stack, CLEAR_BILLING_QUESTION)
    logistics = await ask(faq_stack, CLEAR_LOGISTICS_QUESTION)
    only_logistics = await ask(faq_stack, CLEAR_BILLING_QUESTION, department="logistics")
    index = (await faq_stack.http.get("/faq/index", headers=faq_stack.as_("ana"))).json()

    assert billing["best"]["department"] == "billing" and billing["threshold"] == 1.0
    assert billing["decision"] == "escalate"
    assert logistics["best"]["department"] == "logistics" and logistics["threshold"] == 0.0
    assert logistics["decision"] == "answer"
    assert only_logistics["best"]["department"] == "logistics"
    assert index["threshold_overrides"] == change["overrides"]
    assert index["current"]["info"]["thresholds"]["per_department"]["billing"] == 1.0


async def test_an_empty_knowledge_base_escalates_and_an_unknown_version_is_not_found(faq_stack: Stack):
    empty = await ask(faq_stack, CLEAR_BILLING_QUESTION, user="cust-1")
    unknown = await faq_stack.http.post("/faq/ask", json={"question": "hi", "index_version": "0" * 20},
                                  headers=faq_stack.as_("ana"))

    assert empty["decision"] == "escalate" and empty["best"] is None and empty["index_version"] == kb.NO_INDEX
    assert unknown.status_code == 404


# --- permissions -----------------------------------------------------------------------------

ENTRY = {"id": "gift-wrap", "questions": ["Can you gift wrap my order?"], "answer": "Yes."}


@pytest.mark.parametrize(
    ("user", "method", "path", "body", "allowed"),
    [
        ("cust-1", "POST", "/faq/ask", {"question": "Where is my parcel?"}, True),
        ("cust-1", "GET", "/faq/entries", None, False),
        ("cust-1", "GET", "/faq/export", None, False),
        ("cust-1", "GET", "/faq/index", None, False),
        ("cust-1", "POST", "/faq/entries", ENTRY, False),
        ("ana", "POST", "/faq/ask", {"question": "Where is my parcel?"}, True),
        ("ana", "GET", "/faq/entries", None, True),
        ("gil", "GET", "/faq/export", None, True),
        ("ana", "GET", "/faq/index", None, True),
        ("ana", "POST", "/faq/entries", ENTRY, False),
        ("ana", "PUT", "/faq/entries/delivery-time", {"questions": ["Q?"], "answer": "A."}, False),
        ("ana", "DELETE", "/faq/entries/delivery-time", None, False),
        ("gil", "POST", "/faq/import", [ENTRY], False),
        ("gil", "PUT", "/faq/thresholds", {"default": 0.0}, False),
        ("ana", "POST", "/faq/index/publish", None, False),
        ("sam", "POST", "/faq/entries", ENTRY, True),
        ("sam", "PUT", "/faq/thresholds", {"default": 0.9}, True),
        ("admin", "DELETE", "/faq/entries/delivery-time", None, True),
    ],
)
async def test_who_may_do_what(faq_stack: Stack, user, method, path, body, allowed):
    await import_demo(faq_stack)
    before = (await faq_stack.http.get("/faq/index", headers=faq_stack.as_("admin"))).json()["kb_revision"]

    r = await faq_stack.http.request(method, path, json=body, headers=faq_stack.as_(user))

    after = (await faq_stack.http.get("/faq/index", headers=faq_stack.as_("admin"))).json()["kb_revision"]
    if allowed:
        assert r.status_code in (200, 201), r.text
    else:
        assert r.status_code == 403 and "lacks the right faq:" in r.json()["detail"]
        assert after == before  # refused before anything was written


async def test_no_token_no_faq(faq_stack: Stack):
    for method, path in (("GET", "/faq/entries"), ("POST", "/faq/ask"), ("POST", "/faq/import")):
        r = await faq_stack.http.request(method, path, json={"question": "x"})
        assert r.status_code == 401


# --- where the model is loaded ---------------------------------------------------------------

API_PROCESS = r"""
import asyncio, json, logging, os, sys
import httpx
from api.main import create_app
from models.db import Database
from settings import Settings

logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stdout)
args = json.loads(os.environ["FAQ_TEST_ARGS"])

async def main():
    db = Database(args["db"])
    settings = Settings(database_url=args["db"], temporal_address=args["temporal"], faq_task_queue=args["queue"])
    app = create_app(settings, db=db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        admin = {"Authorization": "Bearer " + args["admin"]}
        for path in ("/faq/entries", "/faq/entries/delivery-time", "/faq/index", "/faq/export"):
            assert (await http.get(path, headers=admin)).status_code == 200, path
        r = await http.put("/faq/thresholds", params={"wait": 0}, json={"default": 0.5}, headers=admin)
        assert r.status_code == 200, r.text
        from faq import encoder
        print("MODEL LOADED BEFORE ASK:", bool(encoder._loaded), flush=True)
        r = await http.post("/faq/ask", json={"question": "where is my parcel"}, headers=admin)
        assert r.status_code == 200, r.text
        print("MODEL LOADED AFTER ASK:", bool(encoder._loaded), flush=True)
        await http.post("/faq/ask", json={"question": "where is my parcel"}, headers=admin)

asyncio.run(main())
"""


async def test_an_api_process_loads_the_model_only_when_asked(faq_stack: Stack, dev_env, repo_root: Path):
    await import_demo(faq_stack)
    args = {"db": faq_stack.db.url, "admin": faq_stack.tokens["admin"], "queue": f"nobody-polls-{uuid.uuid4().hex}",
            "temporal": dev_env.client.service_client.config.target_host}

    run = subprocess.run(
        [sys.executable, "-c", API_PROCESS], cwd=repo_root, capture_output=True, text=True, timeout=240,
        env={**os.environ, "FAQ_TEST_ARGS": json.dumps(args), "PYTHONPATH": str(repo_root)},
    )

    assert run.returncode == 0, run.stdout + run.stderr
    assert "MODEL LOADED BEFORE ASK: False" in run.stdout
    assert "MODEL LOADED AFTER ASK: True" in run.stdout
    assert run.stdout.count("loading FAQ embedding model") == 1  # once per process


# --- the learning loop -----------------------------------------------------------------------


async def suggested(faq_stack: Stack) -> list[int]:
    """The card knowledge base published, and three customers' verdicts on the bot's answers
    (two helpful, one not); returns the ids of the suggestions they made."""
    r = await faq_stack.http.post("/faq/import", params={"format": "json"}, content=export_entries(KNOWLEDGE_BASE, "json"),
                                  headers=faq_stack.as_("admin"))
    assert r.status_code == 200 and r.json()["publication"]["status"] == "published", r.text
    projection = ReadModelActivities(faq_stack.db)
    judged(projection, "Card gone", "left it on the bus", "helpful")
    judged(projection, "Card eaten", "by the machine", "helpful")
    judged(projection, "Card", "blocked at the ATM", "not_helpful")
    r = await faq_stack.http.get("/faq/suggestions", params={"status": "pending"}, headers=faq_stack.as_("sam"))
    return [item["id"] for item in r.json()["items"]]


async def test_suggestions_are_listed_a_page_at_a_time_for_the_editors(faq_stack: Stack):
    ids = await suggested(faq_stack)

    first = await faq_stack.http.get("/faq/suggestions", params={"limit": 2}, headers=faq_stack.as_("sam"))
    rest = await faq_stack.http.get("/faq/suggestions", params={"limit": 2, "cursor": first.json()["next_cursor"]},
                                    headers=faq_stack.as_("sam"))
    other_entry = await faq_stack.http.get("/faq/suggestions", params={"entry_id": "password-reset"},
                                           headers=faq_stack.as_("sam"))
    agent = await faq_stack.http.get("/faq/suggestions", headers=faq_stack.as_("ana"))

    assert [i["id"] for i in first.json()["items"] + rest.json()["items"]] == ids and len(ids) == 3
    assert rest.json()["next_cursor"] is None and other_entry.json()["items"] == []
    assert [i["correct"] for i in first.json()["items"]] == [True, True]
    assert agent.status_code == 403 and "faq" in agent.json()["detail"]


async def test_one_review_accepts_and_rejects_and_the_accepted_variant_answers_in_the_new_version(faq_stack: Stack):
    variant, rejected, evidence = await suggested(faq_stack)

    r = await faq_stack.http.post("/faq/suggestions/review", json={"accept": [variant, evidence], "reject": [rejected]},
                                  headers=faq_stack.as_("sam"))

    assert r.status_code == 200, r.text
    review = r.json()
    assert review["entries_changed"] == ["card-lost"] and review["publication"]["status"] == "published"
    assert [s["status"] for s in review["accepted"] + review["rejected"]] == ["accepted", "accepted", "rejected"]
    index = (await faq_stack.http.get("/faq/index", headers=faq_stack.as_("ana"))).json()
    assert index["current"]["version"] == review["publication"]["index_version"]
    assert index["current"]["kb_revision"] == review["publication"]["kb_revision"] == index["kb_revision"]
    entry = (await faq_stack.http.get("/faq/entries/card-lost", headers=faq_stack.as_("ana"))).json()
    assert entry["questions"][-1] == "Card gone left it on the bus"
    answer = await ask(faq_stack, "Card gone left it on the bus")
    assert answer["best"]["entry_id"] == "card-lost" and answer["index_version"] == index["current"]["version"]
    left = await faq_stack.http.get("/faq/suggestions", params={"status": "pending"}, headers=faq_stack.as_("sam"))
    assert left.json()["items"] == []


@pytest.mark.parametrize(("body", "status_code", "says"), [
    ({"accept": ["FIRST", 999_999]}, 404, "no FAQ suggestion 999999"),
    ({"accept": ["FIRST"], "reject": ["FIRST"]}, 422, "in both `accept` and `reject`"),
    ({"accept": [], "reject": []}, 422, "nothing to review"),
    ({"accept": ["REVIEWED", "FIRST"]}, 409, "(accepted) was reviewed already"),
    ({"accept": ["FIRST", 2**31]}, 422, "less than or equal to 2147483647"),  # no id is that large
])
async def test_a_review_the_editor_must_fix_is_refused_whole_and_says_what_to_fix(faq_stack: Stack, body: dict,
                                                                                    status_code: int, says: str):
    reviewed, first, _ = await suggested(faq_stack)
    r = await faq_stack.http.post("/faq/suggestions/review", params={"wait": 0}, json={"accept": [reviewed]},
                                  headers=faq_stack.as_("sam"))
    assert r.status_code == 200, r.text
    revision = faq_stack.db.call(kb.kb_state).revision
    ids = {"FIRST": first, "REVIEWED": reviewed}
    body = {key: [ids.get(i, i) for i in value] for key, value in body.items()}

    r = await faq_stack.http.post("/faq/suggestions/review", json=body, headers=faq_stack.as_("sam"))

    assert r.status_code == status_code and says in r.text, r.text
    assert faq_stack.db.call(kb.kb_state).revision == revision
    pending = await faq_stack.http.get("/faq/suggestions", params={"status": "pending"}, headers=faq_stack.as_("sam"))
    assert first in [item["id"] for item in pending.json()["items"]]
