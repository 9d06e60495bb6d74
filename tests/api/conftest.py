"""An in-process API wired to the real Temporal dev server, a worker running the real
activities, and a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from api.main import create_app
from harness import Stack, serve
from models.db import Database
from settings import Settings
from worker import build_worker


@pytest.fixture
async def stack(dev_env, db: Database, tokens, task_queue: str) -> AsyncIterator[Stack]:
    # No FAQ worker runs here (the bot has its own tests); an enabled bot would wait for one.
    # Every request checks the policy version: tests grant and act within milliseconds.
    settings = Settings(database_url=db.url, task_queue=task_queue, faq_enabled=False, policy_refresh_seconds=0)
    app = create_app(settings, db=db, temporal=dev_env.client)
    with ThreadPoolExecutor(max_workers=settings.activity_threads) as executor:
        async with build_worker(dev_env.client, settings, db, executor):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://ticketflow.test") as http:
                yield Stack(http, db, settings, dev_env.client, tokens)


@pytest.fixture
async def served(stack) -> AsyncIterator[tuple[httpx.AsyncClient, object]]:
    """The stack's API behind a real HTTP server; yields a client for it and the app."""
    app = create_app(stack.settings, db=stack.db, temporal=stack.client)
    async with serve(app) as http:
        yield http, app
