"""Every projected change lands in the change feed, on every backend."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlmodel import func, select

from migrations import upgrade
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


def _events_of(db: Database, marker: str) -> list[datetime]:
    return db.call(lambda s: [e.at for e in s.exec(select(ChangeEvent).where(ChangeEvent.ticket_id == marker))])


def test_pruning_deletes_only_events_older_than_the_cutoff_oldest_first_in_batches(db: Database):
    marker = f"prune-{uuid.uuid4().hex}"
    start = datetime(2000, 1, 1, tzinfo=UTC)  # older than anything another test writes
    events = [ChangeEvent(at=start + timedelta(minutes=i), kind="task", ticket_id=marker, status="open",
                          revision=1, payload={}) for i in range(7)]
    events.append(ChangeEvent(at=datetime(2001, 6, 1, tzinfo=UTC), kind="task", ticket_id=marker, status="open",
                              revision=2, payload={}))
    db.call(lambda s: s.add_all(events))
    cutoff = datetime(2001, 1, 1, tzinfo=UTC)

    assert db.call(readmodel.prune_changes, cutoff, limit=3) == 3
    left = sorted(_events_of(db, marker))
    assert len(left) == 5 and left[0].replace(tzinfo=UTC) == start + timedelta(minutes=3)  # the oldest went
    assert db.call(readmodel.prune_changes, cutoff, limit=3) == 3
    assert db.call(readmodel.prune_changes, cutoff, limit=3) == 1
    assert db.call(readmodel.prune_changes, cutoff, limit=3) == 0
    assert [at.replace(tzinfo=UTC) for at in _events_of(db, marker)] == [datetime(2001, 6, 1, tzinfo=UTC)]


def test_the_newest_event_always_stays_so_ids_never_go_back(tmp_path):
    """SQLite ids are rowids: an emptied table would number new events from 1 again, below
    the Last-Event-ID of every console that reconnects."""
    private = Database(f"sqlite:///{tmp_path / 'feed.db'}")
    upgrade(private.url)
    at = datetime(2000, 1, 1, tzinfo=UTC)
    event = lambda n: ChangeEvent(at=at, kind="task", ticket_id="t", status="open", revision=n, payload={})  # noqa: E731
    try:
        private.call(lambda s: s.add_all([event(1), event(2), event(3)]))
        assert private.call(readmodel.prune_changes, datetime(2100, 1, 1, tzinfo=UTC), limit=10) == 2
        private.call(lambda s: s.add(event(4)))
        assert private.call(lambda s: [e.id for e in s.exec(select(ChangeEvent).order_by(ChangeEvent.id))]) == [3, 4]
    finally:
        private.dispose()
