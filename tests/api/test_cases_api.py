"""Case types over HTTP: listing them with the body each takes, and opening one by name."""

from __future__ import annotations

import json

import pytest

from harness import eventually, open_task_for, staff_ticket_body, ticket_body, unique_ref
from models import readmodel
from models.ticket import TicketCreate


async def test_case_types_are_listed_with_the_body_that_opens_each(stack):
    r = await stack.http.get("/case-types", headers=stack.as_("cust-1"))
    assert r.status_code == 200, r.text
    by_name = {t["name"]: t for t in r.json()}
    ticket = by_name["support-ticket"]
    assert ticket["id_prefix"] == "ticket" and ticket["default_department"] == "general"
    assert ticket["task_outcomes"] == {"handle_ticket": ["resolve", "ask_customer", "escalate", "transfer"]}
    assert ticket["input_schema"] == TicketCreate.model_json_schema()
    assert (await stack.http.get("/case-types")).status_code == 401


async def test_a_support_ticket_opened_by_case_type_is_the_same_as_one_opened_at_tickets(stack):
    ref = unique_ref()
    r = await stack.http.post("/cases/support-ticket", json=ticket_body(customer_id="cust-1", external_ref=ref),
                              headers=stack.as_("cust-1"))
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["workflow_id"] == f"ticket-{created['id']}"

    # One ref, one ticket, whichever route the retry takes.
    again = await stack.http.post("/tickets", json=ticket_body(customer_id="cust-1", external_ref=ref),
                                  headers=stack.as_("cust-1"))
    assert again.status_code == 200 and again.json()["id"] == created["id"]

    async def readable():
        r = await stack.http.get(f"/tickets/{created['id']}", headers=stack.as_("cust-1"))
        return r.json() if r.status_code == 200 else None

    assert (await eventually(readable))["id"] == created["id"]


async def test_opening_a_support_ticket_by_case_type_checks_what_post_tickets_checks(stack):
    # A customer may not buy priority, nor open for someone else.
    r = await stack.http.post("/cases/support-ticket", json={**ticket_body(customer_id="cust-1"), "priority": "urgent"},
                              headers=stack.as_("cust-1"))
    assert r.status_code == 403 and "priority" in r.json()["detail"]
    r = await stack.http.post("/cases/support-ticket", json=ticket_body(customer_id="cust-2"),
                              headers=stack.as_("cust-1"))
    assert r.status_code == 403
    r = await stack.http.post("/cases/support-ticket", json={**staff_ticket_body(), "department": "nowhere"},
                              headers=stack.as_("admin"))
    assert r.status_code == 422 and "unknown department 'nowhere'" in r.text
    r = await stack.http.post("/cases/support-ticket", json={"customer_id": "cust-1"}, headers=stack.as_("cust-1"))
    assert r.status_code == 422 and {tuple(p["loc"]) for p in r.json()["detail"]} >= {("body", "subject"),
                                                                                         ("body", "body")}


async def test_an_unknown_case_type_is_a_404_that_names_the_known_ones(stack):
    r = await stack.http.post("/cases/parcel-insurance", json=ticket_body(), headers=stack.as_("admin"))
    assert r.status_code == 404
    assert r.json()["detail"] == "unknown case type 'parcel-insurance': known are return-request, support-ticket"
    assert (await stack.http.post("/cases/parcel-insurance", json=ticket_body())).status_code == 401


async def test_tickets_tasks_and_change_events_carry_their_case_type_and_filter_by_it(stack):
    r = await stack.http.post("/cases/support-ticket", json=staff_ticket_body(customer_id="cust-1"),
                              headers=stack.as_("admin"))
    ticket_id = r.json()["id"]
    task = await open_task_for(stack, ticket_id, user="sam")
    assert task["case_type"] == "support-ticket"

    ticket = (await stack.http.get(f"/tickets/{ticket_id}", headers=stack.as_("sam"))).json()
    assert ticket["case_type"] == "support-ticket"
    customer_view = (await stack.http.get(f"/tickets/{ticket_id}", headers=stack.as_("cust-1"))).json()
    assert customer_view["case_type"] == "support-ticket"

    listed = (await stack.http.get("/tickets", params={"case_type": "support-ticket", "limit": 200},
                                   headers=stack.as_("sam"))).json()["items"]
    assert ticket_id in {t["id"] for t in listed} and {t["case_type"] for t in listed} == {"support-ticket"}
    inbox = (await stack.http.get("/tasks", params={"case_type": "support-ticket", "limit": 200},
                                  headers=stack.as_("sam"))).json()["items"]
    assert task["id"] in {t["id"] for t in inbox}

    events = stack.db.call(readmodel.changes_after, 0, limit=10_000, case_type="support-ticket")
    assert {e.ticket_id for e in events} >= {ticket_id} and {e.case_type for e in events} == {"support-ticket"}
    assert stack.db.call(readmodel.changes_after, 0, limit=10, case_type="return-request") == []


async def test_filtering_by_an_unknown_case_type_says_which_are_known(stack):
    for path in ("/tickets", "/tasks", "/events"):
        r = await stack.http.get(path, params={"case_type": "retrun-request"}, headers=stack.as_("sam"))
        assert r.status_code == 422, (path, r.text)
        assert r.json()["detail"] == [{"loc": ["query", "case_type"], "type": "value_error",
                                       "msg": "unknown case type 'retrun-request': known are return-request, support-ticket"}]


def test_the_inbox_keeps_only_the_asked_case_type(db):
    from datetime import UTC, datetime

    from models.enums import Priority
    from models.task import TaskSnapshot

    marker = unique_ref()
    for case_type in ("support-ticket", "return-request"):
        db.call(readmodel.upsert_task, TaskSnapshot(
            task_id=f"{marker}-{case_type}", ticket_id=marker, workflow_id=f"x-{marker}", case_type=case_type,
            queue=f"q-{marker}"[:50], priority=Priority.normal, created_at=datetime.now(UTC)))
    for case_type in ("support-ticket", "return-request"):
        for as_json in (False, True):
            items, _ = db.call(readmodel.list_tasks, limit=10, queue=f"q-{marker}"[:50], case_type=case_type,
                               as_json=as_json)
            ids = [json.loads(i)["id"] if as_json else i.id for i in items]
            assert ids == [f"{marker}-{case_type}"], (case_type, as_json)


@pytest.fixture
def parcel_claims(monkeypatch):
    """The probe case type registered for one test (before the stack is built)."""
    from case_probe import probe_case_type
    from workflows import registry

    monkeypatch.setattr(registry, "_registry", dict(registry._registry))
    registry.case_types()  # the shipped types first
    return registry.register(probe_case_type())


async def test_a_new_case_type_opens_and_is_worked_through_the_api_with_no_other_change(parcel_claims, stack):
    types = {t["name"]: t for t in (await stack.http.get("/case-types", headers=stack.as_("cust-1"))).json()}
    assert types["parcel-claim"]["task_outcomes"] == {"review_claim": ["pay", "refuse"]}
    assert "case_data" in types["parcel-claim"]["input_schema"]["required"]

    ref = unique_ref()
    body = {**ticket_body(customer_id="cust-1", external_ref=ref), "case_data": {"parcel": "TRK-9"}}
    r = await stack.http.post("/cases/parcel-claim", json={**body, "case_data": {}}, headers=stack.as_("cust-1"))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "case_data", "parcel"]
    r = await stack.http.post("/cases/parcel-claim", json=body, headers=stack.as_("cust-1"))
    assert r.status_code == 201, r.text
    claim = r.json()
    assert claim["workflow_id"] == f"claim-{claim['id']}"
    # The same ref for a support ticket is another case: refs are private to a case type.
    ticket = await stack.http.post("/tickets", json=ticket_body(customer_id="cust-1", external_ref=ref),
                                   headers=stack.as_("cust-1"))
    assert ticket.status_code == 201 and ticket.json()["id"] != claim["id"]
    again = await stack.http.post("/cases/parcel-claim", json=body, headers=stack.as_("cust-1"))
    assert again.status_code == 200 and again.json()["id"] == claim["id"]

    task = await open_task_for(stack, claim["id"], user="sam")
    assert (task["case_type"], task["kind"], task["queue"]) == ("parcel-claim", "review_claim", "logistics")
    assert task["allowed_outcomes"] == ["pay", "refuse"] and task["context"]["parcel"] == "TRK-9"
    inbox = (await stack.http.get("/tasks", params={"case_type": "parcel-claim"}, headers=stack.as_("sam"))).json()
    assert [t["id"] for t in inbox["items"]] == [task["id"]]

    assert (await stack.http.post(f"/tasks/{task['id']}/claim", headers=stack.as_("ana"))).is_success
    r = await stack.http.post(f"/tasks/{task['id']}/complete", json={"outcome": "resolve", "reply": "x"},
                              headers=stack.as_("ana"))
    assert r.status_code == 422 and "not one this task takes: pay, refuse" in r.text
    r = await stack.http.post(f"/tasks/{task['id']}/complete", json={"outcome": "pay"}, headers=stack.as_("ana"))
    assert r.status_code == 200, r.text

    async def paid():
        r = await stack.http.get(f"/tickets/{claim['id']}", headers=stack.as_("sam"))
        return r.json() if r.status_code == 200 and r.json()["status"] == "resolved" else None

    case = await eventually(paid)
    assert case["case_type"] == "parcel-claim"
    listed = (await stack.http.get("/tickets", params={"case_type": "parcel-claim"}, headers=stack.as_("sam"))).json()
    assert [t["id"] for t in listed["items"]] == [claim["id"]]
