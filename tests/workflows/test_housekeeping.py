"""The hourly housekeeping schedule on the real dev server: workers create it once and keep
it in line with their settings, and a run trims the change feed to the retention window."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlmodel import select
from temporalio.worker import Worker

from activities.readmodel import ReadModelActivities
from harness import eventually
from models.db import Database
from models.events import ChangeEvent
from models.housekeeping import HousekeepingPolicy, HousekeepingReport
from workflows.housekeeping import EVERY, HousekeepingWorkflow, ensure_housekeeping_schedule, schedule_id


async def test_the_schedule_is_made_once_follows_the_settings_and_trims_the_change_feed(dev_env, db: Database,
                                                                                      task_queue: str):
    client = dev_env.client
    marker = f"housekeeping-{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    db.call(lambda s: s.add_all([
        ChangeEvent(at=now - timedelta(days=days), kind="ticket", ticket_id=marker, status="open", revision=days,
                    payload={})
        for days in (30, 12, 1)
    ]))

    await ensure_housekeeping_schedule(client, task_queue, HousekeepingPolicy(change_feed_retention=timedelta(days=7)))
    handle = client.get_schedule_handle(schedule_id(task_queue))
    try:
        await handle.pause(note="database maintenance")
        # another worker starting with other settings: the same schedule, brought up to date,
        # and the operator's pause left alone
        await ensure_housekeeping_schedule(client, task_queue,
                                           HousekeepingPolicy(change_feed_retention=timedelta(days=10)))
        described = await handle.describe()
        assert [spec.every for spec in described.schedule.spec.intervals] == [EVERY]
        (policy,) = await client.data_converter.decode(described.schedule.action.args, [HousekeepingPolicy])
        assert policy.change_feed_retention == timedelta(days=10)
        assert described.schedule.state.paused and described.schedule.state.note == "database maintenance"
        await handle.unpause()

        with ThreadPoolExecutor(2) as executor:
            async with Worker(client, task_queue=task_queue, workflows=[HousekeepingWorkflow],
                              activities=[ReadModelActivities(db).prune_change_feed], activity_executor=executor):
                await handle.trigger()

                async def started():
                    return (await handle.describe()).info.recent_actions

                (action,) = await eventually(started, timeout=20)
                run = client.get_workflow_handle(action.action.workflow_id, run_id=action.action.first_execution_run_id,
                                                 result_type=HousekeepingReport)
                report: HousekeepingReport = await run.result()

        assert report.change_events_pruned >= 2
        assert abs(report.before - (now - timedelta(days=10))) < timedelta(minutes=5)
        left = db.call(lambda s: [e.revision for e in s.exec(select(ChangeEvent).where(ChangeEvent.ticket_id == marker))])
        assert left == [1]  # 30 and 12 days old went, yesterday's stays
    finally:
        await handle.delete()
