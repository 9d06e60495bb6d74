"""Schema changes go through Alembic: the migrated database must match the models exactly,
on every backend, and migrations must also run backwards."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from migrations import alembic_config, register_tables, upgrade
from models.db import Database


# Alembic cannot compare indexes on expressions (here `priority_rank DESC`); they are
# checked by name only.
EXPRESSION_INDEXES = {"ix_task_inbox_priority"}


def _is_expression_index(diff) -> bool:  # noqa: ANN001
    return diff[0] in ("add_index", "remove_index") and diff[1].name in EXPRESSION_INDEXES


def test_migrations_match_the_models(db: Database):
    register_tables()
    with db.engine.connect() as conn:
        drift = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
        existing = {ix["name"] for ix in sa.inspect(conn).get_indexes("task")}
    assert EXPRESSION_INDEXES <= existing
    drift = [d for d in drift if not _is_expression_index(d)]
    assert drift == [], "models and migrations differ: add an Alembic migration under migrations/versions"


def test_migrations_downgrade_and_upgrade_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'roundtrip.db'}"
    upgrade(url)
    command.downgrade(alembic_config(url), "base")
    upgrade(url)
