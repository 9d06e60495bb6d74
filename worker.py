"""Composition root of a worker: Settings -> clients -> activity objects -> Worker.

Run many of these against one Temporal cluster to scale out; each polls the same task queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.archive import ArchiveActivities
from activities.notifications import NotificationActivities
from activities.readmodel import ReadModelActivities
from activities.routing import RoutingActivities
from activities.systems import build_system_activities
from encryption import data_converter
from policies import Authorizer
from models.db import Database
from settings import Settings
from models.housekeeping import HousekeepingPolicy
from workflows import registry
from workflows.housekeeping import HousekeepingWorkflow, ensure_housekeeping_schedule

log = logging.getLogger("ticketflow.worker")

def workflows() -> list[type]:
    """Every registered case type's workflow (workflows/registry.py), and the housekeeping one."""
    return [*registry.workflows(), HousekeepingWorkflow]


WORKFLOWS = workflows()
# Our own deterministic modules, shared with the sandbox instead of imported afresh for every
# workflow run the worker caches (the SDK's advice for models and helpers). Measured on the
# throughput benchmark: 22 ms less worker CPU and 40 MB less memory per 230 open tickets.
# The tests in tests/workflows run the same workflows under the SDK's default sandbox,
# which still fails on a non-deterministic call in this code.
SHARED_MODULES = ("workflows", "sla", "models")


def workflow_runner(*extra_modules: str) -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*SHARED_MODULES, *extra_modules))


async def connect(settings: Settings, address: str | None = None, *, runtime: Runtime | None = None) -> Client:
    return await Client.connect(
        address or settings.temporal_address or f"127.0.0.1:{settings.temporal_port}",
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),  # encrypts what Temporal stores
        runtime=runtime,
    )


def metrics_runtime(address: str | None) -> Runtime | None:
    """A Temporal runtime that serves Prometheus metrics at ``address`` (host:port): the
    SDK's own (workflow and activity task latencies, poller counts, cache) and what cases
    and activities count (``workflows/steps/metrics.py``, connector calls). None: no
    metrics, the SDK's default runtime."""
    if not address:
        return None
    try:
        return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(
            bind_address=address, counters_total_suffix=True, durations_as_seconds=True)))
    except ValueError as exc:  # the address is taken, or cannot be bound here
        raise MetricsAddressError(
            f"cannot serve the worker's metrics at {address}: {exc}; set TICKETFLOW_WORKER_METRICS_ADDRESS to a free "
            "host:port") from exc


class MetricsAddressError(RuntimeError):
    """The worker's metrics address cannot be served."""


class TicketWorker:
    """The ticket task queue's worker and the clients its activities hold."""

    def __init__(self, client: Client, settings: Settings, db: Database, executor: ThreadPoolExecutor) -> None:
        # The policy as the database holds it, reloaded when it changes: the refund activity
        # asks it again whatever the workflow says.
        self.systems = build_system_activities(settings, authorizer=Authorizer.from_database(db))
        readmodel = ReadModelActivities(db)
        notifications = NotificationActivities(self.systems)
        routing = RoutingActivities(db, client)
        archive = ArchiveActivities(client, settings)
        self.worker = Worker(
            client,
            task_queue=settings.task_queue,
            workflows=workflows(),
            workflow_runner=workflow_runner(),
            activities=[
                readmodel.project_ticket, readmodel.project_ticket_changes, readmodel.project_task, readmodel.prune_change_feed,
                notifications.deliver_reply,
                *self.systems.activities(), routing.route_task, routing.offer_queued, archive.archive_closed_tickets,
            ],
            activity_executor=executor,
            max_concurrent_activities=settings.activity_threads,
        )

    async def __aenter__(self) -> "TicketWorker":
        await self.worker.__aenter__()
        return self

    async def __aexit__(self, *exc) -> None:  # noqa: ANN002
        try:
            await self.worker.__aexit__(*exc)
        finally:
            self.systems.close()

    async def run(self) -> None:
        try:
            await self.worker.run()
        finally:
            self.systems.close()


def build_worker(client: Client, settings: Settings, db: Database, executor: ThreadPoolExecutor) -> TicketWorker:
    return TicketWorker(client, settings, db, executor)


async def run_worker(
    settings: Settings, client: Client | None = None, stop: asyncio.Event | None = None, *, faq: bool = False
) -> None:
    """Poll the ticket task queue (and with `faq`, the FAQ bot's queue too, which loads the
    embedding model in this process) until `stop` is set, or forever."""
    client = client or await connect(settings, runtime=metrics_runtime(settings.worker_metrics_address))
    db = Database(settings.effective_database_url)
    stop = stop or asyncio.Event()
    with ThreadPoolExecutor(max_workers=settings.activity_threads, thread_name_prefix="activity") as executor:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(build_worker(client, settings, db, executor))
            log.info("worker polling task queue %s", settings.task_queue)
            await ensure_housekeeping_schedule(
                client, settings.task_queue, HousekeepingPolicy(change_feed_retention=settings.change_feed_retention,
                                                     archive_closed_tickets=settings.archive_closed_tickets,
                                                     archive_lookback=settings.archive_lookback))
            if faq:
                from activities.faq import build_faq_worker

                await stack.enter_async_context(build_faq_worker(client, settings, db, executor))
            await stop.wait()
    await db.aclose()


if __name__ == "__main__":
    from settings import get_settings

    logging.basicConfig(level=logging.INFO)
    asyncio.run(run_worker(get_settings()))  # ticket queue only; `ticketflow worker --faq` adds the bot
