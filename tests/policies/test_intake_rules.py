"""Intake rules: which case type a chat message opens, and a rules file checked when loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from case_probe import callback_case_type, probe_case_type
from policies.intake import IntakeRule, IntakeRules, IntakeRulesError, load_intake_rules
from settings import Settings
from workflows import registry


@pytest.fixture
def probes(monkeypatch):
    monkeypatch.setattr(registry, "_registry", dict(registry._registry))
    registry.case_types()
    registry.register(probe_case_type())
    registry.register(callback_case_type())


def write(tmp_path: Path, data) -> Path:  # noqa: ANN001
    path = tmp_path / f"rules-{len(list(tmp_path.iterdir()))}.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_the_shipped_rules_load_and_open_support_tickets():
    rules = load_intake_rules(Settings().intake_rules_file)
    route = rules.route("Where is ORD-1001?")
    assert (route.case_type.name, route.department, route.rule) == ("support-ticket", "general", None)


def test_the_first_rule_that_matches_decides(probes):
    rules = IntakeRules(rules=[
        IntakeRule(case_type="callback-request", any_words=["call me", "phone"], department="billing"),
        IntakeRule(case_type="support-ticket", pattern=r"\bORD-\d+", department="logistics"),
    ]).check()
    assert rules.route("Please CALL ME about ORD-1").case_type.name == "callback-request"
    assert rules.route("Please CALL ME about ORD-1").department == "billing"
    assert rules.route("headphones broke").case_type.name == "support-ticket"  # whole words only
    assert rules.route("headphones broke").rule is None
    route = rules.route("where is ord-77")
    assert (route.case_type.name, route.department, route.rule) == ("support-ticket", "logistics", 1)


@pytest.mark.parametrize(("data", "problem"), [
    ({"rules": [{"case_type": "nope", "any_words": ["x"]}]}, "intake rule 1: unknown case type 'nope'"),
    ({"rules": [{"case_type": "parcel-claim", "any_words": ["lost"]}]},
     "a chat message cannot open a parcel-claim: its input needs case_data"),
    ({"rules": [{"case_type": "callback-request"}]}, "neither any_words nor pattern"),
    ({"rules": [{"case_type": "callback-request", "pattern": "(unclosed"}]}, "is not a regular expression"),
    ({"rules": [{"case_type": "callback-request", "any_words": ["x"], "department": "Sales Team"}]},
     "rules.0.department"),
    ("{not json", "is not JSON"),
])
def test_a_wrong_rules_file_is_refused_saying_what_is_wrong(probes, tmp_path, data, problem):
    with pytest.raises(IntakeRulesError, match=problem.replace("(", r"\(").replace(".", r"\.")):
        load_intake_rules(write(tmp_path, data))


def test_a_missing_rules_file_stops_the_api_at_start(tmp_path, db):
    from api.main import create_app

    with pytest.raises(IntakeRulesError, match="does not exist"):
        create_app(Settings(database_url=db.url, intake_rules_file=tmp_path / "missing.json"), db=db)
