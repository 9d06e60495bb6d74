"""Shared fixtures: one Temporal server per session (time-skipping for workflow tests, the
real dev server for API and integration tests), databases on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from cli.embedded import temporal_cli, temporal_test_server
from api.auth import create_token
from migrations import upgrade
from models.auth import Role
from models.db import Database

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Tests build their Temporal clients themselves (pydantic converter, no keys); the tests of
# payload encryption, and of `ticketflow up`, turn it on explicitly.
os.environ.setdefault("TICKETFLOW_PAYLOAD_ENCRYPTION", "false")
POSTGRES_URL = os.environ.get("TICKETFLOW_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=temporal_test_server()
    )
    yield env
    await env.shutdown()


@pytest.fixture
async def fresh_time_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of the test's own: skipped time is global to a server, so a
    workflow left waiting by one test must not see (or stall) another test's clock."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=temporal_test_server()
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_env(tmp_path_factory) -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=temporal_cli(),
        dev_server_extra_args=["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"],
    )
    yield env
    await env.shutdown()


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4()}"


def _postgres_available() -> str | None:
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(POSTGRES_URL)
        with engine.connect():
            pass
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        return str(exc).splitlines()[0]


def _fresh_postgres_schema() -> str:
    """A private schema per test session so runs never see each other's rows."""
    import sqlalchemy

    schema = f"tf_test_{uuid.uuid4().hex[:10]}"
    engine = sqlalchemy.create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    engine.dispose()
    sep = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"


def _drop_postgres_schema(url: str) -> None:
    import sqlalchemy

    schema = url.rsplit("%3D", 1)[1]
    engine = sqlalchemy.create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    engine.dispose()


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path_factory) -> Iterator[str]:
    """Every test that takes this fixture runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'ticketflow.db'}"
        return
    url = _postgres_or_skip()
    yield url
    _drop_postgres_schema(url)


def _postgres_or_skip() -> str:
    """A fresh schema on the test server; fails under CI and skips elsewhere when there is
    no server."""
    problem = _postgres_available()
    if problem:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required under CI but unreachable at {POSTGRES_URL}: {problem}")
        pytest.skip(
            f"PostgreSQL not reachable at {POSTGRES_URL} ({problem}). Start a server or set "
            "TICKETFLOW_TEST_POSTGRES_URL to run these tests on PostgreSQL too."
        )
    return _fresh_postgres_schema()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A private schema on the PostgreSQL test server, for tests that only make sense there."""
    url = _postgres_or_skip()
    yield url
    _drop_postgres_schema(url)


@pytest.fixture(scope="session")
def db(database_url: str) -> Iterator[Database]:
    upgrade(database_url)
    database = Database(database_url)
    yield database
    database.dispose()


USERS = [
    ("admin", Role.admin, "*"),
    ("sam", Role.supervisor, "*"),
    ("ana", Role.agent, "logistics"),
    ("bob", Role.agent, "logistics"),
    ("gil", Role.agent, "billing"),
    ("dee", Role.agent, ["logistics", "billing"]),
    ("aud", Role.auditor, "*"),
    ("cust-1", Role.customer, "*"),
    ("cust-2", Role.customer, "*"),
]


@pytest.fixture(scope="session")
def tokens(db: Database) -> dict[str, str]:
    return {user: db.call(create_token, user=user, role=role, department=dept) for user, role, dept in USERS}


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
