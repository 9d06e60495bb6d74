"""Database engines and the bridge that lets async code run the read model's functions.

The read model is written by sync Temporal activities (on the worker's thread pool) and read
by the async API. Both run the same query functions in ``models.readmodel``, which take a
sync Session:
- sync callers use `Database.call` on the sync engine;
- async callers use `Database.run`. On PostgreSQL it runs the function on the event loop
  itself, on an asyncio driver (SQLAlchemy's `run_sync`): a worker thread per call would
  fight the event loop for the GIL and wait up to the interpreter's 5 ms switch interval at
  every network read, which made the inbox collapse at about 100 requests/s. On SQLite the
  call is a local file read and goes to a worker thread.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

import asyncio
import logging
import threading

import anyio
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlmodel import Session, create_engine
from temporalio import activity

T = TypeVar("T")
log = logging.getLogger("ticketflow.db")


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
    _discard_connections_failing_their_ping(engine)
    return engine


def make_async_engine(url: str) -> AsyncEngine:
    """The same database through psycopg's asyncio connections (PostgreSQL only)."""
    engine = create_async_engine(url, pool_pre_ping=True, pool_size=20, max_overflow=20)
    _discard_connections_failing_their_ping(engine.sync_engine)
    return engine


def _discard_connections_failing_their_ping(engine: Engine) -> None:
    @event.listens_for(engine, "handle_error")
    def _discard_unusable_pooled_connection(context):  # noqa: ANN001
        # A pooled connection that fails its checkout ping in a bad state (seen: psycopg
        # reporting a command still ACTIVE, left by a sync activity cancelled mid-COMMIT
        # before Database.call held cancellations back) is thrown away and replaced, not
        # handed to the request.
        if context.is_pre_ping:
            context.is_disconnect = True


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
        self.on_event_loop = self.engine.dialect.name == "postgresql"
        # The asyncio engine of the event loop that uses this Database (one loop per process
        # in the API and the worker): its connections belong to the loop that made them.
        self._async: tuple[asyncio.AbstractEventLoop, AsyncEngine] | None = None
        self._async_lock = threading.Lock()

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def call(self, fn: Callable[..., T], *args, **kwargs) -> T:
        """Run ``fn(session, ...)`` in one transaction."""
        try:
            with _no_cancellation_inside(), self.session() as session:
                result = fn(session, *args, **kwargs)
                session.commit()
                return result
        except (OperationalError, InterfaceError, PoolTimeout) as exc:
            raise _unavailable(exc) from exc

    async def run(self, fn: Callable[..., T], *args, **kwargs) -> T:
        """`call` for async code. A cancelled caller does not cut the transaction short: it
        finishes (or rolls back) on its own, so no connection goes back to the pool mid-command."""
        if not self.on_event_loop:
            return await anyio.to_thread.run_sync(partial(self.call, fn, *args, **kwargs))
        work = asyncio.ensure_future(self._run_on_loop(fn, args, kwargs))
        work.add_done_callback(_retrieve_exception)
        return await asyncio.shield(work)

    async def _run_on_loop(self, fn: Callable[..., T], args: tuple, kwargs: dict) -> T:
        try:
            async with AsyncSession(self._async_engine(), expire_on_commit=False,
                                    sync_session_class=Session) as session:
                result = await session.run_sync(lambda sync_session: fn(sync_session, *args, **kwargs))
                await session.commit()
                return result
        except (OperationalError, InterfaceError, PoolTimeout) as exc:
            raise _unavailable(exc) from exc

    def _async_engine(self) -> AsyncEngine:
        loop = asyncio.get_running_loop()
        with self._async_lock:
            current = self._async
            if current is None or current[0] is not loop:
                if current is not None:
                    log.warning("database used from a second event loop: a new connection pool for it")
                current = self._async = (loop, make_async_engine(self.url))
        return current[1]

    async def aclose(self) -> None:
        """`dispose` from async code: also closes the asyncio engine's connections."""
        if self._async is not None and self._async[0] is asyncio.get_running_loop():
            await self._async[1].dispose()
        self._async = None
        self.engine.dispose()

    def dispose(self) -> None:
        """Close the pooled connections (from async code, prefer `aclose`: this one leaves
        the asyncio engine's connections to the garbage collector)."""
        self._async = None
        self.engine.dispose()


def _unavailable(exc: Exception) -> DatabaseUnavailable:
    return DatabaseUnavailable(str(exc.orig) if getattr(exc, "orig", None) else str(exc))


def _retrieve_exception(task: asyncio.Task) -> None:
    # The caller may have gone (cancelled): then nobody else sees what went wrong.
    if not task.cancelled() and task.exception() is not None:
        log.debug("database work ended with %r", task.exception())
