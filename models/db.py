"""Database engine and the bridge that lets async code run short blocking DB work.

The read model is written by sync Temporal activities (on the worker's thread pool) and read
by the async API. Both use the same sync engine and the same query functions in
``models.readmodel``; the API hops to a worker thread for each call.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

import anyio
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

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
        # reporting a command still ACTIVE) is thrown away and replaced, not handed to the
        # request. The cause of that state is still being looked for.
        if context.is_pre_ping:
            context.is_disconnect = True

    return engine


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
            with self.session() as session:
                result = fn(session, *args, **kwargs)
                session.commit()
                return result
        except (OperationalError, InterfaceError) as exc:
            raise DatabaseUnavailable(str(exc.orig) if getattr(exc, "orig", None) else str(exc)) from exc

    async def run(self, fn: Callable[..., T], *args, **kwargs) -> T:
        return await anyio.to_thread.run_sync(partial(self.call, fn, *args, **kwargs))

    def dispose(self) -> None:
        self.engine.dispose()
