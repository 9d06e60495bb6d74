"""A return request end to end over real sockets: opened through the API, checked against the
order in the SOAP ERP, approved by a supervisor, labelled by the carrier, scanned, and
refunded exactly once in the ERP."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

from api.main import create_app
from connectors.erp_soap import SoapOrderSystem
from harness import eventually, unique_ref
from models.returns import ReturnPolicy
from sandbox.testing import running_sandbox, sandbox  # noqa: F401 (fixtures)
from settings import Settings
from worker import build_worker

CUSTOMER, ORDER = "CUST-0003", "ORD-1003"  # two desk lamps, delivered five days ago


@pytest.mark.slow
async def test_a_return_from_request_to_refund(dev_env, db, tokens, task_queue, sandbox, tmp_path):  # noqa: F811
    policy = tmp_path / "returns.json"
    policy.write_text(ReturnPolicy(scan_poll_every=timedelta(seconds=1)).model_dump_json())
    settings = Settings(
        database_url=db.url, task_queue=task_queue, faq_enabled=False, returns_policy_file=policy,
        orders_url=sandbox.urls["erp"] + "/", orders_username=sandbox.erp_username,
        orders_password=sandbox.erp_password,
        logistics_url=sandbox.urls["carrier"], logistics_api_key=sandbox.api_key,
    )
    app = create_app(settings, db=db, temporal=dev_env.client)
    admin, sam = ({"Authorization": f"Bearer {tokens[user]}"} for user in ("admin", "sam"))
    erp = SoapOrderSystem(sandbox.urls["erp"] + "/", timeout=10, username=sandbox.erp_username,
                          password=sandbox.erp_password)
    refunded_before = erp.get_order(ORDER).refunded_total

    with ThreadPoolExecutor(max_workers=settings.activity_threads) as executor:
        async with build_worker(dev_env.client, settings, db, executor):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
                r = await http.post("/cases/return-request", headers=admin, json={
                    "customer_id": CUSTOMER, "subject": "Returning the lamps", "body": "They flicker.",
                    "order_id": ORDER, "external_ref": unique_ref(), "case_data": {"reason": "They flicker"}})
                assert r.status_code == 201, r.text
                case_id = r.json()["id"]
                assert r.json()["workflow_id"] == f"return-{case_id}"

                async def approval_task():
                    items = (await http.get("/tasks", params={"case_type": "return-request", "queue": "returns",
                                                              "limit": 200}, headers=sam)).json()["items"]
                    return next((t for t in items if t["ticket_id"] == case_id), None)

                task = await eventually(approval_task, timeout=60)
                assert task["kind"] == "approve_return" and task["context"]["amount"] == "90.00"
                assert (await http.post(f"/tasks/{task['id']}/claim", headers=sam)).is_success
                r = await http.post(f"/tasks/{task['id']}/complete", json={"outcome": "approve"}, headers=sam)
                assert r.status_code == 200, r.text

                async def labelled():
                    case = (await http.get(f"/tickets/{case_id}", headers=sam)).json()
                    return case["context"].get("return_label")

                label = await eventually(labelled, timeout=60)
                tracking = label["tracking_number"]
                parcel = httpx.get(f"{sandbox.urls['carrier']}/shipments/{tracking}",
                                   headers={"Authorization": f"Bearer {sandbox.api_key}"}).json()
                assert parcel["status"] == "LABEL_CREATED" and parcel["reference"] == f"RETURN-{ORDER}"
                scan = httpx.post(f"{sandbox.urls['carrier']}/returns/{tracking}/scan",
                                  headers={"Authorization": f"Bearer {sandbox.api_key}"})
                assert scan.json()["status"] == "IN_TRANSIT"

                async def refunded():
                    case = (await http.get(f"/tickets/{case_id}", headers=sam)).json()
                    return case if case["status"] == "closed" else None

                case = await eventually(refunded, timeout=60)
    assert case["resolution"] == "refunded" and case["case_type"] == "return-request"
    [refund] = case["context"]["refunds"]
    assert Decimal(refund["amount"]) == Decimal("90.00")
    assert erp.get_order(ORDER).refunded_total == refunded_before + Decimal("90.00")  # once, not twice
    kinds = [e["kind"] for e in case["timeline"]]
    assert kinds.index("label_created") < kinds.index("parcel_scanned") < kinds.index("refund_created")
    json.dumps(case)  # the whole case reads back as JSON
    erp.close()
