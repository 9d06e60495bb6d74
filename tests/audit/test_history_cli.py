"""`ticketflow history` on tickets Temporal does not know."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.main import app
from settings import get_settings


@pytest.fixture
def against(dev_env, monkeypatch, tmp_path):
    monkeypatch.setenv("TICKETFLOW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TICKETFLOW_TEMPORAL_ADDRESS", dev_env.client.service_client.config.target_host)
    monkeypatch.setenv("TICKETFLOW_PAYLOAD_ENCRYPTION", "false")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.parametrize("command", ["show", "export", "replay"])
def test_an_unknown_ticket_is_one_line_not_a_traceback(against, command, tmp_path):
    args = ["history", command, "no-such-ticket"] + (["-o", str(tmp_path / "x.json")] if command == "export" else [])
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: no ticket no-such-ticket in Temporal (namespace default): check the id (nor is it in the archive "
        "store)"]


def test_a_file_that_is_not_a_history_says_so(tmp_path):
    bad = tmp_path / "notes.json"
    bad.write_text('{"hello": 1}')
    result = CliRunner().invoke(app, ["history", "replay", str(bad)])
    assert result.exit_code == 2 and "is not a history from `history export`" in result.output
