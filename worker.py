"""Composition root of a worker: Settings -> clients -> activity objects -> Worker.

Run many of these against one Temporal cluster to scale out; each polls the same task queue.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from activities.notifications import NotificationActivities
from activities.readmodel import ReadModelActivities
from models.db import Database
from settings import Settings
from workflows.ticket import TicketWorkflow

log = logging.getLogger("ticketflow.worker")

WORKFLOWS = [TicketWorkflow]


async def connect(settings: Settings, address: str | None = None) -> Client:
    return await Client.connect(
        address or settings.temporal_address or f"127.0.0.1:{settings.temporal_port}",
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
    )


def build_activities(settings: Settings, db: Database) -> list:
    readmodel = ReadModelActivities(db)
    notifications = NotificationActivities()
    return [readmodel.project_ticket, readmodel.project_task, notifications.deliver_reply]


def build_worker(client: Client, settings: Settings, db: Database, executor: ThreadPoolExecutor) -> Worker:
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        activities=build_activities(settings, db),
        activity_executor=executor,
        max_concurrent_activities=settings.activity_threads,
    )


async def run_worker(settings: Settings, client: Client | None = None, stop: asyncio.Event | None = None) -> None:
    client = client or await connect(settings)
    db = Database(settings.effective_database_url)
    with ThreadPoolExecutor(max_workers=settings.activity_threads, thread_name_prefix="activity") as executor:
        worker = build_worker(client, settings, db, executor)
        log.info("worker polling task queue %s", settings.task_queue)
        if stop is None:
            await worker.run()
        else:
            async with worker:
                await stop.wait()
    db.dispose()


if __name__ == "__main__":
    from settings import get_settings

    logging.basicConfig(level=logging.INFO)
    asyncio.run(run_worker(get_settings()))
