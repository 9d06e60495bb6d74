"""The FAQ knowledge base: its entries, bulk import and export, the published index, and
asking the bot.

Every change bumps the knowledge base's revision and starts the ``publish_faq_index``
activity on the FAQ task queue, whose workers hold the embedding model: an API process
loads the model only to answer ``POST /faq/ask``. A change waits up to ``wait`` seconds for
its index version (about a second for a few hundred question variants) and otherwise
answers with ``publication.status`` "pending"; the change itself has taken effect either
way, and ``GET /faq/index`` shows when its version is published.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from email.parser import BytesParser
from email.policy import HTTP
from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from temporalio.client import ActivityFailureError, Client
from temporalio.common import ActivityIDConflictPolicy, RetryPolicy
from temporalio.service import RPCError

from api.deps import (
    FORBIDDEN,
    AuthorizerDep,
    CurrentUser,
    DbDep,
    InputProblems,
    SettingsDep,
    TemporalDep,
    answers,
    refusal,
    require,
)
from faq import knowledge_base as kb
from faq import learning
from faq.encoder import FaqModelError
from faq.index import FaqIndexError
from faq.io import FaqImportError, FileFormat, export_entries, parse_entries_located
from faq.store import FaqIndexNotFound
from models.db import Database
from models.faq import (
    FaqAsk,
    FaqEntry,
    FaqEntryChange,
    FaqEntryPage,
    FaqEntryPublic,
    FaqEntryUpdate,
    FaqImportProblem,
    FaqImportResult,
    FaqIndexStatus,
    FaqPublication,
    FaqPublishRequest,
    FaqResult,
    FaqSuggestionPage,
    FaqSuggestionReview,
    FaqSuggestionReviewResult,
    FaqSuggestionStatus,
    FaqThresholdOverrides,
    FaqThresholdsChange,
)
from policies import Resource
from settings import Settings

log = logging.getLogger("ticketflow.api.faq")
router = APIRouter(prefix="/faq", tags=["faq"])

FAQ = Resource("faq")
MAX_IMPORT_BYTES = 20 * 1024 * 1024
# From scratch, a knowledge base the size of BANKING77 (10,000 question variants) builds in
# about a minute on two cores; Temporal retries a failed build.
PUBLISH_TIMEOUT = timedelta(minutes=15)
PUBLISH_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=5)

EntryId = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]
Wait = Annotated[
    float, Query(ge=0, le=60, description="seconds to wait for the index version that includes the change")
]


# --- publishing ------------------------------------------------------------------------------


async def _publish(
    request: Request, client: Client, settings: Settings, db: Database, revision: int, wait: float
) -> FaqPublication:
    """Have a FAQ worker publish ``revision``; wait for it up to ``wait`` seconds."""
    publication = await _start_publishing(client, settings, db, revision, wait)
    if publication.status == "published":
        # Read your writes: this process's next /faq/ask uses the new version at once
        # (other API processes within PublishedIndexes.current_ttl).
        _published_indexes(request, db).forget_current()
    return publication


async def _start_publishing(
    client: Client, settings: Settings, db: Database, revision: int, wait: float
) -> FaqPublication:
    state = await db.run(kb.kb_state)
    if state.published_revision >= revision:
        return kb.publication(state, revision)
    try:
        handle = await client.start_activity(
            "publish_faq_index",
            FaqPublishRequest(kb_revision=revision),
            id=f"faq-index-{state.instance}-{revision}",
            task_queue=settings.faq_task_queue,
            result_type=FaqPublication,
            start_to_close_timeout=PUBLISH_TIMEOUT,
            retry_policy=PUBLISH_RETRY,
            id_conflict_policy=ActivityIDConflictPolicy.USE_EXISTING,
        )
    except RPCError as exc:
        # The change is stored; the next change, or POST /faq/index/publish, publishes it.
        log.error("could not start publishing FAQ knowledge-base revision %d: %s", revision, exc)
        pending = kb.publication(await db.run(kb.kb_state), revision)
        return pending.model_copy(update={"detail": f"publishing could not be started ({exc}): "
                                                    "POST /faq/index/publish to try again"})
    try:
        await asyncio.wait_for(handle.result(), timeout=wait)
    except (TimeoutError, ActivityFailureError):
        pass  # pending, or failed: the knowledge-base row says which
    return kb.publication(await db.run(kb.kb_state), revision)


async def _change_entry(
    request: Request, client: Client, settings: Settings, db: Database, wait: float, change, *args  # noqa: ANN001
) -> FaqEntryChange:
    """Apply one change to the knowledge base, then publish the index version that has it."""
    try:
        entry, revision = await db.run(change, *args)
    except kb.FaqEntryNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except kb.FaqEntryConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, f"{exc}: change the other entry or this one") from exc
    return FaqEntryChange(entry=entry, publication=await _publish(request, client, settings, db, revision, wait))


# --- entries ---------------------------------------------------------------------------------


@router.get("/entries", response_model=FaqEntryPage, responses=answers(FORBIDDEN), summary="List FAQ entries by id")
async def list_entries(
    user: CurrentUser, db: DbDep, authorizer: AuthorizerDep,
    department: Annotated[str | None, Query(max_length=50)] = None,
    enabled: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> FaqEntryPage:
    require(authorizer, user, "read", FAQ)
    items, next_cursor = await db.run(
        kb.list_entries, limit=limit, cursor=cursor, department=department, enabled=enabled
    )
    return FaqEntryPage(items=items, next_cursor=next_cursor)


@router.post(
    "/entries", status_code=status.HTTP_201_CREATED, response_model=FaqEntryChange,
    responses=answers(FORBIDDEN, refusal(409, "the id is taken, or another entry asks one of the questions")),
    summary="Add an FAQ entry (publishes a new index version)",
)
async def create_entry(
    body: FaqEntry, request: Request, user: CurrentUser, db: DbDep, client: TemporalDep, settings: SettingsDep,
    authorizer: AuthorizerDep, wait: Wait = 20,
) -> FaqEntryChange:
    require(authorizer, user, "write", FAQ)
    return await _change_entry(request, client, settings, db, wait, kb.create_entry, body)


@router.get("/entries/{entry_id}", response_model=FaqEntryPublic,
            responses=answers(FORBIDDEN, refusal(404, "no such entry")), summary="One FAQ entry")
async def get_entry(entry_id: EntryId, user: CurrentUser, db: DbDep, authorizer: AuthorizerDep) -> FaqEntryPublic:
    require(authorizer, user, "read", FAQ)
    entry = await db.run(kb.get_entry, entry_id)
    if entry is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no FAQ entry {entry_id!r}")
    return entry


@router.put(
    "/entries/{entry_id}", response_model=FaqEntryChange,
    responses=answers(FORBIDDEN, refusal(404, "no such entry (create it with POST /faq/entries)"),
                      refusal(409, "another entry asks one of the questions")),
    summary="Replace an FAQ entry's content (publishes a new index version)",
)
async def update_entry(
    entry_id: EntryId, body: FaqEntryUpdate, request: Request, user: CurrentUser, db: DbDep, client: TemporalDep,
    settings: SettingsDep, authorizer: AuthorizerDep, wait: Wait = 20,
) -> FaqEntryChange:
    require(authorizer, user, "write", FAQ)
    return await _change_entry(request, client, settings, db, wait, kb.update_entry,
                               FaqEntry(id=entry_id, **body.model_dump()))


@router.delete(
    "/entries/{entry_id}", response_model=FaqEntryChange,
    responses=answers(FORBIDDEN, refusal(404, "no such entry")),
    summary="Delete an FAQ entry (publishes a new index version); returns it as it was",
)
async def delete_entry(
    entry_id: EntryId, request: Request, user: CurrentUser, db: DbDep, client: TemporalDep, settings: SettingsDep,
    authorizer: AuthorizerDep, wait: Wait = 20,
) -> FaqEntryChange:
    require(authorizer, user, "write", FAQ)
    return await _change_entry(request, client, settings, db, wait, kb.delete_entry, entry_id)


# --- import and export -----------------------------------------------------------------------

_IMPORT_BODY = {
    "required": True,
    "description": "The file as a multipart upload in the field `file`, or as the raw request body.",
    "content": {
        "multipart/form-data": {
            "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}},
                       "required": ["file"]},
        },
        "text/csv": {"schema": {"type": "string"}},
        "application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/FaqEntry"}}},
    },
}


class FaqImportRejected(BaseModel):
    detail: str
    problems: list[FaqImportProblem] = Field(default_factory=list,
                                             description="What is wrong in the file, with its line or position")


class _FileRefused(Exception):
    """The upload is no FAQ file this route can read (no `file` field, unknown format)."""


async def _uploaded_file(request: Request) -> tuple[bytes, str | None, str]:
    """The file's bytes, its name (multipart only) and its content type."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_IMPORT_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"the file is larger than {MAX_IMPORT_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_IMPORT_BYTES:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"the file is larger than {MAX_IMPORT_BYTES} bytes")
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        return bytes(body), None, content_type.split(";")[0].strip().lower()
    # The standard library parses multipart bodies byte for byte; no extra dependency.
    header = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
    message = BytesParser(policy=HTTP).parsebytes(header + body)
    for part in message.iter_parts() if message.is_multipart() else ():
        if part.get_param("name", header="content-disposition") == "file":
            return part.get_payload(decode=True) or b"", part.get_filename(), part.get_content_type()
    raise _FileRefused("multipart upload without a field named `file`")


def _format_of(filename: str | None, content_type: str) -> FileFormat:
    name = (filename or "").lower()
    if name.endswith(".csv") or content_type in ("text/csv", "application/csv"):
        return "csv"
    if name.endswith(".json") or content_type == "application/json":
        return "json"
    raise _FileRefused("cannot tell whether the file is CSV or JSON: add ?format=csv or ?format=json")


def _rejected(detail: str, problems: list[FaqImportProblem] | None = None) -> JSONResponse:
    body = FaqImportRejected(detail=detail, problems=problems or [])
    return JSONResponse(body.model_dump(), status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


@router.post(
    "/import", response_model=FaqImportResult, openapi_extra={"requestBody": _IMPORT_BODY},
    responses=answers(FORBIDDEN, {422: {"model": FaqImportRejected | InputProblems,
                                        "description": "the file has problems (listed with their lines), or a "
                                                       "parameter is invalid; nothing was imported"}},
                      refusal(413, "the file is too large")),
    summary="Import FAQ entries from CSV or JSON, all or nothing (publishes a new index version)",
)
async def import_entries(
    request: Request, user: CurrentUser, db: DbDep, client: TemporalDep, settings: SettingsDep,
    authorizer: AuthorizerDep,
    format_: Annotated[FileFormat | None, Query(
        alias="format", description="default: from the file name or content type")] = None,
    mode: Annotated[Literal["merge", "replace"], Query(
        description="merge: create and update the file's entries; replace: also delete those it lacks")] = "merge",
    wait: Wait = 20,
) -> FaqImportResult | JSONResponse:
    require(authorizer, user, "write", FAQ)
    try:
        data, filename, content_type = await _uploaded_file(request)
        file_format = format_ or _format_of(filename, content_type)
    except _FileRefused as exc:
        return _rejected(str(exc))
    try:
        located = await anyio.to_thread.run_sync(parse_entries_located, data, file_format)
        counts = await db.run(kb.import_entries, located, replace=mode == "replace")
    except FaqImportError as exc:
        return _rejected(f"FAQ file rejected, nothing imported: {len(exc.problems)} problem(s); fix them and send it "
                         "again", exc.problems)
    return FaqImportResult(
        **counts.model_dump(exclude={"kb_revision"}),
        publication=await _publish(request, client, settings, db, counts.kb_revision, wait),
    )


@router.get(
    "/export", response_class=Response,
    responses={200: {"content": {"text/csv": {}, "application/json": {}}, "description": "every entry, by id"},
               **answers(FORBIDDEN)},
    summary="Export every FAQ entry as CSV or JSON (import gives them back unchanged)",
)
async def export(
    user: CurrentUser, db: DbDep, authorizer: AuthorizerDep,
    format_: Annotated[FileFormat, Query(alias="format")] = "json",
) -> Response:
    require(authorizer, user, "read", FAQ)
    entries = await db.run(kb.all_entries)
    media_type = "text/csv; charset=utf-8" if format_ == "csv" else "application/json"
    return Response(
        export_entries(entries, format_), media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="faq.{format_}"'},
    )


# --- the index -------------------------------------------------------------------------------


@router.get("/index", response_model=FaqIndexStatus, responses=answers(FORBIDDEN),
            summary="The index version answering now, and its calibration")
async def index_status(user: CurrentUser, db: DbDep, authorizer: AuthorizerDep) -> FaqIndexStatus:
    require(authorizer, user, "read", FAQ)
    return await db.run(kb.index_status)


@router.post(
    "/index/publish", response_model=FaqPublication, responses=answers(FORBIDDEN),
    summary="Publish the newest revision again (after a failed or never started build)",
)
async def publish_index(
    request: Request, user: CurrentUser, db: DbDep, client: TemporalDep, settings: SettingsDep,
    authorizer: AuthorizerDep,
    wait: Wait = 20,
) -> FaqPublication:
    require(authorizer, user, "write", FAQ)
    state = await db.run(kb.kb_state)
    return await _publish(request, client, settings, db, state.revision, wait)


@router.put(
    "/thresholds", response_model=FaqThresholdsChange, responses=answers(FORBIDDEN),
    summary="Set confidence thresholds by hand, per department (publishes a new index version)",
)
async def set_thresholds(
    body: FaqThresholdOverrides, request: Request, user: CurrentUser, db: DbDep, client: TemporalDep,
    settings: SettingsDep,
    authorizer: AuthorizerDep, wait: Wait = 20,
) -> FaqThresholdsChange:
    """The thresholds named here replace the calibrated ones in this and every later version,
    until they are set again; `{}` goes back to the calibrated thresholds. 1.0 means the
    bot never answers on its own."""
    require(authorizer, user, "write", FAQ)
    revision = await db.run(kb.set_threshold_overrides, body)
    publication = await _publish(request, client, settings, db, revision, wait)
    return FaqThresholdsChange(overrides=body, publication=publication)


# --- the learning loop -----------------------------------------------------------------------
# Suggestions hold customers' own words from tickets of every department: they are the
# editors' to read, as the knowledge base is theirs to change.


@router.get(
    "/suggestions", response_model=FaqSuggestionPage, responses=answers(FORBIDDEN),
    summary="Question variants and evidence that tickets suggest, oldest first, for review",
)
async def list_suggestions(
    user: CurrentUser, db: DbDep, authorizer: AuthorizerDep,
    state: Annotated[FaqSuggestionStatus | None, Query(alias="status", description="default: every status")] = None,
    entry_id: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> FaqSuggestionPage:
    require(authorizer, user, "write", FAQ)
    items, next_cursor = await db.run(
        learning.list_suggestions, limit=limit, cursor=cursor, status=state, entry_id=entry_id
    )
    return FaqSuggestionPage(items=items, next_cursor=next_cursor)


@router.post(
    "/suggestions/review", response_model=FaqSuggestionReviewResult,
    responses=answers(FORBIDDEN, refusal(404, "an id names no suggestion; nothing was reviewed"),
                      refusal(409, "a suggestion was reviewed already, or accepting it would make two entries ask "
                                   "the same question; nothing was reviewed")),
    summary="Accept and reject suggestions in one call, all or nothing (accepting publishes a new index version)",
)
async def review_suggestions(
    body: FaqSuggestionReview, request: Request, user: CurrentUser, db: DbDep, client: TemporalDep,
    settings: SettingsDep, authorizer: AuthorizerDep, wait: Wait = 20,
) -> FaqSuggestionReviewResult:
    """Accepted variants join their entries; accepted suggestions of either kind are
    calibration evidence of the next index version and every later one."""
    require(authorizer, user, "write", FAQ)
    try:
        outcome = await db.run(learning.review, body, user.name)
    except learning.FaqSuggestionNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except learning.FaqSuggestionConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, f"{exc}; nothing was reviewed") from exc
    if outcome.kb_revision is None:
        publication = kb.publication(await db.run(kb.kb_state))
    else:
        publication = await _publish(request, client, settings, db, outcome.kb_revision, wait)
    return FaqSuggestionReviewResult(accepted=outcome.accepted, rejected=outcome.rejected,
                                     entries_changed=outcome.entries_changed, publication=publication)


# --- asking ----------------------------------------------------------------------------------


def _published_indexes(request: Request, db: Database) -> kb.PublishedIndexes:
    indexes = getattr(request.app.state, "faq_indexes", None)
    if indexes is None:
        indexes = request.app.state.faq_indexes = kb.PublishedIndexes(db)
    return indexes


@router.post(
    "/ask", response_model=FaqResult,
    responses=answers(FORBIDDEN, refusal(404, "the index version asked for is not stored"),
                      refusal(503, "the embedding model is not installed on this API host")),
    summary="Ask the FAQ bot: best entry, calibrated confidence, alternatives and its decision",
)
async def ask(body: FaqAsk, request: Request, user: CurrentUser, db: DbDep, authorizer: AuthorizerDep) -> FaqResult:
    """The first question an API process is asked loads the embedding model (a few seconds)."""
    require(authorizer, user, "ask", FAQ)
    answer = _published_indexes(request, db).answer
    try:
        return await anyio.to_thread.run_sync(lambda: answer(body, fall_back_to_current=False))
    except FaqIndexNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except FaqModelError as exc:
        log.error("%s", exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the FAQ bot is not available on this server") from exc
    except FaqIndexError as exc:
        log.error("%s", exc)
        raise HTTPException(
            status.HTTP_500_INTERNAL_SERVER_ERROR, "the FAQ index is unreadable: POST /faq/index/publish"
        ) from exc
