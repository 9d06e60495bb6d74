"""`ticketflow faq`: import (all or nothing), export and ask, against the test database."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import faq.knowledge_base as kb
from cli.main import app
from models.db import Database
from settings import get_settings
from tests.faq.knowledge_base_helpers import reset_knowledge_base


@pytest.fixture
def ticketflow(db: Database, monkeypatch):
    """Runs `ticketflow ...` in this process, on the test database."""
    reset_knowledge_base(db)
    monkeypatch.setenv("TICKETFLOW_DATABASE_URL", db.url)
    get_settings.cache_clear()
    runner = CliRunner()
    yield lambda *args: runner.invoke(app, list(args), catch_exceptions=False)
    get_settings.cache_clear()


def test_a_bad_file_is_rejected_with_its_lines_and_nothing_is_imported(ticketflow, db: Database, tmp_path):
    bad = tmp_path / "faq.csv"
    bad.write_text(
        "id,questions,answer,department\n"
        "returns,How do I return an item?,Use the return label.,general\n"
        "bad id,Where is my parcel?,Track it.,logistics\n"
        "refund,,Within 3 days.,Billing\n",
        encoding="utf-8",
    )

    result = ticketflow("faq", "import", str(bad))

    assert result.exit_code == 1
    assert "rejected, nothing imported (3 problem(s))" in result.output
    assert "line 3: id: 'bad id'" in result.output
    assert "line 4: questions:" in result.output and "line 4: department: 'Billing'" in result.output
    assert db.call(kb.all_entries) == [] and db.call(kb.kb_state).revision == 0


def test_a_file_whose_format_cannot_be_told_is_refused(ticketflow, tmp_path):
    unknown = tmp_path / "faq.txt"
    unknown.write_text("[]", encoding="utf-8")

    result = ticketflow("faq", "import", str(unknown))

    assert result.exit_code == 2 and "--format csv or --format json" in result.output


@pytest.mark.slow
def test_import_publishes_ask_answers_and_export_gives_the_file_back(ticketflow, db: Database, encoder, tmp_path):
    source = tmp_path / "demo.json"
    source.write_bytes(kb.DEMO_KB.read_bytes())

    imported = ticketflow("faq", "import", str(source))
    asked = ticketflow("faq", "ask", "I was charged twice for one order")
    exported = ticketflow("faq", "export", "--format", "json", "-o", str(tmp_path / "out.json"))

    version = db.call(kb.kb_state).current_version
    assert imported.exit_code == 0, imported.output
    assert "19 created" in imported.output and f"index version {version}" in imported.output
    assert asked.exit_code == 0
    assert "best entry     double-charge (billing)" in asked.output
    assert "decision       answer" in asked.output and f"index version  {version}" in asked.output
    assert "threshold" in asked.output and "alternatives" in asked.output
    assert exported.exit_code == 0
    by_id = sorted(json.loads(source.read_text()), key=lambda entry: entry["id"])
    assert json.loads((tmp_path / "out.json").read_text()) == by_id
