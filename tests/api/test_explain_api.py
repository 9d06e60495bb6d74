"""What auditors read through the API: a ticket's decoded history, page by page, and every
decision with its why."""

from __future__ import annotations

from datetime import datetime, timedelta

from harness import resolved_ticket


async def worked_ticket(stack) -> str:
    """A ticket opened by staff, claimed and resolved by ana."""
    ticket, _ = await resolved_ticket(stack)
    return ticket["id"]


async def test_the_history_pages_through_every_decoded_event(stack):
    ticket_id = await worked_ticket(stack)
    url = f"/tickets/{ticket_id}/history"
    first = (await stack.http.get(url, params={"limit": 5}, headers=stack.as_("aud"))).json()
    assert first["source"] == "temporal" and len(first["runs"]) == 1
    assert [e["event_id"] for e in first["items"]] == [1, 2, 3, 4, 5] and first["next_cursor"] == 5
    started = first["items"][0]
    assert started["type"] == "workflow_execution_started" and started["summary"] == "TicketWorkflow"
    assert started["details"]["ticket_id"] == ticket_id  # decoded, not base64

    everything, cursor = [], 0
    while cursor is not None:  # the ticket runs on meanwhile: its history only grows at the end
        page = (await stack.http.get(url, params={"cursor": cursor, "limit": 40}, headers=stack.as_("admin"))).json()
        everything += page["items"]
        cursor = page["next_cursor"]
    assert len(everything) == page["total"] >= first["total"]
    assert [e["event_id"] for e in everything] == list(range(1, page["total"] + 1))
    assert datetime.fromisoformat(everything[0]["at"]).utcoffset() == timedelta(0)  # with its zone, UTC
    completed = [e for e in everything if e["type"] == "workflow_execution_update_accepted"
                 and e["summary"] == "complete_task"]
    assert completed and completed[0]["details"]["outcome"] == "resolve"
    replies = [e for e in everything if e["summary"] == "deliver_reply"]
    assert replies and replies[0]["details"]["text"] == "On its way."


async def test_explain_gives_each_decision_its_why(stack):
    ticket_id = await worked_ticket(stack)
    explained = (await stack.http.get(f"/tickets/{ticket_id}/explain", headers=stack.as_("aud"))).json()
    assert explained["status"] == "resolved" and explained["case_type"] == "support-ticket"
    kinds = {(d["category"], d["kind"]) for d in explained["decisions"]}
    assert {("routing", "task_created"), ("routing", "task_claimed"), ("agent", "task_completed"),
            ("status", "status")} <= kinds
    done = next(d for d in explained["decisions"] if d["kind"] == "task_completed")
    assert done["why"] == "resolve by ana" and done["data"]["agent"] == "ana"
    assert all(d["why"] for d in explained["decisions"])  # every decision says why


async def test_only_auditors_and_admins_read_histories(stack):
    ticket_id = await worked_ticket(stack)
    for who in ("ana", "sam", "cust-1"):
        for what in ("history", "explain"):
            r = await stack.http.get(f"/tickets/{ticket_id}/{what}", headers=stack.as_(who))
            assert r.status_code == 403, (who, what, r.text)
    r = await stack.http.get("/tickets/no-such-ticket/explain", headers=stack.as_("aud"))
    assert r.status_code == 404 and "no ticket no-such-ticket" in r.text
    r = await stack.http.get(f"/tickets/{ticket_id}/history", params={"limit": 0}, headers=stack.as_("aud"))
    assert r.status_code == 422
