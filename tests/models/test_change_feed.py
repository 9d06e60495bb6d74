"""Every projected change lands in the change feed, on every backend."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlmodel import func, select

from models import readmodel
from models.db import Database
from models.events import ChangeEvent
from models.task import TaskSnapshot


def test_a_new_task_and_its_update_each_write_one_change_event(db: Database):
    task_id = f"feed-{uuid.uuid4().hex}"
    snap = TaskSnapshot(task_id=task_id, ticket_id="t", workflow_id="w", queue="q", priority="normal",
                        created_at=datetime.now(UTC), revision=1)
    count = lambda: db.call(lambda s: s.exec(  # noqa: E731
        select(func.count()).select_from(ChangeEvent).where(ChangeEvent.task_id == task_id)).one())
    assert db.call(readmodel.upsert_task, snap) is True
    assert count() == 1
    assert db.call(readmodel.upsert_task, snap) is False  # a replayed projection changes nothing
    assert count() == 1
    assert db.call(readmodel.upsert_task, snap.model_copy(update={"revision": 2})) is True
    assert count() == 2
