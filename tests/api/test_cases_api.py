"""Case types over HTTP: listing them with the body each takes, and opening one by name."""

from __future__ import annotations

from harness import eventually, staff_ticket_body, ticket_body, unique_ref
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
    assert r.json()["detail"] == "unknown case type 'parcel-insurance': known are support-ticket"
    assert (await stack.http.post("/cases/parcel-insurance", json=ticket_body())).status_code == 401
