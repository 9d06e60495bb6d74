"""A sync activity cancelled while it writes (every running one is, when its worker shuts
down): Temporal raises CancelledError in the activity's thread at whatever line it is on.
Its transaction must still end cleanly and its connection go back to the pool idle, or the
next checkout anywhere (an API request of another test) finds it mid-COMMIT."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import event
from temporalio.exceptions import CancelledError
from temporalio.testing import ActivityEnvironment

from activities.readmodel import ReadModelActivities
from harness import eventually
from models import readmodel
from models.db import Database
from models.task import Task, TaskSnapshot


def _idle(dbapi_conn) -> bool:  # noqa: ANN001
    pgconn = getattr(dbapi_conn, "pgconn", None)
    if pgconn is not None:  # psycopg: no command running, no transaction open
        from psycopg.pq import TransactionStatus

        return pgconn.transaction_status == TransactionStatus.IDLE
    return not dbapi_conn.in_transaction  # sqlite3


def test_a_cancellation_during_commit_waits_until_the_connection_is_back_in_the_pool(db: Database):
    private = Database(db.url)  # a connection left mid-transaction must not reach the shared pool
    env = ActivityEnvironment()
    checked_in_idle: list[bool] = []
    event.listen(private.engine, "checkin", lambda dbapi_conn, _rec: checked_in_idle.append(_idle(dbapi_conn)))
    # The worker shuts down just as the projection commits.
    event.listen(private.engine, "commit", lambda _conn: env.cancel())
    task_id = f"cancel-{uuid.uuid4().hex}"
    snap = TaskSnapshot(task_id=task_id, ticket_id="t", workflow_id="w", queue="q", priority="normal",
                        created_at=datetime.now(UTC), revision=1)
    try:
        with pytest.raises(CancelledError):
            env.run(ReadModelActivities(private).project_task, snap)
        assert checked_in_idle == [True]
        assert db.call(lambda s: s.get(Task, task_id)) is not None  # the projection committed whole
    finally:
        private.dispose()


async def test_an_async_caller_cancelled_mid_query_leaves_the_transaction_to_finish(db: Database):
    """`Database.run` serves async code: on PostgreSQL on the event loop itself, on SQLite on
    a worker thread. A caller cancelled mid-query (a request of a stopping server) must not
    cut the transaction short either: it completes, and its connection goes back idle."""
    private = Database(db.url)
    task_id = f"cancel-{uuid.uuid4().hex}"
    snap = TaskSnapshot(task_id=task_id, ticket_id="t", workflow_id="w", queue="q", priority="normal",
                        created_at=datetime.now(UTC), revision=1)
    checked_in_idle: list[bool] = []

    def slow_upsert(session):  # noqa: ANN001, ANN202
        engine = session.get_bind()
        event.listen(engine, "checkin", lambda conn, _rec: checked_in_idle.append(
            _idle(getattr(conn, "driver_connection", conn))))
        if private.on_event_loop:
            session.connection().exec_driver_sql("SELECT pg_sleep(0.3)")
        else:
            time.sleep(0.3)
        return readmodel.upsert_task(session, snap)

    try:
        call = asyncio.ensure_future(private.run(slow_upsert))
        await asyncio.sleep(0.1)  # mid-query
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call

        async def committed():
            return await private.run(lambda s: s.get(Task, task_id)) is not None

        await eventually(committed, timeout=5)
        assert checked_in_idle and all(checked_in_idle)
    finally:
        await private.aclose()
