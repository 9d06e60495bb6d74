"""What ticketflow's processes print: ticketflow's own lines and every warning or error;
not a line per HTTP request, migration plugin or model weight. `--log-format json` writes
one JSON object per line for a log collector."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from enum import StrEnum

# Chatty at INFO, and nothing a person running ticketflow acts on: kept to warnings.
QUIET_AT_INFO = ("httpx", "httpcore", "alembic", "spyne", "sentence_transformers", "urllib3", "uvicorn.access",
                 "temporalio.worker._worker", "temporalio.activity", "temporalio.workflow")


class LogFormat(StrEnum):
    text = "text"
    json = "json"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(), "level": record.levelname,
                "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(*, verbose: bool = False, log_format: LogFormat = LogFormat.text) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format is LogFormat.json
                         else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in QUIET_AT_INFO:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)
