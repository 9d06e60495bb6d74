"""Periodic upkeep of the read model, started by a Temporal Schedule rather than a cron job:
each run is a workflow with its own history, visible next to the tickets.

It trims the change feed (the outbox behind GET /events) to the retention window, and copies
closed tickets' histories into the archive store before Temporal's retention drops them."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from models.housekeeping import ArchiveClosed, ArchiveReport, HousekeepingPolicy, HousekeepingReport, PruneChangeFeed

EVERY = timedelta(hours=1)
ARCHIVAL = "archive-closed-tickets"  # workflow.patched id: archival came after housekeeping was released


@workflow.defn
class HousekeepingWorkflow:
    @workflow.run
    async def run(self, policy: HousekeepingPolicy) -> HousekeepingReport:
        before = workflow.now() - policy.change_feed_retention
        pruned = await workflow.execute_activity(
            "prune_change_feed", PruneChangeFeed(before=before), result_type=int,
            start_to_close_timeout=timedelta(minutes=30), heartbeat_timeout=timedelta(minutes=2),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=5)),
        )
        report = HousekeepingReport(before=before, change_events_pruned=pruned)
        if policy.archive_closed_tickets and workflow.patched(ARCHIVAL):
            try:
                report.archive = await workflow.execute_activity(
                    "archive_closed_tickets", ArchiveClosed(closed_since=workflow.now() - policy.archive_lookback),
                    result_type=ArchiveReport,
                    start_to_close_timeout=timedelta(minutes=50), heartbeat_timeout=timedelta(minutes=2),
                    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=5), maximum_attempts=5,
                                             non_retryable_error_types=["NotConfigured"]),
                )
            except ActivityError as err:  # the next hour tries again; the report says why
                report.archive_error = str(err.cause or err)
        return report


def schedule_id(task_queue: str) -> str:
    return f"{task_queue}-housekeeping"


async def ensure_housekeeping_schedule(client: Client, task_queue: str, policy: HousekeepingPolicy) -> None:
    """Create the hourly housekeeping schedule, or bring an existing one up to date with this
    deployment's policy. Every worker calls it at start; the first creates it."""
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            HousekeepingWorkflow.run, policy, id=schedule_id(task_queue), task_queue=task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=EVERY)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await client.create_schedule(schedule_id(task_queue), schedule)
    except ScheduleAlreadyRunningError:
        def replace(current: ScheduleUpdateInput) -> ScheduleUpdate:
            schedule.state = current.description.schedule.state  # an operator's pause and note stay
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(schedule_id(task_queue)).update(replace)
