"""Working tasks through the HTTP API: claim, release, complete, and who may."""

from __future__ import annotations

import asyncio

from harness import eventually, open_task_for, staff_ticket_body


async def _new_task(stack, **overrides) -> dict:
    r = await stack.http.post("/tickets", json=staff_ticket_body(**overrides), headers=stack.as_("admin"))
    assert r.status_code == 201, r.text
    return await open_task_for(stack, r.json()["id"], user="sam")


async def test_claim_then_complete_resolves_ticket(stack):
    task = await _new_task(stack)
    r = await stack.http.post(f"/tasks/{task['id']}/claim", headers=stack.as_("ana"))
    assert r.status_code == 200 and r.json()["assignee"] == "ana" and r.json()["status"] == "claimed"
    # the read model reflects the claim as soon as the call returns
    mine = (await stack.http.get("/tasks", params={"assignee": "me"}, headers=stack.as_("ana"))).json()["items"]
    assert task["id"] in {t["id"] for t in mine}

    r = await stack.http.post(f"/tasks/{task['id']}/complete", json={"outcome": "resolve", "reply": "Fixed."},
                              headers=stack.as_("ana"))
    assert r.status_code == 200 and r.json()["status"] == "completed" and r.json()["outcome"] == "resolve"


async def test_second_claim_is_409_and_changes_nothing(stack):
    task = await _new_task(stack)
    assert (await stack.http.post(f"/tasks/{task['id']}/claim", headers=stack.as_("ana"))).status_code == 200
    r = await stack.http.post(f"/tasks/{task['id']}/claim", headers=stack.as_("bob"))
    assert r.status_code == 409 and "already claimed by ana" in r.json()["detail"]
    listed = (await stack.http.get("/tasks", params={"limit": 200}, headers=stack.as_("bob"))).json()["items"]
    assert next(t for t in listed if t["id"] == task["id"])["assignee"] == "ana"


async def test_concurrent_claims_have_exactly_one_winner(stack):
    task = await _new_task(stack)
    agents = ["ana", "bob", "sam"]
    responses = await asyncio.gather(
        *[stack.http.post(f"/tasks/{task['id']}/claim", headers=stack.as_(a)) for a in agents]
    )
    assert sorted(r.status_code for r in responses) == [200, 409, 409], [r.text for r in responses]


async def test_completing_unclaimed_or_foreign_task_is_409(stack):
    task = await _new_task(stack)
    r = await stack.http.post(f"/tasks/{task['id']}/complete", json={"outcome": "resolve", "reply": "x"},
                              headers=stack.as_("ana"))
    assert r.status_code == 409 and "claim it" in r.json()["detail"]
    await stack.http.post(f"/tasks/{task['id']}/claim", headers=stack.as_("ana"))
    r = await stack.http.post(f"/tasks/{task['id']}/complete", json={"outcome": "resolve", "reply": "x"},
                              headers=stack.as_("bob"))
    assert r.status_code == 409 and "claimed by ana" in r.json()["detail"]
    r = await stack.http.post(f"/tasks/{task['id']}/release", headers=stack.as_("bob"))
    assert r.status_code == 409


async def test_completion_input_is_validated(stack):
    task = await _new_task(stack)
    await stack.http.post(f"/tasks/{task['id']}/claim", headers=stack.as_("ana"))
    r = await stack.http.post(f"/tasks/{task['id']}/complete", json={"outcome": "resolve"}, headers=stack.as_("ana"))
    assert r.status_code == 422 and "reply is required" in r.text
    r = await stack.http.post(f"/tasks/{task['id']}/complete", json={"outcome": "vanish"}, headers=stack.as_("ana"))
    assert r.status_code == 422 and r.json()["detail"] == [{
        "loc": ["body", "outcome"], "type": "value_error",
        "msg": "outcome 'vanish' is not one this task takes: resolve, ask_customer, escalate, transfer"}]
    r = await stack.http.post(f"/tasks/{task['id']}/complete", json={"outcome": "Resolve!"}, headers=stack.as_("ana"))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "outcome"]
    r = await stack.http.post(f"/tasks/{task['id']}/complete", json={"outcome": "transfer"}, headers=stack.as_("ana"))
    assert r.status_code == 422 and "queue is required" in r.text
    # Nothing was consumed: the task is still ana's to complete.
    r = await stack.http.post(f"/tasks/{task['id']}/complete", json={"outcome": "resolve", "reply": "Done."},
                              headers=stack.as_("ana"))
    assert r.status_code == 200 and r.json()["outcome"] == "resolve"


async def test_release_returns_task_to_queue(stack):
    task = await _new_task(stack)
    await stack.http.post(f"/tasks/{task['id']}/claim", headers=stack.as_("ana"))
    r = await stack.http.post(f"/tasks/{task['id']}/release", headers=stack.as_("ana"))
    assert r.status_code == 200 and r.json()["status"] == "open" and r.json()["assignee"] is None
    assert (await stack.http.post(f"/tasks/{task['id']}/claim", headers=stack.as_("bob"))).status_code == 200


async def test_agents_only_see_and_work_their_department(stack):
    task = await _new_task(stack, department="logistics")
    gil_sees = (await stack.http.get("/tasks", params={"limit": 200}, headers=stack.as_("gil"))).json()["items"]
    assert all(t["queue"] == "billing" for t in gil_sees)
    # a task of another department answers like one that does not exist
    assert (await stack.http.post(f"/tasks/{task['id']}/claim", headers=stack.as_("gil"))).status_code == 404
    # a supervisor works any queue
    assert (await stack.http.post(f"/tasks/{task['id']}/claim", headers=stack.as_("sam"))).status_code == 200


async def test_customers_cannot_touch_tasks(stack):
    task = await _new_task(stack)
    assert (await stack.http.get("/tasks", headers=stack.as_("cust-1"))).status_code == 403
    assert (await stack.http.post(f"/tasks/{task['id']}/claim", headers=stack.as_("cust-1"))).status_code == 404


async def test_unknown_task_is_404(stack):
    assert (await stack.http.post("/tasks/nope/claim", headers=stack.as_("ana"))).status_code == 404


async def test_escalation_lands_in_supervisor_queue(stack):
    task = await _new_task(stack, priority="high")
    await stack.http.post(f"/tasks/{task['id']}/claim", headers=stack.as_("ana"))
    r = await stack.http.post(f"/tasks/{task['id']}/complete", json={"outcome": "escalate"}, headers=stack.as_("ana"))
    assert r.status_code == 200

    async def escalated():
        items = (await stack.http.get("/tasks", params={"queue": "supervisors", "status": "open", "limit": 200},
                                      headers=stack.as_("sam"))).json()["items"]
        return next((t for t in items if t["ticket_id"] == task["ticket_id"]), None)

    second = await eventually(escalated)
    assert second["priority"] == "urgent"
    # logistics agents do not see the supervisors' queue
    ana_sees = (await stack.http.get("/tasks", params={"queue": "supervisors"}, headers=stack.as_("ana"))).json()
    assert ana_sees["items"] == []


async def test_a_refund_over_what_is_left_on_the_order_is_refused_before_anything_is_sent(stack):
    from models.task import Task

    task = await _new_task(stack, order_id="ORD-77")
    assert (await stack.http.post(f"/tasks/{task['id']}/claim", headers=stack.as_("sam"))).status_code == 200

    def gathered(session) -> None:  # what the order system said when the case gathered its facts
        row = session.get(Task, task["id"])
        row.context = {**row.context, "order_id": "ORD-77", "customer360": {"orders": [
            {"id": "ORD-77", "currency": "EUR", "total": "225.98", "refunded_total": "100.00"}]}}
        session.add(row)

    stack.db.call(gathered)
    body = {"outcome": "resolve", "reply": "Refunded.", "refund": {"amount": "125.99", "reason": "late"}}
    r = await stack.http.post(f"/tasks/{task['id']}/complete", json=body, headers=stack.as_("sam"))
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "refund", "amount"]
    assert r.json()["detail"][0]["msg"] == ("a refund of 125.99 is more than the 125.98 EUR left to refund on "
                                            "order ORD-77")
    mine = (await stack.http.get("/tasks", params={"assignee": "me"}, headers=stack.as_("sam"))).json()["items"]
    assert next(t for t in mine if t["id"] == task["id"])["status"] == "claimed"  # nothing was consumed

    body["refund"]["amount"] = "125.98"  # all that is left is fine
    r = await stack.http.post(f"/tasks/{task['id']}/complete", json=body, headers=stack.as_("sam"))
    assert r.status_code == 200, r.text
