"""What a worker counts for Prometheus: cases, tasks, SLA warnings and breaches, FAQ decisions
and connector calls, served beside the Temporal SDK's own metrics, and counted once however
often a case is replayed."""

from __future__ import annotations

import dataclasses
import re
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from temporalio import activity
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.systems import SystemActivities
from connectors import errors
from models.faq import FaqDecision, FaqResult, FaqTicketQuery
from models.systems import ShipmentLookup
from models.task import TaskOutcome
from sla.policy import RaisePriority
from tests.conftest import temporal_test_server
from tests.workflows.test_ticket import POLICY, sla_config, ticket_input
from worker import metrics_runtime
from workflow_fakes import FakeReadModel, claim_request, completion, open_task
from workflows.ticket import TicketWorkflow, workflow_id_for


def free_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def scrape(address: str) -> dict[str, float]:
    """Every sample of the worker's metrics page, keyed by name and labels as printed."""
    samples = {}
    for line in httpx.get(f"http://{address}/metrics", timeout=5).text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            samples[key] = float(value)
    return samples


def value(samples: dict[str, float], name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for key, sample in samples.items():
        found = re.fullmatch(r"([a-z_:]+)(?:\{(.*)\})?", key)
        if found is None or found.group(1) != name:
            continue
        have = dict(re.findall(r'([a-z_]+)="([^"]*)"', found.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += sample
    return total


@pytest.fixture
async def metered() -> AsyncIterator[tuple[WorkflowEnvironment, str]]:
    address = free_address()
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=temporal_test_server(),
        runtime=metrics_runtime(address),
    )
    yield env, address
    await env.shutdown()


async def test_a_case_counts_each_thing_once_even_when_every_step_is_replayed(metered, task_queue):
    env, address = metered
    fake = FakeReadModel()

    @activity.defn(name="answer_faq")
    async def answer_faq(query: FaqTicketQuery) -> FaqResult:
        return FaqResult(index_version="v1", decision=FaqDecision.escalate, escalation_reason="not sure")

    policy = POLICY.model_copy(update={"faq_enabled": True, "faq_task_queue": task_queue})
    inp = ticket_input(sla=sla_config(timedelta(hours=1), timedelta(hours=4), [RaisePriority()]), policy=policy)
    # No cache: the worker replays the whole history before every workflow task.
    async with Worker(env.client, task_queue=task_queue, workflows=[TicketWorkflow],
                      activities=[*fake.activities(), answer_faq], max_cached_workflows=0):
        handle = await env.client.start_workflow(TicketWorkflow.run, inp, id=workflow_id_for(inp.ticket_id),
                                                 task_queue=task_queue)
        task = await open_task(handle)
        await env.sleep(timedelta(minutes=65))  # first response: warned at 30 min, breached at 60
        await handle.execute_update(TicketWorkflow.claim_task, claim_request(task_id=task.task_id, agent="ana"))
        await handle.execute_update(TicketWorkflow.complete_task, completion(
            task_id=task.task_id, agent="ana", outcome=TaskOutcome.resolve, reply="It arrives tomorrow."))
        await handle.result()

    samples = scrape(address)
    assert value(samples, "ticketflow_cases_opened_total", case_type="support-ticket", channel="web") == 1
    assert value(samples, "ticketflow_cases_closed_total", case_type="support-ticket", status="resolved") == 1
    assert value(samples, "ticketflow_cases_closed_total", status="closed") == 0  # resolved, then closed: one end
    assert value(samples, "ticketflow_tasks_created_total", queue="logistics", kind="handle_ticket") == 1
    assert value(samples, "ticketflow_tasks_claimed_total", queue="logistics") == 1
    assert value(samples, "ticketflow_tasks_completed_total", queue="logistics", outcome="resolve") == 1
    assert value(samples, "ticketflow_sla_warnings_total", target="first_response", department="logistics") == 1
    assert value(samples, "ticketflow_sla_breaches_total", target="first_response", department="logistics") == 1
    assert value(samples, "ticketflow_sla_breaches_total", target="resolution") == 0
    assert value(samples, "ticketflow_faq_decisions_total", decision="escalate") == 1
    # the SDK's own metrics on the same page
    assert any(key.startswith("temporal_workflow_task_") for key in samples)
    # every worker metric the Grafana dashboard queries is one a worker serves
    # (the API's are checked in tests/api/test_metrics_api.py, the connectors' below)
    exported = {key.split("{")[0] for key in samples}
    cases = {n for n in dashboard_metrics() if not n.startswith(("ticketflow_http_", "ticketflow_connector_"))}
    assert cases - exported == set()


def dashboard_metrics() -> set[str]:
    text = (Path(__file__).resolve().parents[2] / "grafana" / "ticketflow.json").read_text()
    return set(re.findall(r"\b((?:ticketflow|temporal)_[a-z_]+)\b", text)) - {"ticketflow_"}


def test_connector_calls_are_counted_by_system_activity_and_result_with_their_time():
    address = free_address()
    runtime = metrics_runtime(address)
    env = ActivityEnvironment()
    env.metric_meter = runtime.metric_meter
    env.info = dataclasses.replace(env.info, activity_type="track_shipment")

    class Carrier:
        def __init__(self) -> None:
            self.fail = False

        def track_shipment(self, tracking_number: str):
            if self.fail:
                raise errors.Timeout("carrier", "no answer in 10 s")
            from models.customer360 import Shipment

            return Shipment(tracking_number=tracking_number, carrier="Test Express", status="in_transit")

    carrier = Carrier()
    acts = SystemActivities(logistics=carrier)
    env.run(acts.track_shipment, ShipmentLookup(tracking_number="T-1"))
    carrier.fail = True
    with pytest.raises(ApplicationError):
        env.run(acts.track_shipment, ShipmentLookup(tracking_number="T-1"))

    samples = scrape(address)
    labels = {"system": "carrier", "activity_type": "track_shipment"}
    assert value(samples, "ticketflow_connector_calls_total", result="ok", **labels) == 1
    assert value(samples, "ticketflow_connector_calls_total", result="Timeout", **labels) == 1
    assert value(samples, "ticketflow_connector_call_duration_seconds_count", **labels) == 2
    exported = {key.split("{")[0] for key in samples}
    assert {n for n in dashboard_metrics() if n.startswith("ticketflow_connector_")} <= exported


def test_an_address_already_taken_is_a_clear_error():
    from worker import MetricsAddressError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        with pytest.raises(MetricsAddressError, match=f"cannot serve the worker's metrics at {address}.*"
                                                      "TICKETFLOW_WORKER_METRICS_ADDRESS"):
            metrics_runtime(address)
