"""A worker killed between the ERP's refund and Temporal's record of it: the retry on
another worker must find the first refund, not make a second one."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import BaseModel
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.common import RetryPolicy
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from models.customer360 import Refund
    from models.systems import RefundRequest, SystemFailure
    from sandbox.data import DEMO_CUSTOMER_DELAYED, DEMO_ORDER_DELAYED

# Workflow code, imported like a workflow module imports it (not passed through).
from workflows.context import PERMANENT_ERRORS, CallPolicy, issue_refund


class RefundProbeInput(BaseModel):
    request: RefundRequest
    attempt_seconds: float


class RefundProbeResult(BaseModel):
    refund: Refund | None = None
    failure: SystemFailure | None = None


@workflow.defn
class RefundProbe:
    @workflow.run
    async def run(self, inp: RefundProbeInput) -> RefundProbeResult:
        # REFUND's retries with a short attempt, so the lost attempt is retried in seconds.
        quick = CallPolicy(
            start_to_close=timedelta(seconds=inp.attempt_seconds), schedule_to_close=timedelta(minutes=2),
            retry=RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=1),
                              non_retryable_error_types=PERMANENT_ERRORS),
        )
        result = await issue_refund(inp.request, policy=quick)
        if isinstance(result, SystemFailure):
            return RefundProbeResult(failure=result)
        return RefundProbeResult(refund=result)


async def wait_for_file(path: Path, proc: subprocess.Popen, log: Path, timeout: float = 60) -> str:
    deadline = asyncio.get_running_loop().time() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"crash worker exited with {proc.returncode}:\n{log.read_text()}")
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no refund within {timeout}s:\n{log.read_text()}")
        await asyncio.sleep(0.05)
    return path.read_text()


@pytest.mark.slow
async def test_a_refund_retried_after_the_worker_was_killed_refunds_once(
    dev_env, task_queue, sandbox, refund_policy_path, systems_worker, tmp_path,
):
    ticket = f"TK-{uuid.uuid4().hex[:8]}"
    request = RefundRequest(
        ticket_id=ticket, customer_id=DEMO_CUSTOMER_DELAYED, order_id=DEMO_ORDER_DELAYED, amount=Decimal("25.00"),
        reason="parcel four days late", idempotency_key=f"{ticket}:t1:refund", department="logistics",
        decided_by="ana", decided_by_role="agent", decided_by_department="logistics",
    )
    here = Path(__file__).resolve().parent  # not at import: the workflow sandbox re-imports this module
    repo = here.parents[1]
    marker, log = tmp_path / "refunded.txt", tmp_path / "crash_worker.log"
    env = {
        **os.environ,
        "PYTHONPATH": str(repo),
        "TICKETFLOW_ORDERS_URL": sandbox.urls["erp"],
        "TICKETFLOW_ORDERS_USERNAME": sandbox.erp_username,
        "TICKETFLOW_ORDERS_PASSWORD": sandbox.erp_password,
        "TICKETFLOW_CONNECTOR_TIMEOUT": "2",
    }
    with log.open("w") as out:
        crashing = subprocess.Popen(
            [sys.executable, str(here / "crash_worker.py"),
             "--address", dev_env.client.service_client.config.target_host, "--namespace", dev_env.client.namespace, "--task-queue", task_queue, "--policy", str(refund_policy_path),
             "--marker", str(marker)],
            env=env, cwd=repo, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        async with Worker(dev_env.client, task_queue=task_queue, workflows=[RefundProbe]):
            handle = await dev_env.client.start_workflow(
                RefundProbe.run, RefundProbeInput(request=request, attempt_seconds=3), id=f"refund-{ticket}",
                task_queue=task_queue, execution_timeout=timedelta(minutes=2),
            )
            refunded_id = await wait_for_file(marker, crashing, log)
            crashing.send_signal(signal.SIGKILL)
            crashing.wait(timeout=10)

            systems = await systems_worker([])  # a healthy worker takes over the retry
            result = await asyncio.wait_for(handle.result(), timeout=60)
    finally:
        if crashing.poll() is None:
            crashing.send_signal(signal.SIGKILL)
            crashing.wait(timeout=10)

    assert result.failure is None and result.refund is not None
    assert result.refund.id == refunded_id  # the first refund, found again by its key
    attempts = [e.activity_task_started_event_attributes.attempt
                async for e in handle.fetch_history_events()
                if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED]
    assert attempts == [2]  # the lost first attempt is only recorded with the one that completed
    order = systems.orders.get_order(DEMO_ORDER_DELAYED)
    assert order.refunded_total == Decimal("25.00")  # one refund, not two
