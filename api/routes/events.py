"""Live changes of tickets and tasks as Server-Sent Events.

One tailer per API process reads the change feed (the outbox table) a few times a second
and fans each new row out to the open streams that may see it, so a hundred open consoles
cost one indexed query per poll, not a hundred. The tailer runs only while someone listens.

Every event carries its feed id as the SSE id: a client that reconnects with
``Last-Event-ID`` (browsers do it by themselves) or ``?after=`` first gets what it missed,
then the live stream, in id order and without repeats.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse

from api.deps import FORBIDDEN, AuthorizerDep, CaseTypeFilter, CurrentUser, answers, forbidden, require_reach
from models import readmodel
from models.db import Database, DatabaseUnavailable, utcnow
from models.events import ChangeEvent, ChangeEventPublic

log = logging.getLogger("ticketflow.api.events")
router = APIRouter(tags=["events"])

POLL_SECONDS = 0.25
HEARTBEAT_SECONDS = 15.0
BATCH = 500
# PostgreSQL hands out ids when a row is inserted, not when it commits, so id 41 can become
# visible after 42. A hole in the ids holds delivery back this long for the late row;
# after that it is taken to be a rolled-back insert and passed over.
GAP_GRACE_SECONDS = 2.0
# Events buffered for a stream that does not keep up; past it the stream ends and the
# client resumes from its last id.
STREAM_BUFFER = 10_000


def frame(event: ChangeEvent) -> str:
    data = ChangeEventPublic.model_validate(event.model_dump()).model_dump_json()
    return f"id: {event.id}\nevent: {event.kind}\ndata: {data}\n\n"


@dataclass(eq=False)
class Subscription:
    """One open stream: what it may see, and the events waiting to be written to it."""

    queues: frozenset[str] | None  # None: every queue
    customer_id: str | None  # set: only this customer's ticket events
    case_type: str | None = None  # set: only events of cases of this type
    start: int = 0  # the feed had delivered up to this id when the stream joined
    inbox: asyncio.Queue[tuple[int, str]] = field(default_factory=lambda: asyncio.Queue(STREAM_BUFFER))
    overflowed: bool = False
    ended: bool = False  # the API process is stopping

    def wants(self, event: ChangeEvent) -> bool:
        if self.case_type is not None and event.case_type != self.case_type:
            return False
        if self.customer_id is not None:
            return event.kind == "ticket" and event.customer_id == self.customer_id
        return self.queues is None or event.queue in self.queues

    def push(self, item: tuple[int, str]) -> None:
        try:
            self.inbox.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True

    def end(self) -> None:
        self.ended = True
        self.push((0, ""))  # wakes the stream; a full inbox wakes it anyway


class ChangeFeed:
    """The shared tailer of one API process."""

    def __init__(self, db: Database, poll_seconds: float = POLL_SECONDS) -> None:
        self.db = db
        self.poll_seconds = poll_seconds
        self.position = 0  # highest id delivered to the subscribers
        self.subscribers: set[Subscription] = set()
        self.polls = 0
        self._task: asyncio.Task | None = None
        self._lock = asyncio.Lock()
        self._gap: tuple[int, float] | None = None  # (first missing id, when first seen)
        self.closed = False
        _feeds.add(self)

    def close(self) -> None:
        """End every open stream: the process is stopping, and a graceful stop waits for
        open responses. Clients reconnect (to another process) and resume from their last id."""
        self.closed = True
        for sub in list(self.subscribers):
            sub.end()

    async def subscribe(self, queues: frozenset[str] | None, customer_id: str | None,
                        case_type: str | None = None) -> Subscription:
        async with self._lock:
            if self._task is None or self._task.done():
                # Start behind the newest events: on PostgreSQL a lower id can still be
                # committing, and the gap logic only waits for holes after the start.
                # Streams that join now may get a few changes from just before they did.
                self.position = await self.db.run(
                    readmodel.last_change_id, recorded_before=utcnow() - timedelta(seconds=GAP_GRACE_SECONDS))
                self._gap = None
                self._task = asyncio.create_task(self._tail(), name="change-feed")
            sub = Subscription(queues=queues, customer_id=customer_id, case_type=case_type, start=self.position)
            self.subscribers.add(sub)
            if self.closed:
                sub.end()
            return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscribers.discard(sub)

    async def _tail(self) -> None:
        while self.subscribers:
            try:
                rows = await self.db.run(readmodel.changes_after, self.position, limit=BATCH)
            except Exception as exc:  # noqa: BLE001 - the database comes back; the streams wait
                log.warning("change feed cannot read the database, retrying: %s", exc)
                await asyncio.sleep(1.0)
                continue
            self.polls += 1
            if self._deliver(rows) < BATCH:
                await asyncio.sleep(self.poll_seconds)

    def _deliver(self, rows: list[ChangeEvent]) -> int:
        """Fan rows out in id order; stop at a hole younger than the grace period. No await
        in here: a stream joining sees `position` and the deliveries agree."""
        delivered = 0
        now = time.monotonic()
        for row in rows:
            assert row.id is not None
            missing = self.position + 1
            if row.id != missing:
                if self._gap is None or self._gap[0] != missing:
                    self._gap = (missing, now)
                if now - self._gap[1] < GAP_GRACE_SECONDS:
                    break
            self._gap = None
            text = None
            for sub in self.subscribers:
                if sub.wants(row):
                    text = text or frame(row)
                    sub.push((row.id, text))
            self.position = row.id
            delivered += 1
        return delivered


_feeds: weakref.WeakSet[ChangeFeed] = weakref.WeakSet()


def end_streams() -> None:
    """End the open event streams of this process (it is stopping)."""
    for feed in list(_feeds):
        feed.close()


def change_feed(request: Request) -> ChangeFeed:
    state = request.app.state
    feed = getattr(state, "change_feed", None)
    if feed is None:
        feed = state.change_feed = ChangeFeed(state.db)
    return feed


def _resume_point(after: int | None, last_event_id: str | None) -> int | None:
    if last_event_id is not None:
        try:
            value = int(last_event_id)
        except ValueError:
            value = -1
        if value < 0:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{
                "loc": ["header", "last-event-id"], "type": "value_error",
                "msg": "Last-Event-ID must be the id of an event this stream sent (a whole number)"}])
        return value
    return after


async def _events(feed: ChangeFeed, queues: frozenset[str] | None, customer_id: str | None,
                  after: int | None, case_type: str | None = None) -> AsyncIterator[str]:
    # Joining inside the stream: its `finally` then runs whenever the client goes away. The
    # 200 is on its way by then, so a database that fails here ends the stream instead, and
    # the client reconnects (`retry`) and resumes from its last id.
    try:
        sub = await feed.subscribe(queues, customer_id, case_type)
    except DatabaseUnavailable as exc:
        log.warning("event stream not started, the database is unreachable: %s", exc)
        yield "retry: 5000\n: the database is unreachable; reconnect shortly\n\n"
        return
    sent = sub.start if after is None else after
    try:
        yield f"retry: 2000\n: joined at {sub.start}\n\n"
        # What the client missed: everything up to where the live feed took over.
        while sent < sub.start:
            try:
                rows = await feed.db.run(
                    readmodel.changes_after, sent, limit=BATCH, upto=sub.start,
                    queues=sorted(queues) if queues is not None and customer_id is None else None,
                    customer_id=customer_id, case_type=case_type,
                )
            except DatabaseUnavailable as exc:
                log.warning("event stream ended, the database is unreachable: %s", exc)
                return
            if not rows:
                break
            for row in rows:
                yield frame(row)
            sent = rows[-1].id or sent
        sent = max(sent, sub.start)
        while not sub.ended and not (sub.overflowed and sub.inbox.empty()):
            try:
                event_id, text = await asyncio.wait_for(sub.inbox.get(), timeout=HEARTBEAT_SECONDS)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if event_id > sent:
                sent = event_id
                yield text
        if sub.overflowed:
            log.info("an event stream fell %d events behind and was closed; its client resumes", STREAM_BUFFER)
    finally:
        feed.unsubscribe(sub)


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}},
                     "description": "Server-Sent Events: `id` is the feed id, `event` is `ticket` or `task`, "
                                    "`data` a ChangeEvent as JSON. A comment line every 15 s keeps it open."},
               **answers(FORBIDDEN)},
    summary="Live ticket and task changes the caller may see (Server-Sent Events)",
)
async def events(
    request: Request, user: CurrentUser, authorizer: AuthorizerDep, case_type: CaseTypeFilter,
    after: Annotated[int | None, Query(ge=0, description="Resume after this event id")] = None,
    queue: Annotated[str | None, Query(max_length=50, description="Only this queue's changes")] = None,
    last_event_id: Annotated[str | None, Header(max_length=20, description="Sent by browsers on reconnect; "
                                                                           "wins over `after`")] = None,
) -> StreamingResponse:
    reach = require_reach(authorizer, user, "read", "event")
    resume = _resume_point(after, last_event_id)
    customer_id: str | None = None
    queues: frozenset[str] | None = None
    if reach.everything:
        queues = frozenset({queue}) if queue is not None else None
    elif reach.departments:
        if queue is not None and queue not in reach.departments:
            raise forbidden(user, "read", "event", queue, why="follow the queues of your departments: "
                                                              + ", ".join(sorted(reach.departments)))
        queues = frozenset({queue}) if queue is not None else reach.departments
    else:  # only their own tickets (customers)
        customer_id = user.name
    return StreamingResponse(
        _events(change_feed(request), queues, customer_id, resume, case_type), media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
