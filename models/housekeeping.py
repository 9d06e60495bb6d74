"""Inputs and outputs of the periodic upkeep of the read model."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field


class HousekeepingPolicy(BaseModel):
    change_feed_retention: timedelta = Field(description="Change events older than this are deleted.")
    archive_closed_tickets: bool = Field(default=False, description="Copy closed tickets' histories into the "
                                         "archive store (signed) before Temporal's retention drops them.")
    archive_lookback: timedelta = Field(default=timedelta(days=30), description="Tickets closed within this "
                                        "are looked at; keep it at least the namespace's retention.")


class PruneChangeFeed(BaseModel):
    before: datetime = Field(description="Delete change events recorded before this moment.")
    batch: int = Field(default=5_000, ge=1, description="Rows per transaction.")


class ArchiveClosed(BaseModel):
    closed_since: datetime | None = Field(default=None, description="Only tickets closed at or after this.")
    batch: int = Field(default=1_000, ge=1, description="Tickets archived per run at most; the next run goes on.")


class ArchiveReport(BaseModel):
    archived: int = 0
    already: int = Field(default=0, description="Closed tickets found in the store already.")
    skipped: list[str] = Field(default_factory=list, description="Workflows gone before they could be read.")


class HousekeepingReport(BaseModel):
    before: datetime
    change_events_pruned: int
    archive: ArchiveReport | None = None
    archive_error: str | None = None
