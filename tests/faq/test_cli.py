"""`ticketflow faq`: import (all or nothing), export, ask, and the review of suggestions, against the test
database."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import faq.knowledge_base as kb
from activities.readmodel import ReadModelActivities
from cli.main import app
from faq import learning
from faq.io import entries_to_csv, parse_entries_located
from models.db import Database
from models.faq import FaqSuggestionStatus
from settings import get_settings
from tests.faq.conftest import KNOWLEDGE_BASE
from tests.faq.knowledge_base_helpers import reset_knowledge_base
from tests.faq.learning_helpers import judged


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


@pytest.mark.slow
def test_publish_rebuild_builds_the_published_revision_again(ticketflow, db: Database, encoder):
    db.call(kb.import_entries, parse_entries_located(entries_to_csv(KNOWLEDGE_BASE), "csv"))
    first = ticketflow("faq", "publish")
    published = db.call(kb.kb_state)

    again = ticketflow("faq", "publish")
    rebuilt = ticketflow("faq", "publish", "--rebuild")

    state = db.call(kb.kb_state)
    assert first.exit_code == again.exit_code == rebuilt.exit_code == 0, rebuilt.output
    assert db.call(kb.kb_state).revision == state.published_revision == published.revision + 1
    assert state.current_version == published.current_version  # same entries, model and settings: same version


def test_suggestions_are_listed_and_a_review_naming_a_reviewed_one_changes_nothing(ticketflow, db: Database):
    db.call(kb.import_entries, parse_entries_located(entries_to_csv(KNOWLEDGE_BASE), "csv"))
    projection = ReadModelActivities(db)
    judged(projection, "Card gone", "left it on the bus", "helpful")
    judged(projection, "Card", "blocked at the ATM", "not_helpful")
    variant, evidence = (s.id for s in db.call(learning.list_suggestions, limit=10)[0])

    listed = ticketflow("faq", "suggestions")
    rejected = ticketflow("faq", "review", "--reject", str(variant))
    refused = ticketflow("faq", "review", "--reject", str(evidence), "--accept", str(variant))
    nothing = ticketflow("faq", "review")

    assert listed.exit_code == 0
    assert f"{variant:>6} + card-lost" in listed.output and "'Card gone left it on the bus'" in listed.output
    assert f"{evidence:>6} - card-lost" in listed.output
    assert rejected.exit_code == 0 and "accepted 0, rejected 1" in rejected.output
    assert refused.exit_code == 1 and f"suggestion {variant} (rejected) was reviewed already" in refused.output
    assert nothing.exit_code == 2 and "nothing to review" in nothing.output
    [still_pending] = db.call(learning.list_suggestions, limit=10, status=FaqSuggestionStatus.pending)[0]
    assert still_pending.id == evidence


@pytest.mark.slow
def test_accepting_from_the_command_line_publishes_the_new_variant(ticketflow, db: Database, encoder):
    db.call(kb.import_entries, parse_entries_located(entries_to_csv(KNOWLEDGE_BASE), "csv"))
    judged(ReadModelActivities(db), "Card gone", "left it on the bus", "helpful")
    [suggestion] = db.call(learning.list_suggestions, limit=10)[0]

    accepted = ticketflow("faq", "review", "--accept", str(suggestion.id))

    state = db.call(kb.kb_state)
    assert accepted.exit_code == 0, accepted.output
    assert "accepted 1, rejected 0; new question variants in card-lost" in accepted.output
    assert f"index version {state.current_version} answers for knowledge-base revision {state.revision}" \
        in accepted.output
    assert "Card gone left it on the bus" in db.call(kb.get_entry, "card-lost").questions
