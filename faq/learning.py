"""The FAQ bot's learning loop: what tickets show about its answers becomes suggestions an
editor reviews.

Two moments tie a ticket's question to an FAQ entry, both seen where the read model is
written (the projection activities), so no workflow changes for it:

- the bot answered and the customer judged the answer: "helpful" suggests the question as a
  variant of the entry, "not helpful" is evidence the entry was wrong for it;
- the bot only suggested and an agent resolved the ticket: a reply that is (nearly) the
  answer of a suggested entry suggests the question as a variant of that entry; any other
  reply is evidence the bot's first suggestion was wrong.

Nothing changes the knowledge base until an editor accepts it (``review``): accepted
variants join their entries in a new revision, and accepted suggestions of either kind are
calibration evidence (``knowledge_base.calibration_evidence``) of every later index.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from difflib import SequenceMatcher

from pydantic import BaseModel, ValidationError
from sqlalchemy import select, update
from sqlmodel import Session

# The knowledge base's own rules for a change: its lock and revision, one question per entry.
from faq.knowledge_base import _begin_change, _normalised, _question_owners, _row_values
from models.case import FaqContext
from models.db import utcnow
from models.faq import (
    LIST_SEPARATOR,
    FaqEntry,
    FaqEntryRow,
    FaqSuggestionPublic,
    FaqSuggestionReview,
    FaqSuggestionRow,
    FaqSuggestionSource,
    FaqSuggestionStatus,
)
from models.readmodel import _insert, decode_cursor, encode_cursor
from models.task import TaskSnapshot, TaskStatus
from models.ticket import Ticket, TimelineEvent

# What the workflow records when the customer judges the bot's answer (workflows/steps/faq.py).
FEEDBACK_EVENT = "faq_feedback"
VERDICTS = {"helpful": True, "not_helpful": False}  # "follow_up" and "timeout" say neither
RESOLVED = "resolve"
# A reply "is" an entry's answer when it is that answer lightly edited (a ratio of matching
# characters this high), or contains it whole and is mostly it (a greeting and a sign-off
# around it). Lower, and a reply that merely shares phrases with an answer would count.
SAME_ANSWER_RATIO = 0.8
CONTAINED_SHARE = 0.5
MAX_VARIANT_LENGTH = 1000  # models.faq.Questions: longer questions cannot be variants
MAX_QUESTION_LENGTH = 5000  # what the bot is asked (workflows/steps/faq.py)


class FaqSuggestionNotFound(LookupError):
    pass


class FaqSuggestionConflict(ValueError):
    """The review cannot take effect as asked: a suggestion was reviewed already, or accepting
    it would break a rule of the knowledge base."""


# --- capturing -------------------------------------------------------------------------------


def ticket_question(subject: str, body: str) -> str:
    """The question the bot was asked for a ticket, as one line."""
    return " ".join(f"{subject}\n{body}"[:MAX_QUESTION_LENGTH].split())


def _key(question: str) -> str:
    return hashlib.sha256(_normalised(question).encode()).hexdigest()


def _bot_context(context: dict | None) -> FaqContext | None:
    try:
        return FaqContext.model_validate((context or {})["faq"])
    except (KeyError, TypeError, ValidationError):
        return None  # the bot was off, down, or the context predates it


def capture_verdicts(session: Session, ticket_id: str, events: Sequence[TimelineEvent]) -> int:
    """Suggestions from the customer's verdict among ``events`` (a ticket's newly projected
    timeline events) on the bot's own answer; returns how many are new."""
    verdicts = [VERDICTS[e.detail] for e in events if e.kind == FEEDBACK_EVENT and e.detail in VERDICTS]
    if not verdicts:
        return 0
    row = session.execute(select(Ticket.subject, Ticket.body, Ticket.context).where(Ticket.id == ticket_id)).first()
    bot = _bot_context(row.context) if row else None
    if row is None or bot is None or bot.decision != "answer" or not bot.suggestions:
        return 0
    question = ticket_question(row.subject, row.body)
    return sum(_suggest(session, question, bot.suggestions[0].entry_id, correct,
                        FaqSuggestionSource.customer_verdict, ticket_id) for correct in verdicts)


def capture_resolution(session: Session, task: TaskSnapshot) -> int:
    """Suggestions from an agent's resolution of a ticket the bot only suggested for."""
    bot = _bot_context(task.context)
    if (task.status != TaskStatus.completed or task.outcome != RESOLVED or not task.reply
            or bot is None or bot.decision != "escalate" or not bot.suggestions):
        return 0
    row = session.execute(select(Ticket.subject, Ticket.body).where(Ticket.id == task.ticket_id)).first()
    if row is None:
        return 0
    suggested = [s.entry_id for s in bot.suggestions]
    answers = dict(session.execute(
        select(FaqEntryRow.id, FaqEntryRow.answer).where(FaqEntryRow.id.in_(suggested))).all())
    candidates = [(entry_id, answers[entry_id]) for entry_id in suggested if entry_id in answers]
    if bot.answer:  # the best entry's answer as the agent saw it (a template's, filled in)
        candidates.insert(0, (suggested[0], bot.answer))
    used = answered_with(task.reply, candidates)
    question = ticket_question(row.subject, row.body)
    source = FaqSuggestionSource.agent_resolution
    if used is not None:
        return _suggest(session, question, used, True, source, task.ticket_id, task.task_id)
    return _suggest(session, question, suggested[0], False, source, task.ticket_id, task.task_id)


def answered_with(reply: str, candidates: Sequence[tuple[str, str]]) -> str | None:
    """The entry (of ``(entry id, answer)`` candidates) whose answer ``reply`` is, if any."""
    said = _normalised(reply)
    best: tuple[float, str] | None = None
    for entry_id, answer in candidates:
        text = _normalised(answer)
        if not text:
            continue
        if text in said and len(text) >= CONTAINED_SHARE * len(said):
            return entry_id
        matcher = SequenceMatcher(None, text, said, autojunk=False)
        if matcher.real_quick_ratio() >= SAME_ANSWER_RATIO and matcher.quick_ratio() >= SAME_ANSWER_RATIO:
            ratio = matcher.ratio()
            if ratio >= SAME_ANSWER_RATIO and (best is None or ratio > best[0]):
                best = (ratio, entry_id)
    return None if best is None else best[1]


def _suggest(session: Session, question: str, entry_id: str, correct: bool, source: FaqSuggestionSource,
             ticket_id: str, task_id: str | None = None) -> int:
    """Store one suggestion unless it adds nothing; returns 1 if stored."""
    conflict = None
    if correct:
        entry = session.execute(
            select(FaqEntryRow.questions, FaqEntryRow.department, FaqEntryRow.language)
            .where(FaqEntryRow.id == entry_id)
        ).first()
        if entry is None or len(question) > MAX_VARIANT_LENGTH or LIST_SEPARATOR in question:
            return 0  # the entry is gone, or the question could never be one of its variants
        key = _normalised(question)
        if key in {_normalised(q) for q in entry.questions}:
            return 0  # a variant already
        others = session.execute(
            select(FaqEntryRow.id, FaqEntryRow.questions)
            .where(FaqEntryRow.department == entry.department, FaqEntryRow.language == entry.language,
                   FaqEntryRow.id != entry_id)
            .order_by(FaqEntryRow.id)
        )
        conflict = next((other for other, questions in others if key in {_normalised(q) for q in questions}), None)
    stmt = _insert(session, FaqSuggestionRow).values(
        question=question, question_key=_key(question), entry_id=entry_id, correct=correct, source=source.value,
        ticket_id=ticket_id, task_id=task_id, conflict_entry_id=conflict,
        status=FaqSuggestionStatus.pending.value, created_at=utcnow(),
    ).on_conflict_do_nothing(index_elements=["entry_id", "question_key", "correct"])
    return session.exec(stmt.execution_options(preserve_rowcount=True)).rowcount  # type: ignore[call-overload]


# --- listing ---------------------------------------------------------------------------------


def list_suggestions(
    session: Session,
    *,
    limit: int,
    cursor: str | None = None,
    status: FaqSuggestionStatus | None = None,
    entry_id: str | None = None,
) -> tuple[list[FaqSuggestionPublic], str | None]:
    """Suggestions oldest first, keyset-paginated by id."""
    q = select(FaqSuggestionRow)
    if status is not None:
        q = q.where(FaqSuggestionRow.status == status.value)
    if entry_id is not None:
        q = q.where(FaqSuggestionRow.entry_id == entry_id)
    if cursor:
        [last_id] = decode_cursor(cursor, 1)
        q = q.where(FaqSuggestionRow.id > int(last_id))
    rows = list(session.execute(q.order_by(FaqSuggestionRow.id).limit(limit + 1)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return [row.public() for row in rows], encode_cursor(rows[-1].id) if more and rows else None


# --- reviewing -------------------------------------------------------------------------------


class ReviewOutcome(BaseModel):
    accepted: list[FaqSuggestionPublic]
    rejected: list[FaqSuggestionPublic]
    entries_changed: list[str]
    kb_revision: int | None = None  # the revision accepting made; None: only rejections


def review(session: Session, decisions: FaqSuggestionReview, reviewer: str) -> ReviewOutcome:
    """Accept and reject pending suggestions, all or nothing.

    Accepting is a change of the knowledge base (a new revision, so a new index version
    follows): the variants join their entries under the rules every change obeys, and the
    accepted evidence goes into calibration. Raises FaqSuggestionNotFound or
    FaqSuggestionConflict, having written nothing."""
    state = _begin_change(session) if decisions.accept else None  # takes the knowledge base's lock first
    ids = [*decisions.accept, *decisions.reject]
    rows = {row.id: row for row in session.execute(
        select(FaqSuggestionRow).where(FaqSuggestionRow.id.in_(ids)).with_for_update()).scalars()}
    unknown = [i for i in ids if i not in rows]
    if unknown:
        raise FaqSuggestionNotFound(f"no FAQ suggestion {_ids(unknown)}: see GET /faq/suggestions")
    reviewed = [f"{i} ({rows[i].status})" for i in ids if rows[i].status != FaqSuggestionStatus.pending.value]
    if reviewed:
        raise FaqSuggestionConflict(f"suggestion {', '.join(reviewed)} was reviewed already: leave it out")

    changed: list[str] = []
    if state is not None:
        changed = _add_variants(session, [rows[i] for i in decisions.accept if rows[i].correct], state.revision)
    now = utcnow()
    for status, chosen in ((FaqSuggestionStatus.accepted, decisions.accept),
                           (FaqSuggestionStatus.rejected, decisions.reject)):
        if chosen:
            # Only pending rows change: a review racing this one makes the count fall short.
            done = session.execute(
                update(FaqSuggestionRow)
                .where(FaqSuggestionRow.id.in_(chosen), FaqSuggestionRow.status == FaqSuggestionStatus.pending.value)
                .values(status=status.value, reviewed_at=now, reviewed_by=reviewer)
                .execution_options(synchronize_session="fetch")
            ).rowcount
            if done != len(chosen):
                raise FaqSuggestionConflict("another review of these suggestions finished first: list them again")
    return ReviewOutcome(
        accepted=[rows[i].public() for i in decisions.accept],
        rejected=[rows[i].public() for i in decisions.reject],
        entries_changed=changed,
        kb_revision=None if state is None else state.revision,
    )


def _ids(ids: Sequence[int]) -> str:
    return ", ".join(str(i) for i in ids)


def _add_variants(session: Session, accepted: Sequence[FaqSuggestionRow], revision: int) -> list[str]:
    """Add accepted questions to their entries; returns the entries that changed."""
    by_entry: dict[str, list[FaqSuggestionRow]] = {}
    for row in accepted:
        by_entry.setdefault(row.entry_id, []).append(row)
    entries = {row.id: row for row in session.execute(
        select(FaqEntryRow).where(FaqEntryRow.id.in_(by_entry))).scalars()}
    problems: list[str] = []
    gone = [row.id for entry_id in by_entry if entry_id not in entries for row in by_entry[entry_id]]
    if gone:
        problems.append(f"suggestion {_ids(gone)} names an FAQ entry that no longer exists: reject it")

    owners = _question_owners(session, excluding=set())  # the rule create_entry and imports obey
    updated: dict[str, FaqEntry] = {}
    for entry_id, rows in by_entry.items():
        entry_row = entries.get(entry_id)
        if entry_row is None:
            continue
        entry = entry_row.entry()
        questions = list(entry.questions)
        for row in rows:
            key = (entry.department, entry.language, _normalised(row.question))
            owner = owners.get(key)
            if owner == entry_id:
                continue  # a variant already (added by hand since): nothing to add
            if owner is not None:
                problems.append(f"suggestion {row.id}: {row.question!r} is a question of entry {owner!r} "
                                f"(same department and language): reject it, or remove it from {owner!r} first")
                continue
            owners[key] = entry_id
            questions.append(row.question)
        if len(questions) == len(entry.questions):
            continue
        try:
            updated[entry_id] = FaqEntry.model_validate({**entry.model_dump(), "questions": questions})
        except ValidationError as exc:
            problems.append(f"suggestion {_ids([r.id for r in rows])}: entry {entry_id!r} cannot take them "
                            f"({exc.errors()[0]['msg']}): reject some")
    if problems:
        raise FaqSuggestionConflict("; ".join(problems))
    for entry_id, entry in updated.items():
        for name, value in _row_values(entry, revision).items():
            setattr(entries[entry_id], name, value)
    return sorted(updated)
