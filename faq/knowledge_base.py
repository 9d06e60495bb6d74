"""The knowledge base in the database: FAQ entries, their revision, and published index versions.

Every change (an entry created, changed or deleted, a file imported, thresholds set) bumps
the knowledge base's revision in the transaction that makes it. ``publish`` then builds an
index from the entries of the newest revision, calibrates it on held-out question variants
of those entries, stores it (``FaqIndex.to_bytes``) in ``faq_index_version`` and makes it
current. Publishing only moves forward: a build of an older revision that finishes late
never replaces a newer one, so any number of processes may publish at once.

Publishing needs the embedding model, so it runs where the model is loaded anyway: in the
FAQ worker (the API starts its ``publish_faq_index`` activity after a change) or in the
``ticketflow faq`` command. Answering (``PublishedIndexes``) reads the current version with
a short-lived cache and loads versions from the database on first use, so every worker host
answers with the same bytes and picks up a new version within seconds, without a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, Field
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import defer
from sqlmodel import Session

from faq.calibration import split_for_calibration
from faq.prior import load_prior
from settings import get_settings
from faq.encoder import DEFAULT_MODEL, embedding_dimension, encode, load_encoder
from faq.index import FaqIndex
from faq.io import FaqImportError, LocatedEntry, parse_entries_located
from faq.store import FaqIndexNotFound
from models.db import Database, utcnow
from models.faq import (
    FaqCalibrationReport,
    FaqDecision,
    FaqEntry,
    FaqEntryPublic,
    FaqEntryRow,
    FaqEvidence,
    FaqImportProblem,
    FaqIndexStatus,
    FaqIndexVersionRow,
    FaqKnowledgeBaseRow,
    FaqPublication,
    FaqQuery,
    FaqResult,
    FaqSuggestionRow,
    FaqSuggestionStatus,
    FaqThresholdOverrides,
)
from models.readmodel import decode_cursor, encode_cursor

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

DEMO_KB = Path(__file__).with_name("demo_kb.json")
# FaqResult.index_version when no index was ever published: the answer is "escalate".
NO_INDEX = "none"
# Artifacts kept loadable besides the current one: the newest few, and every version that
# answered recently (tickets keep the version they started with). Older rows stay, without
# their artifact, as the record of what answered when.
KEEP_ARTIFACTS = 10
KEEP_ARTIFACTS_FOR = timedelta(days=14)
_KB = 1  # the id of the one knowledge-base row


class CalibrationSettings(BaseModel):
    """How an index is calibrated.

    Confidence starts from the prior (``faq.prior``), fitted offline on many knowledge
    bases, so a knowledge base of one or two variants per entry answers where it is sure
    from its first publish. Entries of three or more variants lend a share of them as
    held-out questions, and reviewed evidence from tickets adds more; the calibration
    blends them with the prior and, once there are enough, chooses the thresholds from
    them for ``target_precision`` (at ``confidence_level``). A fifth of the data simulates
    questions the knowledge base does not cover, because customers ask those too, and the
    thresholds are raised until at least ``out_of_scope_recall`` of such questions would
    go to an agent.
    """

    holdout_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    seed: int = 0
    target_precision: float = Field(default=0.9, gt=0.0, le=1.0)
    confidence_level: float = Field(default=0.9, ge=0.5, lt=1.0)
    out_of_scope_share: float = Field(default=0.2, ge=0.0, lt=1.0)
    out_of_scope_recall: float | None = Field(default=0.95, ge=0.0, lt=1.0)
    min_department_samples: int = Field(default=200, ge=1)
    use_prior: bool = True


CALIBRATION = CalibrationSettings()


def calibration_settings() -> CalibrationSettings:
    """The defaults, with the target precision and out-of-scope recall from the settings."""
    settings = get_settings()
    return CALIBRATION.model_copy(update={
        "target_precision": settings.faq_target_precision,
        "out_of_scope_recall": settings.faq_out_of_scope_recall or None,
    })


class FaqEntryNotFound(LookupError):
    pass


class FaqEntryConflict(ValueError):
    """The change would make two entries the same: an id, or a question in one department and language."""


# --- reading ---------------------------------------------------------------------------------


def kb_state(session: Session) -> FaqKnowledgeBaseRow:
    q = select(FaqKnowledgeBaseRow).where(FaqKnowledgeBaseRow.id == _KB).execution_options(populate_existing=True)
    state = session.execute(q).scalars().first()
    if state is None:
        raise RuntimeError("the FAQ knowledge base row is missing: run `ticketflow db upgrade`")
    return state


def publication(state: FaqKnowledgeBaseRow, revision: int | None = None) -> FaqPublication:
    """Where publishing stands for ``revision`` (default: the newest)."""
    revision = state.revision if revision is None else revision
    if state.published_revision >= revision:
        status = "published"
    else:
        status = "failed" if state.publish_error else "pending"
    return FaqPublication(
        kb_revision=revision,
        status=status,
        index_version=state.current_version,
        published_revision=state.published_revision,
        detail=state.publish_error if status == "failed" else None,
    )


def get_entry(session: Session, entry_id: str) -> FaqEntryPublic | None:
    row = session.get(FaqEntryRow, entry_id)
    return None if row is None else row.public()


def list_entries(
    session: Session,
    *,
    limit: int,
    cursor: str | None = None,
    department: str | None = None,
    enabled: bool | None = None,
) -> tuple[list[FaqEntryPublic], str | None]:
    """Entries by id, keyset-paginated."""
    q = select(FaqEntryRow)
    if department is not None:
        q = q.where(FaqEntryRow.department == department)
    if enabled is not None:
        q = q.where(FaqEntryRow.enabled == enabled)
    if cursor:
        [last_id] = decode_cursor(cursor, 1)
        q = q.where(FaqEntryRow.id > str(last_id))
    rows = list(session.execute(q.order_by(FaqEntryRow.id).limit(limit + 1)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return [row.public() for row in rows], encode_cursor(rows[-1].id) if more and rows else None


def all_entries(session: Session) -> list[FaqEntry]:
    return [row.entry() for row in session.execute(select(FaqEntryRow).order_by(FaqEntryRow.id)).scalars()]


def calibration_evidence(session: Session) -> list[FaqEvidence]:
    """What tickets showed of the bot, as far as an editor accepted it (faq/learning.py):
    unreviewed verdicts stay out, so one customer's click cannot move a threshold."""
    q = (select(FaqSuggestionRow)
         .where(FaqSuggestionRow.status == FaqSuggestionStatus.accepted.value)
         .order_by(FaqSuggestionRow.id))
    return [row.evidence() for row in session.execute(q).scalars()]


def index_status(session: Session) -> FaqIndexStatus:
    state = kb_state(session)
    current = None
    if state.current_version is not None:
        current = session.execute(
            select(FaqIndexVersionRow)
            .where(FaqIndexVersionRow.version == state.current_version)
            .options(defer(FaqIndexVersionRow.artifact))
        ).scalars().first()
    return FaqIndexStatus(
        kb_revision=state.revision,
        publication=publication(state),
        published_at=state.published_at,
        current=None if current is None else current.public(),
        threshold_overrides=FaqThresholdOverrides.model_validate(state.threshold_overrides),
    )


def current_version(session: Session) -> str | None:
    return session.execute(
        select(FaqKnowledgeBaseRow.current_version).where(FaqKnowledgeBaseRow.id == _KB)
    ).scalar()


def load_artifact(session: Session, version: str) -> bytes | None:
    return session.execute(select(FaqIndexVersionRow.artifact).where(FaqIndexVersionRow.version == version)).scalar()


# --- changing --------------------------------------------------------------------------------


def _begin_change(session: Session) -> FaqKnowledgeBaseRow:
    """Bump the revision before reading anything: the row lock (PostgreSQL) or the write lock
    (SQLite) it takes orders concurrent changes, so the checks that follow see every change
    committed before this one."""
    session.execute(
        update(FaqKnowledgeBaseRow)
        .where(FaqKnowledgeBaseRow.id == _KB)
        # A new revision gets a new build: an earlier build's failure no longer applies.
        .values(revision=FaqKnowledgeBaseRow.revision + 1, updated_at=utcnow(), publish_error=None)
    )
    return kb_state(session)


def request_rebuild(session: Session) -> int:
    """A new revision with the same entries, so that the next publish builds the index again
    with this installation's model and calibration (after an upgrade, or a change of
    ``TICKETFLOW_FAQ_QUANTIZE``); returns the new revision."""
    return _begin_change(session).revision


def _unchanged(session: Session) -> int:
    """Undo the bump of a change that changes nothing; returns the revision as it stays."""
    session.rollback()
    return kb_state(session).revision


def _normalised(question: str) -> str:
    return " ".join(question.casefold().split())


def _question_owners(session: Session, excluding: set[str]) -> dict[tuple[str, str, str], str]:
    """Which entry asks each question, per department and language (as faq.io checks in a file)."""
    q = select(FaqEntryRow.id, FaqEntryRow.questions, FaqEntryRow.department, FaqEntryRow.language)
    owners: dict[tuple[str, str, str], str] = {}
    for entry_id, questions, department, language in session.execute(q):
        if entry_id not in excluding:
            for question in questions:
                owners[(department, language, _normalised(question))] = entry_id
    return owners


def _clashes(entry: FaqEntry, owners: dict[tuple[str, str, str], str]) -> list[str]:
    return [
        f"question {question!r} is also a question of entry {owners[key]!r} in the same department and language"
        for question in entry.questions
        if (key := (entry.department, entry.language, _normalised(question))) in owners
    ]


def _row_values(entry: FaqEntry, revision: int) -> dict:
    return {**entry.model_dump(), "updated_at": utcnow(), "kb_revision": revision}


def create_entry(session: Session, entry: FaqEntry) -> tuple[FaqEntryPublic, int]:
    """Returns the stored entry and the revision the change made."""
    state = _begin_change(session)
    if session.get(FaqEntryRow, entry.id) is not None:
        raise FaqEntryConflict(f"an FAQ entry with id {entry.id!r} exists already")
    clashes = _clashes(entry, _question_owners(session, excluding=set()))
    if clashes:
        raise FaqEntryConflict("; ".join(clashes))
    row = FaqEntryRow(**_row_values(entry, state.revision))
    session.add(row)
    return row.public(), state.revision


def update_entry(session: Session, entry: FaqEntry) -> tuple[FaqEntryPublic, int]:
    state = _begin_change(session)
    row = session.get(FaqEntryRow, entry.id)
    if row is None:
        raise FaqEntryNotFound(f"no FAQ entry {entry.id!r}")
    if row.entry() == entry:
        public = row.public()
        return public, _unchanged(session)
    clashes = _clashes(entry, _question_owners(session, excluding={entry.id}))
    if clashes:
        raise FaqEntryConflict("; ".join(clashes))
    for name, value in _row_values(entry, state.revision).items():
        setattr(row, name, value)
    return row.public(), state.revision


def delete_entry(session: Session, entry_id: str) -> tuple[FaqEntryPublic, int]:
    """Returns the entry as it was, and the revision the change made."""
    state = _begin_change(session)
    row = session.get(FaqEntryRow, entry_id)
    if row is None:
        raise FaqEntryNotFound(f"no FAQ entry {entry_id!r}")
    public = row.public()
    session.delete(row)
    return public, state.revision


class ImportCounts(BaseModel):
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    kb_revision: int = 0


def import_entries(session: Session, located: Sequence[LocatedEntry], *, replace: bool = False) -> ImportCounts:
    """Create or update every entry of a parsed file, all or nothing. ``replace`` also deletes
    the entries the file does not have. Raises FaqImportError (nothing written) if an entry of
    the file asks a question an entry outside the file asks too."""
    return _import(session, _begin_change(session), located, replace=replace)


def _import(
    session: Session, state: FaqKnowledgeBaseRow, located: Sequence[LocatedEntry], *, replace: bool
) -> ImportCounts:
    in_file = {item.entry.id for item in located}
    existing = {row.id: row for row in session.execute(select(FaqEntryRow)).scalars()}
    kept_outside = set() if replace else set(existing) - in_file
    owners = _question_owners(session, excluding=set(existing) - kept_outside)
    problems: list[FaqImportProblem] = []
    for item in located:
        for clash in _clashes(item.entry, owners):
            problems.append(item.problem(clash + " (not in this file)", "questions"))
    if problems:
        raise FaqImportError(problems)

    counts = ImportCounts()
    for item in located:
        row = existing.get(item.entry.id)
        if row is None:
            session.add(FaqEntryRow(**_row_values(item.entry, state.revision)))
            counts.created += 1
        elif row.entry() == item.entry:
            counts.unchanged += 1
        else:
            for name, value in _row_values(item.entry, state.revision).items():
                setattr(row, name, value)
            counts.updated += 1
    if replace:
        gone = set(existing) - in_file
        if gone:
            session.execute(delete(FaqEntryRow).where(FaqEntryRow.id.in_(gone)))
        counts.deleted = len(gone)
    if counts.created == counts.updated == counts.deleted == 0:
        counts.kb_revision = _unchanged(session)
    else:
        counts.kb_revision = state.revision
    return counts


def set_threshold_overrides(session: Session, overrides: FaqThresholdOverrides) -> int:
    state = _begin_change(session)
    if FaqThresholdOverrides.model_validate(state.threshold_overrides) == overrides:
        return _unchanged(session)
    state.threshold_overrides = overrides.model_dump(mode="json")
    return state.revision


# --- building and publishing -----------------------------------------------------------------

# Embeddings this process computed. Held-out questions are in no index, and a change to an
# entry moves some of its variants between the index and the held-out questions; with these
# and the previous index's vectors, a rebuild encodes only questions it has never seen.
_CACHE_SIZE = 100_000
_encoded: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
_encoded_lock = threading.Lock()


def _embed(encoder: SentenceTransformer, model: str, texts: Sequence[str], previous: FaqIndex | None) -> np.ndarray:
    known = previous.known_vectors(texts) if previous is not None and previous.model_name == model else {}
    with _encoded_lock:
        for text in texts:
            if text not in known and (model, text) in _encoded:
                known[text] = _encoded[(model, text)]
    missing = sorted({text for text in texts if text not in known})
    if missing:
        fresh = encode(encoder, missing)
        known.update(zip(missing, fresh, strict=True))
        with _encoded_lock:
            for text, vector in zip(missing, fresh, strict=True):
                _encoded[(model, text)] = vector
            while len(_encoded) > _CACHE_SIZE:
                _encoded.popitem(last=False)
    vectors = np.array([known[text] for text in texts], dtype=np.float32)
    return vectors.reshape(len(texts), embedding_dimension(encoder))


def build_index(
    entries: Sequence[FaqEntry],
    overrides: FaqThresholdOverrides | None = None,
    *,
    previous: FaqIndex | None = None,
    encoder: SentenceTransformer | None = None,
    model: str = DEFAULT_MODEL,
    calibration: CalibrationSettings | None = None,
    evidence: Sequence[FaqEvidence] = (),
) -> tuple[FaqIndex, FaqCalibrationReport | None]:
    """An index of ``entries``, calibrated on the prior, variants held out of them and
    reviewed ``evidence`` (see ``CalibrationSettings``; the report is None only when
    nothing could calibrate it: no prior, no held-out variants, and then every question
    escalates). Embeddings ``previous`` holds, or this process computed before, are reused."""
    encoder = encoder or load_encoder(model)
    calibration = calibration or calibration_settings()
    kept, questions, expected = split_for_calibration(
        entries, fraction=calibration.holdout_fraction, seed=calibration.seed
    )
    # FaqIndex.build(reuse=previous) would re-encode variants that were held out last time.
    texts = [question for entry in kept for question in entry.questions]
    index = FaqIndex.from_vectors(
        kept, _embed(encoder, model, texts, previous), model_name=model, encoder=encoder
    )
    prior = load_prior() if calibration.use_prior else None
    report = None
    if (questions or prior is not None) and kept:
        evidence = list(evidence)
        index, report = index.calibrate(
            questions,
            expected,
            target_precision=calibration.target_precision,
            confidence_level=calibration.confidence_level,
            out_of_scope_share=calibration.out_of_scope_share,
            out_of_scope_recall=calibration.out_of_scope_recall,
            min_department_samples=calibration.min_department_samples,
            prior=prior,
            evidence=evidence,
            vectors=_embed(encoder, model, questions, previous) if questions else None,
            evidence_vectors=_embed(encoder, model, [e.question for e in evidence], previous) if evidence else None,
        )
    if overrides is not None:
        thresholds = overrides.apply(index.thresholds)
        if thresholds != index.thresholds:
            index = index.with_thresholds(thresholds)
    return index, report


class _Snapshot(BaseModel):
    revision: int
    published_revision: int
    current_version: str | None
    overrides: FaqThresholdOverrides
    entries: list[FaqEntry]
    evidence: list[FaqEvidence] = Field(default_factory=list)


def _snapshot(session: Session) -> _Snapshot | None:
    """The entries of one revision, or None if a change landed while reading them."""
    before = kb_state(session).revision
    entries = all_entries(session)
    evidence = calibration_evidence(session)  # accepting evidence is a change: the revision covers it
    state = kb_state(session)
    if state.revision != before:
        return None
    return _Snapshot(
        revision=state.revision,
        published_revision=state.published_revision,
        current_version=state.current_version,
        overrides=FaqThresholdOverrides.model_validate(state.threshold_overrides),
        entries=entries,
        evidence=evidence,
    )


def _store_and_publish(
    session: Session, index: FaqIndex, report: FaqCalibrationReport | None, artifact: bytes, revision: int,
    build_seconds: float,
) -> FaqKnowledgeBaseRow:
    """Make ``index`` current if nothing newer is; store it only then."""
    now = utcnow()
    moved = session.execute(
        update(FaqKnowledgeBaseRow)
        .where(FaqKnowledgeBaseRow.id == _KB, FaqKnowledgeBaseRow.published_revision < revision)
        .values(current_version=index.version, published_revision=revision, published_at=now, publish_error=None)
    )
    if moved.rowcount == 0:  # a newer revision was published meanwhile: this build is history
        session.rollback()
        return kb_state(session)
    row = session.execute(
        select(FaqIndexVersionRow)
        .where(FaqIndexVersionRow.version == index.version)
        .options(defer(FaqIndexVersionRow.artifact))
    ).scalars().first()
    if row is None:
        info = index.info()
        session.add(
            FaqIndexVersionRow(
                version=index.version, kb_revision=revision, created_at=now, published_at=now,
                entries=info.entries, calibrated=info.calibrated, build_seconds=round(build_seconds, 3),
                info=info.model_dump(mode="json"),
                calibration=None if report is None else report.model_dump(mode="json"),
                artifact=artifact, artifact_bytes=len(artifact),
            )
        )
    else:  # the same content as an earlier version (a change was undone): it answers again
        row.published_at = now
        if row.artifact_bytes == 0:
            row.artifact, row.artifact_bytes = artifact, len(artifact)
    session.flush()
    _prune(session, index.version, now)
    return kb_state(session)


def _prune(session: Session, current: str | None, now) -> None:
    recent = (
        select(FaqIndexVersionRow.version)
        .order_by(FaqIndexVersionRow.published_at.desc())
        .limit(KEEP_ARTIFACTS)
    )
    session.execute(
        update(FaqIndexVersionRow)
        .where(
            FaqIndexVersionRow.artifact_bytes > 0,
            FaqIndexVersionRow.version != (current or ""),
            FaqIndexVersionRow.published_at < now - KEEP_ARTIFACTS_FOR,
            FaqIndexVersionRow.version.not_in(recent),
        )
        .values(artifact=None, artifact_bytes=0)
        .execution_options(synchronize_session=False)
    )


def record_publish_error(session: Session, revision: int, message: str) -> None:
    session.execute(
        update(FaqKnowledgeBaseRow)
        .where(FaqKnowledgeBaseRow.id == _KB, FaqKnowledgeBaseRow.published_revision < revision)
        .values(publish_error=message[:2000])
    )


def publish(
    db: Database,
    *,
    indexes: PublishedIndexes | None = None,
    encoder: SentenceTransformer | None = None,
    calibration: CalibrationSettings | None = None,
) -> FaqPublication:
    """Build and publish an index of the newest revision, unless it is published already."""
    indexes = indexes or PublishedIndexes(db)
    for _ in range(5):
        snapshot = db.call(_snapshot)
        if snapshot is None:
            continue  # a change landed while reading: read again
        if snapshot.published_revision >= snapshot.revision:
            break
        previous = None
        if snapshot.current_version is not None:
            try:
                previous = indexes.get(snapshot.current_version)
            except FaqIndexNotFound:
                previous = None
        encoder = encoder or load_encoder()  # not part of the build time
        started = time.perf_counter()
        index, report = build_index(
            snapshot.entries, snapshot.overrides, previous=previous, encoder=encoder, calibration=calibration,
            evidence=snapshot.evidence,
        )
        artifact = index.to_bytes()
        seconds = time.perf_counter() - started
        try:
            state = db.call(_store_and_publish, index, report, artifact, snapshot.revision, seconds)
        except IntegrityError:
            continue  # another process stored the same version at the same moment
        if state.published_revision != snapshot.revision:
            log.info("FAQ index %s of revision %d not published: revision %d was, meanwhile",
                     index.version, snapshot.revision, state.published_revision)
            return publication(state)
        indexes.remember(index)
        log.info(
            "FAQ index %s published for knowledge-base revision %d (%d entries, %s, built in %.1f s, %d bytes)",
            index.version, snapshot.revision, len(index.entries),
            "calibrated" if index.calibrator is not None else "not calibrated: every question escalates",
            seconds, len(artifact),
        )
        return publication(state, snapshot.revision)
    return db.call(lambda session: publication(kb_state(session)))


# --- answering -------------------------------------------------------------------------------


class PublishedIndexes:
    """Published versions, loaded from the database on first use; the ``keep_loaded`` most
    recently used stay in memory. The current version is read again at most every
    ``current_ttl`` seconds, so a version the API publishes is in use within that time."""

    def __init__(
        self,
        db: Database,
        *,
        keep_loaded: int = 3,
        current_ttl: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.db = db
        self.keep_loaded = max(1, keep_loaded)
        self.current_ttl = current_ttl
        self._clock = clock
        self._loaded: OrderedDict[str, FaqIndex] = OrderedDict()
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._current: tuple[float, str | None] | None = None

    def current_version(self, *, fresh: bool = False) -> str | None:
        now = self._clock()
        cached = self._current
        if fresh or cached is None or now - cached[0] >= self.current_ttl:
            version = self.db.call(current_version)
            self._current = cached = (now, version)
        return cached[1]

    def forget_current(self) -> None:
        """Read the current version again on the next question (this process just published)."""
        self._current = None

    def get(self, version: str) -> FaqIndex:
        with self._lock:
            index = self._loaded.get(version)
            if index is not None:
                self._loaded.move_to_end(version)
                return index
        with self._load_lock:  # one artifact (up to ~15 MB) read at a time, not one per waiting thread
            with self._lock:
                if version in self._loaded:
                    return self._loaded[version]
            artifact = self.db.call(load_artifact, version)
            if artifact is None:
                raise FaqIndexNotFound(f"FAQ index version {version} is not stored (never, or pruned)")
            index = FaqIndex.from_bytes(artifact)
            log.info("loaded FAQ index version %s (%d entries)", version, len(index.entries))
            self.remember(index)
            return index

    def remember(self, index: FaqIndex) -> None:
        with self._lock:
            self._loaded[index.version] = index
            self._loaded.move_to_end(index.version)
            while len(self._loaded) > self.keep_loaded:
                self._loaded.popitem(last=False)

    def answer(self, query: FaqQuery, *, fall_back_to_current: bool = True) -> FaqResult:
        """Match with the pinned version, or the current one. A pinned version that is no
        longer stored raises FaqIndexNotFound, or with ``fall_back_to_current`` is answered
        by the current version (the result names the version that answered)."""
        if query.index_version is not None:
            try:
                return self.get(query.index_version).answer(query)
            except FaqIndexNotFound:
                if not fall_back_to_current:
                    raise
                log.warning("FAQ index version %s is not stored; answering with the current one", query.index_version)
        version = self.current_version()
        if version is None:
            return FaqResult(index_version=NO_INDEX, decision=FaqDecision.escalate)
        try:
            index = self.get(version)
        except FaqIndexNotFound:
            index = self.get(self.current_version(fresh=True) or version)
        return index.answer(query)


# --- the demo knowledge base -----------------------------------------------------------------


def _seed(session: Session, located: list[LocatedEntry]) -> bool:
    state = _begin_change(session)
    if state.revision != 1:  # the knowledge base was changed before: leave it as its owners left it
        session.rollback()
        return False
    _import(session, state, located, replace=False)
    return True


def seed_demo_kb(db: Database, *, publish_index: bool = True) -> FaqPublication | None:
    """Import the demo knowledge base (a web shop's customer service) into a knowledge base
    that was never changed, and publish its index (this loads the embedding model).

    Returns None, changing nothing, if the knowledge base was ever changed, also if all of
    its entries were deleted since.
    """
    located = parse_entries_located(DEMO_KB.read_bytes(), "json")
    if not db.call(_seed, located):
        return None
    log.info("imported the demo FAQ knowledge base (%d entries)", len(located))
    if not publish_index:
        return db.call(lambda session: publication(kb_state(session)))
    return publish(db)
