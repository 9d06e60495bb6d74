"""Inputs and outputs of the periodic upkeep of the read model."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field


class HousekeepingPolicy(BaseModel):
    change_feed_retention: timedelta = Field(description="Change events older than this are deleted.")


class PruneChangeFeed(BaseModel):
    before: datetime = Field(description="Delete change events recorded before this moment.")
    batch: int = Field(default=5_000, ge=1, description="Rows per transaction.")


class HousekeepingReport(BaseModel):
    before: datetime
    change_events_pruned: int
