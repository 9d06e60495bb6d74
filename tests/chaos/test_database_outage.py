"""The database away for 30 s while customers keep writing in: the API answers 503 with
Retry-After, clients that retry get their ticket once, and every ticket accepted before,
during or after the outage is in the read model once it is back."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from sqlmodel import func, select

from api.auth import create_token
from api.main import create_app
from harness import staff_ticket_body
from migrations import upgrade
from models.auth import Role
from models.db import Database
from models.task import Task
from models.ticket import Ticket
from settings import Settings
from worker import build_worker

OUTAGE_SECONDS = 30
CLIENTS = 4


class Partition:
    """A TCP hop between ticketflow and PostgreSQL that can be cut (connections dropped,
    new ones refused) and healed on the same port. It runs on a thread of its own, so
    blocking database calls in the test cannot stall it."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, name="partition", daemon=True).start()

    def _do(self, coro) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def start(self) -> None:
        self._do(self._start())

    def cut(self) -> None:
        self._do(self._cut())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _cut(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()
        await self._server.wait_closed()
        self._server = None

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self._open |= {writer, up_writer}

        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()
            self._open.discard(dst)

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))


def through(url: str, port: int) -> str:
    parts = urlsplit(url)
    user = parts.netloc.rsplit("@", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}@127.0.0.1:{port}"))


@pytest.mark.timeout(300)
async def test_thirty_seconds_without_the_database_lose_no_accepted_ticket(dev_env, postgres_url, task_queue):
    upstream = urlsplit(postgres_url)
    partition = Partition(upstream.hostname or "127.0.0.1", upstream.port or 5432)
    partition.start()
    url = through(postgres_url, partition.port)
    upgrade(url)
    db = Database(url)
    token = db.call(create_token, user="intake", role=Role.admin, department="*")
    headers = {"Authorization": f"Bearer {token}"}
    settings = Settings(database_url=url, task_queue=task_queue, faq_enabled=False)
    app = create_app(settings, db=db, temporal=dev_env.client)

    accepted: dict[str, str] = {}  # ref -> ticket id
    refused: list[httpx.Response] = []
    started = time.monotonic()
    cut_at, heal_at, stop_at = 8.0, 8.0 + OUTAGE_SECONDS, 8.0 + OUTAGE_SECONDS + 6.0

    async def customer(http: httpx.AsyncClient) -> None:
        while time.monotonic() - started < stop_at:
            ref = f"chaos-{uuid.uuid4().hex}"
            while True:  # a client that honours 503 retries the same ref
                r = await http.post("/tickets", json=staff_ticket_body(external_ref=ref), headers=headers)
                if r.status_code in (200, 201):
                    assert accepted.setdefault(ref, r.json()["id"]) == r.json()["id"]
                    break
                assert r.status_code == 503, r.text
                refused.append(r)
                await asyncio.sleep(1.0)
            await asyncio.sleep(0.2)

    async def outage() -> None:
        await asyncio.sleep(cut_at)
        partition.cut()
        await asyncio.sleep(heal_at - cut_at)
        partition.start()

    try:
        with ThreadPoolExecutor(max_workers=settings.activity_threads) as executor:
            async with build_worker(dev_env.client, settings, db, executor):
                async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                                             timeout=30) as http:
                    await asyncio.gather(outage(), *(customer(http) for _ in range(CLIENTS)))
                    assert refused, "the outage was never seen"
                    assert all(r.headers.get("Retry-After") for r in refused)
                    assert all("database" in r.json()["detail"] for r in refused if "detail" in r.json())

                    def landed() -> tuple[int, int]:
                        with db.session() as s:
                            tickets = s.exec(select(func.count()).select_from(Ticket)
                                             .where(Ticket.id.in_(accepted.values()))).one()
                            tasks = s.exec(select(func.count(func.distinct(Task.ticket_id)))
                                           .where(Task.ticket_id.in_(accepted.values()))).one()
                        return tickets, tasks

                    for _ in range(120):  # projections retry with a backoff of up to 30 s
                        if landed() == (len(accepted), len(accepted)):
                            break
                        await asyncio.sleep(1)
                    assert landed() == (len(accepted), len(accepted))
                    with db.session() as s:
                        per_key = s.exec(select(Ticket.intake_key, func.count()).where(
                            Ticket.id.in_(accepted.values())).group_by(Ticket.intake_key)).all()
                    assert all(n == 1 for _, n in per_key) and len(per_key) == len(accepted)
                    print(f"\n{len(accepted)} tickets accepted, {len(refused)} answers 503 during a "
                          f"{OUTAGE_SECONDS} s outage; all in the read model "
                          f"{time.monotonic() - started - heal_at:.1f} s after it ended")
    finally:
        partition.close()
        db.dispose()
