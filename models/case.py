"""What a case's steps put in its context, typed.

The context is the part of a case the read model shows as it is (``ticket.context``): the
customer 360, the FAQ bot's suggestions, the SLA summary, refunds, and what a case type adds.
Steps build these models and store their JSON form, so what agents and the API read has one
shape, written in one place.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class SlaSummary(BaseModel):
    policy: dict = Field(description="The policy that matched: priority, department, tier and its targets.")
    status: str = Field(description="The clock: running, paused or stopped.")
    first_response_due: str | None = None
    resolution_due: str | None = None
    breached: list[str] = Field(default_factory=list, description="Targets already breached.")


class FaqSuggestion(BaseModel):
    entry_id: str
    question: str
    score: float = Field(description="What ranks the entries: semantic plus weighted lexical similarity.")
    semantic_score: float | None = None
    lexical_score: float | None = None


class FaqContext(BaseModel):
    """What the FAQ bot said of the case: its decision and the entries it would suggest."""

    index_version: str | None = None
    decision: str
    confidence: float | None = None
    suggestions: list[FaqSuggestion] = Field(default_factory=list)
    answer: str | None = Field(default=None, description="The best entry's answer: rendered for this ticket, or "
                               "the template itself when the ticket lacks a field it needs.")
    reason: str | None = Field(default=None, description="What, besides confidence, keeps the answer from being "
                               "sent, e.g. 'needs shipment.eta, which this ticket does not have'.")
