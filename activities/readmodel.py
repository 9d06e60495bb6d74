"""Projection of workflow state into the read model the API lists from."""

from __future__ import annotations

from temporalio import activity

from models import readmodel
from models.db import Database
from models.task import TaskSnapshot
from models.ticket import TicketSnapshot


class ReadModelActivities:
    def __init__(self, db: Database) -> None:
        self.db = db

    @activity.defn(name="project_ticket")
    def project_ticket(self, snap: TicketSnapshot) -> None:
        # DatabaseUnavailable is an ordinary exception: the RetryPolicy keeps retrying.
        self.db.call(readmodel.upsert_ticket, snap)

    @activity.defn(name="project_task")
    def project_task(self, snap: TaskSnapshot) -> None:
        self.db.call(readmodel.upsert_task, snap)
