"""Alembic migrations of the read model. Apply with `ticketflow db upgrade` (also run by
`ticketflow up`, `ticketflow api` and `ticketflow worker` at start)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

HERE = Path(__file__).resolve().parent

# Every module that defines tables. Migrations are generated against these, and a test
# checks that the migrated schema matches them.
TABLE_MODULES = ["models.agent", "models.auth", "models.events", "models.faq", "models.task", "models.ticket"]


def register_tables() -> None:
    import importlib

    for name in TABLE_MODULES:
        importlib.import_module(name)


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    # Alembic's config is an ini parser: a literal % in a URL must be doubled.
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)
