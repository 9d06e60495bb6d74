"""The chat webhook: a conversation's messages land on one ticket, however they race, and a
conversation whose ticket closed goes on in a new one."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta

import httpx
import pytest
from pydantic import SecretStr

from api.main import create_app
from connectors.signing import SIGNATURE_HEADER, sign
from harness import eventually

SECRET = "chat-test-secret"


@pytest.fixture
async def chat(stack):
    settings = stack.settings.model_copy(update={"messaging_webhook_secret": SecretStr(SECRET),
                                                 "auto_close_after": timedelta(seconds=1)})
    app = create_app(settings, db=stack.db, temporal=stack.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:

        async def send(conversation: str, message: str, text: str = "Where is ORD-1001?") -> httpx.Response:
            raw = json.dumps({"conversation_id": conversation, "message_id": message, "customer_id": "cust-1",
                              "text": text, "sent_at": "2026-11-30T10:00:00Z"}).encode()
            return await http.post("/webhooks/chat", content=raw, headers={SIGNATURE_HEADER: sign(SECRET, raw),
                                                                           "content-type": "application/json"})
        yield send


async def conversation_of(stack, ticket_id: str) -> list[str]:
    r = await stack.http.get(f"/tickets/{ticket_id}", headers=stack.as_("cust-1"))
    return [m["text"] for m in r.json()["conversation"]] if r.status_code == 200 else []


async def test_messages_racing_in_open_one_ticket_with_all_of_them(stack, chat):
    conversation = f"conv-{uuid.uuid4().hex}"
    answers = await asyncio.gather(*[chat(conversation, f"m{i}", f"message {i}") for i in range(5)])
    assert {r.status_code for r in answers} == {202}
    assert len({r.json()["ticket_id"] for r in answers}) == 1
    assert sorted(r.json()["action"] for r in answers) == ["appended"] * 4 + ["opened"]
    ticket = answers[0].json()["ticket_id"]

    async def all_five():
        texts = await conversation_of(stack, ticket)
        return sorted(texts) if len(texts) == 5 else None

    assert await eventually(all_five) == [f"message {i}" for i in range(5)]


async def test_a_redelivered_message_is_kept_once(stack, chat):
    conversation = f"conv-{uuid.uuid4().hex}"
    first, again = await chat(conversation, "m1"), await chat(conversation, "m1")
    assert first.json()["ticket_id"] == again.json()["ticket_id"]
    await chat(conversation, "m2", "and another thing")

    async def two():
        texts = await conversation_of(stack, first.json()["ticket_id"])
        return texts if len(texts) == 2 else None

    assert await eventually(two) == ["Where is ORD-1001?", "and another thing"]


async def test_a_conversation_whose_ticket_closed_goes_on_in_a_new_one(stack, chat):
    conversation = f"conv-{uuid.uuid4().hex}"
    first = (await chat(conversation, "m1")).json()["ticket_id"]
    handle = stack.client.get_workflow_handle(f"ticket-{first}")
    await handle.terminate("closed for the test")
    later = await chat(conversation, "m2", "me again")
    assert later.status_code == 202 and later.json()["action"] == "opened"
    assert later.json()["ticket_id"] != first


async def test_a_blank_message_is_not_a_server_error(stack, chat):
    r = await chat(f"conv-{uuid.uuid4().hex}", "m1", "   ")
    assert r.status_code == 202


async def test_the_longest_ids_and_order_numbers_the_webhook_accepts_open_a_ticket(stack, chat):
    # Each id may be 200 characters (the documented body); together they outgrow a ticket's
    # external_ref, and a 150-digit "order number" outgrows its order_id. Found by tests/fuzz.
    r = await chat("c" * 200, "m" * 200, "Where is ORD-" + "1" * 150 + "?")
    assert r.status_code == 202, r.text


async def test_intake_rules_open_a_chat_as_another_case_type_and_its_later_messages_follow_it(
        callback_requests, stack, tmp_path):
    rules = tmp_path / "intake.json"
    rules.write_text(json.dumps({"rules": [{"case_type": "callback-request", "any_words": ["call me"],
                                            "department": "billing"}]}))
    settings = stack.settings.model_copy(update={"messaging_webhook_secret": SecretStr(SECRET),
                                                 "intake_rules_file": rules})
    app = create_app(settings, db=stack.db, temporal=stack.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        async def send(conversation: str, message: str, text: str) -> httpx.Response:
            raw = json.dumps({"conversation_id": conversation, "message_id": message, "customer_id": "cust-1",
                              "text": text, "sent_at": "2026-11-30T10:00:00Z"}).encode()
            return await http.post("/webhooks/chat", content=raw, headers={SIGNATURE_HEADER: sign(SECRET, raw),
                                                                           "content-type": "application/json"})

        conversation = f"conv-{uuid.uuid4().hex}"
        opened = await send(conversation, "m1", "Could you call me tomorrow?")
        assert opened.status_code == 202 and opened.json()["action"] == "opened"
        case_id = opened.json()["ticket_id"]
        later = await send(conversation, "m2", "Any time after 10.")  # matches no rule: still that case
        assert later.json() == {"ticket_id": case_id, "action": "appended"}
        other = await send(f"conv-{uuid.uuid4().hex}", "m1", "Where is ORD-1001?")
        assert other.json()["ticket_id"] != case_id

    async def both_messages():
        r = await stack.http.get(f"/tickets/{case_id}", headers=stack.as_("sam"))
        return r.json() if r.status_code == 200 and len(r.json()["conversation"]) == 2 else None

    case = await eventually(both_messages)
    assert (case["case_type"], case["department"]) == ("callback-request", "billing")
    assert case["workflow_id"] == f"callback-{case_id}"
    other_case = await eventually(lambda: _readable(stack, other.json()["ticket_id"]))
    assert other_case["case_type"] == "support-ticket"


async def _readable(stack, case_id: str):  # noqa: ANN001
    r = await stack.http.get(f"/tickets/{case_id}", headers=stack.as_("sam"))
    return r.json() if r.status_code == 200 else None


@pytest.fixture
def callback_requests(monkeypatch):
    """The chat-openable probe case type, registered for one test (before the stack)."""
    from case_probe import callback_case_type
    from workflows import registry

    monkeypatch.setattr(registry, "_registry", dict(registry._registry))
    registry.case_types()
    return registry.register(callback_case_type())


async def test_a_chat_about_sending_an_order_back_opens_a_return_request(stack, tmp_path):
    rules = tmp_path / "intake.json"
    rules.write_text(json.dumps({"rules": [{"case_type": "return-request", "any_words": ["return", "send it back"]}]}))
    settings = stack.settings.model_copy(update={"messaging_webhook_secret": SecretStr(SECRET),
                                                 "intake_rules_file": rules})
    app = create_app(settings, db=stack.db, temporal=stack.client)
    raw = json.dumps({"conversation_id": f"conv-{uuid.uuid4().hex}", "message_id": "m1", "customer_id": "cust-1",
                      "text": "I want to return ORD-1003, the lamps flicker", "sent_at": "2026-11-30T10:00:00Z"}).encode()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        r = await http.post("/webhooks/chat", content=raw, headers={SIGNATURE_HEADER: sign(SECRET, raw),
                                                                    "content-type": "application/json"})
    assert r.status_code == 202, r.text
    case = await eventually(lambda: _readable(stack, r.json()["ticket_id"]))
    assert (case["case_type"], case["department"], case["order_id"]) == ("return-request", "returns", "ORD-1003")
    assert case["workflow_id"] == f"return-{case['id']}"
