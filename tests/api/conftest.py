"""An in-process API wired to the real Temporal dev server, a worker running the real
activities, and a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from api.main import create_app
from harness import Stack
from models.db import Database
from settings import Settings
from worker import build_worker


@pytest.fixture
async def stack(dev_env, db: Database, tokens, task_queue: str) -> AsyncIterator[Stack]:
    # No FAQ worker runs here (the bot has its own tests); an enabled bot would wait for one.
    settings = Settings(database_url=db.url, task_queue=task_queue, faq_enabled=False)
    app = create_app(settings, db=db, temporal=dev_env.client)
    with ThreadPoolExecutor(max_workers=settings.activity_threads) as executor:
        async with build_worker(dev_env.client, settings, db, executor):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://ticketflow.test") as http:
                yield Stack(http, db, settings, dev_env.client, tokens)
