"""Archival of closed tickets' histories, run by the hourly housekeeping."""

from __future__ import annotations

import logging

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from audit.export import Selection, case_of, fetch_record, selected_workflow_ids
from audit.signing import MissingSigningKey, load_signing_key
from audit.store import ArchiveStore, DirectoryStore
from models.housekeeping import ArchiveClosed, ArchiveReport
from settings import Settings

log = logging.getLogger(__name__)


def archive_store(settings: Settings) -> DirectoryStore:
    return DirectoryStore(settings.archive_dir or settings.data_dir / "archive")


class ArchiveActivities:
    def __init__(self, client: Client, settings: Settings, store: ArchiveStore | None = None) -> None:
        self.client = client
        self.settings = settings
        self.store = store or archive_store(settings)

    @activity.defn(name="archive_closed_tickets")
    async def archive_closed_tickets(self, req: ArchiveClosed) -> ArchiveReport:
        """Copy every closed ticket not yet in the store (at most `req.batch`), signed.
        Idempotent: a retry or the next run skips what is there."""
        try:
            key = load_signing_key(self.settings)
        except MissingSigningKey as exc:
            raise ApplicationError(str(exc), type="NotConfigured", non_retryable=True) from None
        report = ArchiveReport()
        query = "ExecutionStatus != 'Running'"
        if req.closed_since is not None:
            query += f" AND CloseTime >= '{req.closed_since.isoformat()}'"
        for workflow_id in await selected_workflow_ids(self.client, Selection(query=query)):
            found = case_of(workflow_id)
            assert found is not None
            if self.store.has(found[1]):
                report.already += 1
                continue
            if report.archived >= req.batch:
                break
            try:
                described = await self.client.get_workflow_handle(workflow_id).describe()
                if described.close_time is None:
                    continue  # an earlier run closed, the ticket goes on: archived once it closes
                record = await fetch_record(self.client, workflow_id, described.run_id)
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
                report.skipped.append(workflow_id)
                continue
            self.store.put(record, key)
            report.archived += 1
            activity.heartbeat(report.archived)
        if report.archived:
            log.info("archived %d closed tickets", report.archived)
        return report
