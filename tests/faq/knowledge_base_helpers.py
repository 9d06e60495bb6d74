"""Helpers for tests of the knowledge base in the database (not a test module)."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, update
from sqlmodel import Session

from models.db import Database, utcnow
from models.faq import FaqEntryRow, FaqIndexVersionRow, FaqKnowledgeBaseRow, FaqSuggestionRow


def _reset(session: Session) -> None:
    session.execute(delete(FaqSuggestionRow))
    session.execute(delete(FaqEntryRow))
    session.execute(delete(FaqIndexVersionRow))
    session.execute(
        update(FaqKnowledgeBaseRow).values(
            instance=uuid.uuid4().hex, revision=0, published_revision=0, current_version=None, published_at=None,
            publish_error=None, threshold_overrides={}, updated_at=utcnow(),
        )
    )


def reset_knowledge_base(db: Database) -> Database:
    """The knowledge base as a fresh migration leaves it: no entries, no suggestions, never published.

    The session's database is shared by every test; the knowledge base is one per database."""
    db.call(_reset)
    return db
