"""Projection of workflow state into the read model the API lists from, and its upkeep.

A projection also hands what it shows of the FAQ bot (a customer's verdict on its answer, an
agent's resolution after its suggestions) to the bot's learning loop (faq/learning.py), in
the same transaction: a retried projection writes neither twice, and the workflow's
commands stay as they were.
"""

from __future__ import annotations

from sqlmodel import Session
from temporalio import activity

from faq import learning
from models import readmodel
from models.db import Database
from models.housekeeping import PruneChangeFeed
from models.task import TaskSnapshot
from models.ticket import TicketChanges, TicketSnapshot


class ReadModelActivities:
    def __init__(self, db: Database) -> None:
        self.db = db

    @activity.defn(name="project_ticket")
    def project_ticket(self, snap: TicketSnapshot) -> None:
        """The whole snapshot, as tickets opened before changes were projected send it."""
        # DatabaseUnavailable is an ordinary exception: the RetryPolicy keeps retrying.
        self.db.call(_ticket, snap)

    @activity.defn(name="project_ticket_changes")
    def project_ticket_changes(self, changes: TicketChanges) -> None:
        self.db.call(_ticket_changes, changes)

    @activity.defn(name="project_task")
    def project_task(self, snap: TaskSnapshot) -> None:
        self.db.call(_task, snap)

    @activity.defn(name="prune_change_feed")
    def prune_change_feed(self, req: PruneChangeFeed) -> int:
        """Delete old change events in batches, heartbeating between them so a worker that
        dies mid-way hands the rest to another attempt. Deleting is idempotent."""
        total = 0
        while True:
            pruned = self.db.call(readmodel.prune_changes, req.before, limit=req.batch)
            total += pruned
            activity.heartbeat(total)
            if pruned < req.batch:
                return total


def _ticket(session: Session, snap: TicketSnapshot) -> None:
    if readmodel.upsert_ticket(session, snap):
        learning.capture_verdicts(session, snap.ticket_id, snap.timeline)


def _ticket_changes(session: Session, changes: TicketChanges) -> None:
    if readmodel.apply_ticket_changes(session, changes):
        learning.capture_verdicts(session, changes.ticket.ticket_id, changes.ticket.timeline)


def _task(session: Session, snap: TaskSnapshot) -> None:
    if readmodel.upsert_task(session, snap):
        learning.capture_resolution(session, snap)
