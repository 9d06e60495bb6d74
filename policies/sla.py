"""Loads the SLA configuration (business calendar and SLA policies) from sla.json.

The API loads it when a ticket opens and hands it to the workflow in its input, so a
replay sees the policy the ticket was opened under even after the file changes."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from sla.config import SlaConfig

SLA_PATH = Path(__file__).resolve().parent / "sla.json"


@lru_cache
def load_sla_config(path: Path = SLA_PATH) -> SlaConfig:
    return SlaConfig.model_validate_json(path.read_text())
