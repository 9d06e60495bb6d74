"""What the processes print: quiet third parties, and JSON lines for collectors."""

from __future__ import annotations

import json
import logging

import pytest

from cli.logs import LogFormat, configure


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name in ("httpx", "alembic"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def test_json_lines_carry_level_logger_message_and_the_error(restore_logging, capsys):
    configure(log_format=LogFormat.json)
    try:
        raise RuntimeError("the ERP timed out")
    except RuntimeError:
        logging.getLogger("ticketflow.worker").exception("refund not made")
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert (line["level"], line["logger"], line["message"]) == ("ERROR", "ticketflow.worker", "refund not made")
    assert "the ERP timed out" in line["exception"]


def test_a_line_per_request_or_migration_plugin_is_not_printed(restore_logging, capsys):
    configure()
    logging.getLogger("httpx").info("HTTP Request: POST /tickets")
    logging.getLogger("alembic.runtime.plugins").info("setup plugin x")
    logging.getLogger("httpx").warning("a retry")
    logging.getLogger("ticketflow.up").info("ticketflow is up")
    printed = capsys.readouterr().err
    assert "HTTP Request" not in printed and "setup plugin" not in printed
    assert "a retry" in printed and "ticketflow is up" in printed
