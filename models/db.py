"""Database engine and the bridge that lets async code run short blocking DB work.

The read model is written by sync Temporal activities (on the worker's thread pool) and read
by the async API. Both use the same sync engine and the same query functions in
``models.readmodel``; the API hops to a worker thread for each call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

import anyio
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine
from temporalio import activity

T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(UTC)


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            from pathlib import Path

            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=20)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            # WAL lets the API read while the worker writes; NORMAL is durable with WAL.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    engine = create_engine(url, pool_pre_ping=True, pool_size=20, max_overflow=20)

    @event.listens_for(engine, "handle_error")
    def _discard_unusable_pooled_connection(context):  # noqa: ANN001
        # A pooled connection that fails its checkout ping in a bad state (seen: psycopg
        # reporting a command still ACTIVE, left by a sync activity cancelled mid-COMMIT
        # before Database.call held cancellations back) is thrown away and replaced, not
        # handed to the request.
        if context.is_pre_ping:
            context.is_disconnect = True

    return engine


def _no_cancellation_inside() -> AbstractContextManager[None]:
    """Hold back a Temporal cancellation of a sync activity until the transaction is over.

    Temporal cancels a sync activity (also every running one when its worker shuts down) by
    raising CancelledError asynchronously in the activity's thread, at whatever line it is
    on. Landing inside the driver, it leaves a connection mid-command or mid-transaction:
    one interrupted in COMMIT is handed back to the pool without a reset, and the next
    checkout anywhere fails (psycopg: "can't change 'autocommit' now: connection in
    transaction status ACTIVE"; SQLite keeps the open transaction and its write lock).
    Shielded, the cancellation is raised as soon as the session is closed.
    """
    if activity.in_activity():
        return activity.shield_thread_cancel_exception()
    return contextlib.nullcontext()


class DatabaseUnavailable(RuntimeError):
    """The database could not be reached; callers answer 503 and write nothing."""


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def call(self, fn: Callable[..., T], *args, **kwargs) -> T:
        """Run ``fn(session, ...)`` in one transaction."""
        from sqlalchemy.exc import OperationalError, InterfaceError

        try:
            with _no_cancellation_inside(), self.session() as session:
                result = fn(session, *args, **kwargs)
                session.commit()
                return result
        except (OperationalError, InterfaceError) as exc:
            raise DatabaseUnavailable(str(exc.orig) if getattr(exc, "orig", None) else str(exc)) from exc

    async def run(self, fn: Callable[..., T], *args, **kwargs) -> T:
        return await anyio.to_thread.run_sync(partial(self.call, fn, *args, **kwargs))

    def dispose(self) -> None:
        self.engine.dispose()
