"""Opening, listing and reading tickets through the HTTP API."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlmodel import func, select

from harness import eventually, open_task_for, staff_ticket_body, ticket_body, unique_ref
from api.intake import intake_key_for, ticket_id_for
from models import readmodel
from models.ticket import Ticket, TicketSnapshot
from workflows.ticket import workflow_id_for


async def test_open_ticket_starts_workflow_and_is_readable(stack):
    r = await stack.http.post("/tickets", json=staff_ticket_body(order_id="ORD-1"), headers=stack.as_("admin"))
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["status"] == "new" and created["workflow_id"] == f"ticket-{created['id']}"

    r = await stack.http.get(f"/tickets/{created['id']}", headers=stack.as_("cust-1"))
    assert r.status_code == 200
    assert r.json()["order_id"] == "ORD-1" and "timeline" not in r.json()  # the customer's view

    task = await open_task_for(stack, created["id"])
    assert task["queue"] == "logistics" and task["context"]["order_id"] == "ORD-1"

    async def awaiting_agent():
        ticket = (await stack.http.get(f"/tickets/{created['id']}", headers=stack.as_("ana"))).json()
        return ticket if ticket["status"] == "awaiting_agent" else None

    ticket = await eventually(awaiting_agent)
    kinds = [e["kind"] for e in ticket["timeline"]]
    assert kinds[0] == "opened" and "task_created" in kinds
    # no external system is configured here: nothing gathered, and no gap reported
    assert "context_gap" not in kinds and ticket["context"]["customer360"]["orders"] == []


async def test_same_external_ref_returns_same_ticket_even_when_racing(stack):
    ref = unique_ref()
    responses = await asyncio.gather(
        *[stack.http.post("/tickets", json=staff_ticket_body(external_ref=ref), headers=stack.as_("admin"))
          for _ in range(12)]
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 11 + [201], [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1

    count = stack.db.call(lambda s: s.exec(select(func.count()).select_from(Ticket).where(Ticket.external_ref == ref)).one())
    assert count == 1
    # and exactly one task, from exactly one workflow
    ticket_id = responses[0].json()["id"]
    await open_task_for(stack, ticket_id)
    r = await stack.http.get("/tasks", params={"limit": 200}, headers=stack.as_("ana"))
    assert sum(t["ticket_id"] == ticket_id for t in r.json()["items"]) == 1


async def test_refs_are_private_to_each_caller(stack):
    """Another caller's equal ref opens another ticket: no 409 tells anyone it exists."""
    ref = unique_ref()
    first = await stack.http.post("/tickets", json=ticket_body(external_ref=ref), headers=stack.as_("cust-1"))
    other = await stack.http.post("/tickets", json=ticket_body(customer_id="cust-2", external_ref=ref),
                                  headers=stack.as_("cust-2"))
    assert (first.status_code, other.status_code) == (201, 201)
    assert first.json()["id"] != other.json()["id"]


async def test_a_callers_own_ref_reused_for_another_customer_is_409(stack):
    ref = unique_ref()
    assert (await stack.http.post("/tickets", json=staff_ticket_body(external_ref=ref),
                                  headers=stack.as_("admin"))).status_code == 201
    r = await stack.http.post("/tickets", json=staff_ticket_body(customer_id="cust-2", external_ref=ref),
                              headers=stack.as_("admin"))
    assert r.status_code == 409 and "external_ref" in r.json()["detail"]


async def test_malformed_input_names_the_field(stack):
    r = await stack.http.post("/tickets", json={"customer_id": "cust-1", "body": "x"}, headers=stack.as_("cust-1"))
    assert r.status_code == 422
    assert ["body", "subject"] in [e["loc"] for e in r.json()["detail"]]

    r = await stack.http.post("/tickets", json=ticket_body(priority="whenever"), headers=stack.as_("cust-1"))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "priority"]

    r = await stack.http.get("/tickets", params={"limit": 0}, headers=stack.as_("admin"))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "limit"]

    r = await stack.http.get("/tickets", params={"cursor": "garbage"}, headers=stack.as_("admin"))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "cursor"]


async def test_unknown_ticket_is_404(stack):
    r = await stack.http.get("/tickets/does-not-exist", headers=stack.as_("admin"))
    assert r.status_code == 404
    r = await stack.http.post("/tickets/does-not-exist/messages", json={"text": "hi"}, headers=stack.as_("admin"))
    assert r.status_code == 404


async def test_customers_see_only_their_own_tickets(stack):
    mine = (await stack.http.post("/tickets", json=ticket_body(), headers=stack.as_("cust-1"))).json()["id"]
    theirs = (await stack.http.post("/tickets", json=ticket_body(customer_id="cust-2"),
                                    headers=stack.as_("cust-2"))).json()["id"]

    async def listed_mine():  # lists follow the workflows' projections within moments
        items = (await stack.http.get("/tickets", params={"limit": 200}, headers=stack.as_("cust-1"))).json()["items"]
        return items if mine in {t["id"] for t in items} else None

    listed = await eventually(listed_mine)
    assert {t["customer_id"] for t in listed} == {"cust-1"}
    assert mine in {t["id"] for t in listed} and theirs not in {t["id"] for t in listed}

    assert (await stack.http.get(f"/tickets/{theirs}", headers=stack.as_("cust-1"))).status_code == 404
    r = await stack.http.post(f"/tickets/{theirs}/messages", json={"text": "hi"}, headers=stack.as_("cust-1"))
    assert r.status_code == 404
    r = await stack.http.post("/tickets", json=ticket_body(customer_id="cust-2"), headers=stack.as_("cust-1"))
    assert r.status_code == 403


async def test_pagination_walks_every_ticket_once(stack):
    customer = "cust-2"
    ids = set()
    for _ in range(7):
        r = await stack.http.post("/tickets", json=ticket_body(customer_id=customer), headers=stack.as_(customer))
        ids.add(r.json()["id"])

    async def all_listed():
        items = (await stack.http.get("/tickets", params={"limit": 200}, headers=stack.as_(customer))).json()["items"]
        return ids <= {t["id"] for t in items}

    await eventually(all_listed)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await stack.http.get("/tickets", params=params, headers=stack.as_(customer))).json()
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) and ids <= set(seen)
    opened = [t for t in seen if t in ids]
    assert opened == sorted(opened, key=lambda _id: seen.index(_id))  # newest first, stable


async def test_status_filter(stack):
    created = (await stack.http.post("/tickets", json=ticket_body(), headers=stack.as_("cust-1"))).json()["id"]

    async def listed_as_waiting():
        items = (await stack.http.get("/tickets", params={"status": "awaiting_agent", "limit": 200},
                                      headers=stack.as_("admin"))).json()["items"]
        return items if created in {t["id"] for t in items} else None

    waiting = await eventually(listed_as_waiting)
    assert all(t["status"] == "awaiting_agent" for t in waiting)
    r = await stack.http.get("/tickets", params={"status": "bogus"}, headers=stack.as_("admin"))
    assert r.status_code == 422


async def test_message_on_resolved_ticket_reopens_it(stack):
    ticket_id = (await stack.http.post("/tickets", json=staff_ticket_body(), headers=stack.as_("admin"))).json()["id"]
    task = await open_task_for(stack, ticket_id)
    assert (await stack.http.post(f"/tasks/{task['id']}/claim", headers=stack.as_("ana"))).status_code == 200
    r = await stack.http.post(f"/tasks/{task['id']}/complete", json={"outcome": "resolve", "reply": "Sent today."},
                              headers=stack.as_("ana"))
    assert r.status_code == 200, r.text

    async def status_is(expected):
        return (await stack.http.get(f"/tickets/{ticket_id}", headers=stack.as_("cust-1"))).json()["status"] == expected

    await eventually(lambda: status_is("resolved"))
    ticket = (await stack.http.get(f"/tickets/{ticket_id}", headers=stack.as_("cust-1"))).json()
    assert ticket["conversation"][-1] == {**ticket["conversation"][-1], "direction": "out", "text": "Sent today."}

    r = await stack.http.post(f"/tickets/{ticket_id}/messages", json={"text": "Not here yet", "message_id": "m-1"},
                              headers=stack.as_("cust-1"))
    assert r.status_code == 202
    await eventually(lambda: status_is("awaiting_agent"))
    second = await open_task_for(stack, ticket_id)
    assert second["id"] != task["id"]


async def test_a_repeated_ref_finds_its_ticket_after_temporal_forgot_the_workflow(stack):
    """Temporal deletes closed workflows after the namespace's retention; the read model keeps
    the ticket, so a late retry still answers with it instead of opening another. (The state
    after retention: the ticket's row, and no workflow of that id in Temporal.)"""
    ref = unique_ref()
    key = intake_key_for("user:cust-1", ref)
    ticket_id = ticket_id_for(key)
    now = datetime.now(UTC)
    closed = TicketSnapshot(ticket_id=ticket_id, workflow_id=workflow_id_for(ticket_id), customer_id="cust-1",
                            subject="Old", body="Long ago", channel="web", order_id=None, priority="normal",
                            department="general", external_ref=ref, intake_key=key, status="closed",
                            opened_at=now, updated_at=now, revision=9)
    stack.db.call(readmodel.upsert_ticket, closed)
    again = await stack.http.post("/tickets", json=ticket_body(external_ref=ref), headers=stack.as_("cust-1"))
    assert again.status_code == 200 and again.json() == {"id": ticket_id, "status": "closed",
                                                         "workflow_id": workflow_id_for(ticket_id)}
