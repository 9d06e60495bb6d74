"""FAQ entries and FAQ answers: the contracts of the FAQ matching engine, the HTTP API's
schemas of the knowledge base, and its tables.

The pydantic models cross Temporal (activity inputs and outputs) and the HTTP API. Evolve
them by adding fields with defaults. The SQLModel tables at the end hold the knowledge base
and what tickets taught it (suggestions awaiting review) in the database; they never cross
Temporal.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, field_validator, model_validator
from sqlalchemy import JSON, Column, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from models.faq_template import FaqAnswerContext, check_answer

# The CSV format keeps all variants (and all tags) of an entry in one cell, separated by
# "|" (see faq/io.py), so an item cannot contain "|". Runs of whitespace, line breaks
# included, become one space: a question variant is one line.
LIST_SEPARATOR = "|"


def _clean_items(items: list[str], what: str, max_length: int) -> list[str]:
    cleaned: list[str] = []
    seen: dict[str, int] = {}
    for position, item in enumerate(items):
        text = " ".join(item.split())
        if not text:
            raise ValueError(f"{what} {position + 1} is empty")
        if len(text) > max_length:
            raise ValueError(f"{what} {position + 1} is longer than {max_length} characters")
        if LIST_SEPARATOR in text:
            raise ValueError(f"{what} {position + 1} contains {LIST_SEPARATOR!r}, which is not allowed: {text!r}")
        key = text.casefold()
        if key in seen:
            raise ValueError(f"{what} {position + 1} repeats {what} {seen[key] + 1}: {text!r}")
        seen[key] = position
        cleaned.append(text)
    return cleaned


def _questions(value: list[str]) -> list[str]:
    return _clean_items(value, "question", 1000)


def _tags(value: list[str]) -> list[str]:
    return _clean_items(value, "tag", 50)


def _answer_has_text(value: str) -> str:
    if not value.strip():
        raise ValueError("answer is blank")
    return value


# The content of an entry, shared by FaqEntry and FaqEntryUpdate (which takes its id from the URL).
Questions = Annotated[
    list[str], Field(min_length=1, max_length=1000, description="question variants"), AfterValidator(_questions)
]
# An answer with "{{" or "{%" is a template over the ticket's facts (models/faq_template.py),
# checked here so that a bad one is refused when it is saved or imported, not when a customer asks.
Answer = Annotated[
    str, Field(min_length=1, max_length=20_000), AfterValidator(_answer_has_text), AfterValidator(check_answer)
]
Department = Annotated[str, Field(min_length=1, max_length=50, pattern=r"^[a-z0-9_-]+$")]
Language = Annotated[str, Field(min_length=2, max_length=35, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{1,8})*$")]
Tags = Annotated[list[str], Field(max_length=50), AfterValidator(_tags)]


class FaqEntry(BaseModel):
    """One FAQ entry: the ways customers ask one question, and the answer to send them."""

    id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
    questions: Questions
    answer: Answer
    department: Department = "general"
    language: Language = "en"
    tags: Tags = Field(default_factory=list)
    enabled: bool = True


class FaqImportProblem(BaseModel):
    """One thing wrong in an imported FAQ file, located so that a person can fix it."""

    line: int | None = Field(default=None, description="line in the file (CSV: 1 is the header)")
    index: int | None = Field(default=None, description="position in the JSON array, from 0")
    field: str | None = None
    message: str

    def __str__(self) -> str:
        where = []
        if self.index is not None:
            where.append(f"entry [{self.index}]")
        if self.line is not None:
            where.append(f"line {self.line}")
        place = ", ".join(where) if where else "file"
        column = f" {self.field}:" if self.field else ""
        return f"{place}:{column} {self.message}"


class ThresholdPolicy(BaseModel):
    """Confidence a match needs before the bot answers on its own; below it, a human does.

    A threshold of 1.0 means "never answer automatically" (confidences stay below 1).
    """

    default: float = Field(default=1.0, ge=0.0, le=1.0)
    per_department: dict[str, float] = Field(default_factory=dict)

    @field_validator("per_department")
    @classmethod
    def _thresholds_are_probabilities(cls, value: dict[str, float]) -> dict[str, float]:
        for department, threshold in value.items():
            if not 0.0 <= threshold <= 1.0:
                raise ValueError(f"threshold for {department!r} must be between 0 and 1, got {threshold}")
        return value

    def threshold_for(self, department: str | None) -> float:
        if department is not None and department in self.per_department:
            return self.per_department[department]
        return self.default


class FaqDecision(StrEnum):
    answer = "answer"
    escalate = "escalate"


class FaqQuery(BaseModel):
    """A customer's question to match against the FAQ."""

    text: str = Field(min_length=1, max_length=5000)
    department: str | None = Field(default=None, description="only match entries of this department")
    language: str | None = Field(default=None, description="only match entries in this language")
    index_version: str | None = Field(default=None, description="pin an index version; None: the current one")


class FaqTicketQuery(FaqQuery):
    """A ticket's question, with the facts a templated answer may use (the answer_faq input)."""

    context: FaqAnswerContext | None = Field(
        default=None, description="the ticket's order, parcel and customer; None: nothing was gathered"
    )


class FaqMatch(BaseModel):
    entry_id: str
    department: str
    question: str = Field(description="the entry's question variant closest to the query")
    score: float = Field(description="similarity used for ranking (semantic + weighted lexical)")
    semantic_score: float
    lexical_score: float


class FaqResult(BaseModel):
    """The best FAQ entry for a query, how sure we are, and whether to answer or escalate."""

    index_version: str
    decision: FaqDecision
    best: FaqMatch | None = None
    confidence: float | None = Field(
        default=None, description="calibrated probability that best is right; None if the index is not calibrated"
    )
    threshold: float | None = Field(default=None, description="the confidence threshold that decided")
    answer: str | None = Field(
        default=None, description="the best entry's answer, also when escalating; a template is rendered for the "
        "ticket, or left as written when the ticket lacks a field it needs (see missing_fields)"
    )
    alternatives: list[FaqMatch] = Field(default_factory=list, description="the next best entries, at most 3")
    missing_fields: list[str] = Field(
        default_factory=list, description="template fields the best entry's answer needs that the ticket lacks"
    )
    escalation_reason: str | None = Field(
        default=None, description="why the bot escalates beyond confidence, e.g. a template field the ticket lacks"
    )


class FaqIndexInfo(BaseModel):
    version: str
    model_name: str
    dimension: int
    entries: int
    enabled_entries: int
    question_variants: int
    approximate_search: bool
    ivf_lists: int | None = None
    ivf_probes: int | None = None
    lexical_weight: float
    calibrated: bool
    thresholds: ThresholdPolicy


class FaqCalibrationReport(BaseModel):
    """What calibration measured on held-out questions (never on test data)."""

    samples: int = Field(description="held-out questions")
    top1_accuracy: float | None = Field(description="on the held-out questions; None without any")
    accuracy_by_lexical_weight: dict[str, float]
    lexical_weight: float
    target_precision: float
    thresholds: ThresholdPolicy
    precision_at_threshold: float | None = Field(
        description="of the automatic answers, out-of-scope examples included; None if none answered"
    )
    coverage_at_threshold: float | None = Field(description="share of held-out questions answered automatically")
    out_of_scope_examples: int = Field(default=0, description="held-out questions ranked without their own entry")
    out_of_scope_answered: float | None = Field(default=None, description="share of those answered (wrongly)")
    out_of_scope_recall: float | None = Field(
        default=None, description="share of all held-out questions, ranked without their own entry, left unanswered"
    )
    evidence_examples: int = Field(default=0, description="reviewed verdicts and resolutions used")
    prior: bool = Field(default=False, description="blended with the prior confidence model (faq.prior)")
    brier_score: float | None = None


# --- the knowledge base over HTTP ------------------------------------------------------------


class FaqEntryUpdate(BaseModel):
    """An entry's new content; its id comes from the URL. Fields left out take their defaults."""

    questions: Questions
    answer: Answer
    department: Department = "general"
    language: Language = "en"
    tags: Tags = Field(default_factory=list)
    enabled: bool = True


class FaqEntryPublic(FaqEntry):
    updated_at: datetime
    kb_revision: int = Field(description="the knowledge-base revision that last changed this entry")


class FaqEntryPage(BaseModel):
    items: list[FaqEntryPublic]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; None on the last page")


class FaqThresholdOverrides(BaseModel):
    """Thresholds set by hand; they replace the calibrated ones they name, in every later version.

    ``default`` None keeps the calibrated default. A department left out keeps its calibrated
    threshold (or the default). Send ``{}`` to go back to the calibrated thresholds.
    """

    default: float | None = Field(default=None, ge=0.0, le=1.0)
    per_department: dict[
        Annotated[str, Field(min_length=1, max_length=50, pattern=r"^[a-z0-9_-]+$")],
        Annotated[float, Field(ge=0.0, le=1.0)],
    ] = Field(default_factory=dict)

    def apply(self, calibrated: ThresholdPolicy) -> ThresholdPolicy:
        return ThresholdPolicy(
            default=calibrated.default if self.default is None else self.default,
            per_department={**calibrated.per_department, **self.per_department},
        )


class FaqPublication(BaseModel):
    """Which index version answers for the knowledge base after a change."""

    kb_revision: int = Field(description="the knowledge-base revision the change made (or the current one)")
    status: Literal["published", "pending", "failed"] = Field(
        description="published: `index_version` includes the change; pending: being built, "
        "answers still come from `index_version`; failed: see `detail`"
    )
    index_version: str | None = Field(description="the version answering now; None before the first one")
    published_revision: int = Field(description="the knowledge-base revision `index_version` was built from")
    detail: str | None = None


class FaqEntryChange(BaseModel):
    entry: FaqEntryPublic = Field(description="the entry as it is now (for a delete: as it was)")
    publication: FaqPublication


class FaqImportResult(BaseModel):
    created: int
    updated: int
    unchanged: int
    deleted: int = Field(description="entries not in the file, removed because of mode=replace")
    publication: FaqPublication


class FaqThresholdsChange(BaseModel):
    overrides: FaqThresholdOverrides
    publication: FaqPublication


class FaqIndexVersionPublic(BaseModel):
    version: str
    kb_revision: int = Field(description="the knowledge-base revision it was built from")
    created_at: datetime
    published_at: datetime = Field(description="when it last became the current version")
    entries: int
    calibrated: bool
    build_seconds: float
    artifact_bytes: int = Field(description="size of the saved index in the database; 0 once pruned")
    info: FaqIndexInfo
    calibration: FaqCalibrationReport | None = Field(description="None if nothing calibrated it (an empty knowledge base)")


class FaqIndexStatus(BaseModel):
    kb_revision: int = Field(description="bumped by every change to the knowledge base")
    publication: FaqPublication
    published_at: datetime | None
    current: FaqIndexVersionPublic | None
    threshold_overrides: FaqThresholdOverrides


class FaqAsk(FaqQuery):
    """The body of POST /faq/ask: a FaqQuery whose text is called ``question``."""

    text: str = Field(alias="question", min_length=1, max_length=5000)


class FaqPublishRequest(BaseModel):
    """Input of the publish_faq_index activity: publish at least this knowledge-base revision."""

    kb_revision: int = Field(ge=0)


# --- the learning loop: what tickets teach the knowledge base ----------------------------------


class FaqSuggestionSource(StrEnum):
    customer_verdict = "customer_verdict"  # the customer judged the bot's own answer
    agent_resolution = "agent_resolution"  # an agent resolved a ticket the bot only suggested for


class FaqSuggestionStatus(StrEnum):
    pending = "pending"
    accepted = "accepted"
    rejected = "rejected"


class FaqEvidence(BaseModel):
    """One reviewed observation of the bot at work: for ``question`` it chose (or suggested
    first) ``entry_id``, and that was ``correct`` or not. Calibration may use it besides the
    variants it holds out of the entries."""

    question: str
    entry_id: str
    correct: bool
    source: str


class FaqSuggestionPublic(BaseModel):
    """A customer's question tied to an FAQ entry by a ticket, waiting for an editor's review.

    ``correct`` true: the entry answered it (accepting adds the question as a variant of the
    entry); false: the entry was the wrong answer (accepting keeps that as calibration
    evidence). Either way an accepted one is calibration evidence from the next index on."""

    id: int
    question: str
    entry_id: str
    correct: bool
    source: FaqSuggestionSource
    ticket_id: str
    task_id: str | None = Field(default=None, description="the agent's task, for an agent's resolution")
    conflict_entry_id: str | None = Field(
        default=None, description="another entry that already asks this question: accepting fails until it no longer "
        "does, so reject it or move the question")
    status: FaqSuggestionStatus
    created_at: datetime
    reviewed_at: datetime | None = None
    reviewed_by: str | None = None


class FaqSuggestionPage(BaseModel):
    items: list[FaqSuggestionPublic]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; None on the last page")


# Suggestion ids are 32-bit integer keys (PostgreSQL INTEGER): a larger one is no id at all.
SuggestionIds = Annotated[list[Annotated[int, Field(ge=1, le=2**31 - 1)]], Field(default_factory=list, max_length=1000)]


class FaqSuggestionReview(BaseModel):
    """An editor's decisions on pending suggestions, taken together or not at all."""

    accept: SuggestionIds
    reject: SuggestionIds

    @field_validator("accept", "reject")
    @classmethod
    def _each_once(cls, ids: list[int]) -> list[int]:
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"suggestion(s) {', '.join(map(str, repeated))} listed more than once")
        return ids

    @model_validator(mode="after")
    def _something_and_no_id_twice(self) -> FaqSuggestionReview:
        if not self.accept and not self.reject:
            raise ValueError("nothing to review: list suggestion ids in `accept` or `reject`")
        both = sorted(set(self.accept) & set(self.reject))
        if both:
            raise ValueError(f"suggestion(s) {', '.join(map(str, both))} are in both `accept` and `reject`: "
                             "pick one")
        return self


class FaqSuggestionReviewResult(BaseModel):
    accepted: list[FaqSuggestionPublic]
    rejected: list[FaqSuggestionPublic]
    entries_changed: list[str] = Field(description="entries that gained question variants")
    publication: FaqPublication = Field(description="the index version with the accepted suggestions (a review "
                                                    "that only rejects changes no index)")


# --- tables ------------------------------------------------------------------------------------


class FaqEntryRow(SQLModel, table=True):
    __tablename__ = "faq_entry"

    id: str = SQLField(primary_key=True, max_length=100)
    questions: list[str] = SQLField(sa_column=Column(JSON, nullable=False))
    answer: str = SQLField(sa_column=Column(Text, nullable=False))
    department: str = SQLField(max_length=50, index=True)
    language: str = SQLField(max_length=35)
    tags: list[str] = SQLField(default_factory=list, sa_column=Column(JSON, nullable=False))
    enabled: bool = True
    updated_at: datetime
    kb_revision: int

    def entry(self) -> FaqEntry:
        return FaqEntry.model_validate(self.model_dump(include=set(FaqEntry.model_fields)))

    def public(self) -> FaqEntryPublic:
        return FaqEntryPublic.model_validate(self.model_dump())


class FaqIndexVersionRow(SQLModel, table=True):
    """A published index version. ``artifact`` is the saved FaqIndex (``FaqIndex.to_bytes``),
    kept in the database so that every worker host loads the same bytes; old artifacts are
    pruned (set to None), their rows stay as a record of what answered when."""

    __tablename__ = "faq_index_version"

    version: str = SQLField(primary_key=True, max_length=20)
    kb_revision: int = SQLField(index=True)
    created_at: datetime
    published_at: datetime = SQLField(index=True, description="when it last became the current version")
    entries: int
    calibrated: bool
    build_seconds: float
    info: dict[str, Any] = SQLField(sa_column=Column(JSON, nullable=False))
    calibration: dict[str, Any] | None = SQLField(default=None, sa_column=Column(JSON, nullable=True))
    artifact: bytes | None = SQLField(default=None, sa_column=Column(LargeBinary, nullable=True))
    artifact_bytes: int = 0

    def public(self) -> FaqIndexVersionPublic:
        return FaqIndexVersionPublic.model_validate(self.model_dump(exclude={"artifact"}))


class FaqKnowledgeBaseRow(SQLModel, table=True):
    """The one row saying which revision the knowledge base is at and which index answers.

    Every change bumps ``revision`` in the transaction that makes it (the row lock orders
    concurrent writers); publishing moves ``current_version`` forward only, by revision.
    """

    __tablename__ = "faq_knowledge_base"

    id: int = SQLField(default=1, primary_key=True)
    instance: str = SQLField(max_length=32, description="random; names this knowledge base's publish activities")
    revision: int = 0
    published_revision: int = 0
    current_version: str | None = SQLField(default=None, max_length=20)
    published_at: datetime | None = None
    publish_error: str | None = SQLField(default=None, sa_column=Column(Text, nullable=True))
    threshold_overrides: dict[str, Any] = SQLField(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime


class FaqSuggestionRow(SQLModel, table=True):
    """A suggestion (a question variant, or evidence that an entry was the wrong answer) a
    ticket produced. One per question, entry and verdict: the same question seen on many
    tickets, or a projection that runs again, adds nothing; a rejected one is not suggested
    again."""

    __tablename__ = "faq_suggestion"
    __table_args__ = (UniqueConstraint("entry_id", "question_key", "correct", name="uq_faq_suggestion_question"),)

    id: int | None = SQLField(default=None, primary_key=True)
    question: str = SQLField(sa_column=Column(Text, nullable=False))
    question_key: str = SQLField(max_length=64, description="sha256 of the question, casefolded, spaces collapsed")
    entry_id: str = SQLField(max_length=100, index=True)
    correct: bool
    source: str = SQLField(max_length=30)
    ticket_id: str = SQLField(max_length=64, index=True)
    task_id: str | None = SQLField(default=None, max_length=80)
    conflict_entry_id: str | None = SQLField(default=None, max_length=100)
    status: str = SQLField(default=FaqSuggestionStatus.pending.value, max_length=20, index=True)
    created_at: datetime
    reviewed_at: datetime | None = None
    reviewed_by: str | None = SQLField(default=None, max_length=100)

    def public(self) -> FaqSuggestionPublic:
        return FaqSuggestionPublic.model_validate(self.model_dump())

    def evidence(self) -> FaqEvidence:
        return FaqEvidence(question=self.question, entry_id=self.entry_id, correct=self.correct, source=self.source)
