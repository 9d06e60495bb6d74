"""BANKING77 as FAQ entries, for the benchmarks: each intent is one entry whose question
variants are its distinct train.csv rows.

Data: Casanueva et al., "Efficient Intent Detection with Dual Sentence Encoders" (2020),
CC BY 4.0.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from models.faq import FaqEntry

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "banking77"


def read_rows(path: Path) -> list[tuple[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [(row["text"], row["category"]) for row in csv.DictReader(handle)]


def entry_id(intent: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.:-]", "", intent)


def department_of(intent: str) -> str:
    """BANKING77 has no departments; intent-name keywords give five, so that per-department
    thresholds are exercised."""
    for keyword, department in (
        ("top_up", "top-up"),
        ("card", "cards"),
        ("pin", "cards"),
        ("contactless", "cards"),
        ("transfer", "transfers"),
        ("exchange", "transfers"),
        ("currenc", "transfers"),
        ("cash", "cash"),
        ("atm", "cash"),
    ):
        if keyword in intent:
            return department
    return "account"


def intents_as_entries(rows: list[tuple[str, str]]) -> list[FaqEntry]:
    questions: dict[str, dict[str, str]] = {}
    for text, intent in rows:
        # A variant cannot contain "|" (the CSV list separator); one train row has one.
        text = " ".join(text.replace("|", "/").split())
        questions.setdefault(intent, {}).setdefault(text.casefold(), text)
    return [
        FaqEntry(
            id=entry_id(intent),
            questions=list(variants.values()),
            answer=f"(answer for {intent})",
            department=department_of(intent),
            language="en",
            tags=["banking77"],
        )
        for intent, variants in sorted(questions.items())
    ]


# --- measuring -------------------------------------------------------------------------------
