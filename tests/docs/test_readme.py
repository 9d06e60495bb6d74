"""The README is the first thing a newcomer trusts: keep its facts true."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_every_setting_is_documented(field):
    assert f"`TICKETFLOW_{field.upper()}`" in README


def test_every_documented_setting_exists():
    import re

    documented = set(re.findall(r"`TICKETFLOW_([A-Z_]+)`", README))
    assert documented <= {f.upper() for f in Settings.model_fields} | {"TEST_POSTGRES_URL"}


@pytest.mark.parametrize("command", ["up", "worker", "api", "sandbox", "token create", "db upgrade",
                                     "history show", "history export", "history replay", "faq import",
                                     "faq export", "faq ask", "faq status", "faq publish"])
def test_documented_commands_exist(command):
    assert f"ticketflow {command}" in README
    result = CliRunner().invoke(app, [*command.split(), "--help"])
    assert result.exit_code == 0, result.output
