"""Intake rules: which kind of case a chat message opens.

Read from a JSON file (`TICKETFLOW_INTAKE_RULES_FILE`, default `policies/intake.json`):

    {"rules": [
        {"case_type": "return-request", "any_words": ["return", "send it back"],
         "department": "returns"}
    ]}

The first rule whose words (or `pattern`, a regular expression) match the message opens a
case of its type, in its `department` if it names one (else the type's default); a message
no rule matches opens a support ticket. Only the message that starts a conversation's case
is routed: later messages of that conversation go to its open case, whatever its type.

A rule may only name a case type that is registered and that a chat message can open: its
input needs no `case_data` a chat message cannot give. The file is checked when loaded, so a
wrong rule stops the API at start with a message saying which, rather than misroute later.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from workflows import registry

DEFAULT_CASE_TYPE = "support-ticket"


class IntakeRulesError(ValueError):
    """The intake rules file is unreadable or names something it may not."""


class IntakeRule(BaseModel):
    case_type: str
    any_words: list[str] = Field(default_factory=list, description="Words or phrases; any one matches "
                                 "(whole words, case-insensitive).")
    pattern: str | None = Field(default=None, description="A regular expression (case-insensitive).")
    department: str | None = Field(default=None, pattern=r"^[a-z0-9_-]+$")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"pattern {value!r} is not a regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _matches_something(self) -> IntakeRule:
        if not self.any_words and self.pattern is None:
            raise ValueError(f"the rule for {self.case_type} has neither any_words nor pattern: it would match nothing")
        return self

    def matches(self, text: str) -> bool:
        if self.pattern is not None and re.search(self.pattern, text, re.IGNORECASE):
            return True
        return any(re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text, re.IGNORECASE) for w in self.any_words)


class Route(BaseModel):
    case_type: registry.CaseType
    department: str
    rule: int | None  # the index of the rule that matched; None: no rule did

    model_config = {"arbitrary_types_allowed": True}


class IntakeRules(BaseModel):
    rules: list[IntakeRule] = Field(default_factory=list)

    def check(self) -> IntakeRules:
        """Every rule names a registered case type that a chat message can open."""
        for i, rule in enumerate(self.rules):
            try:
                case_type = registry.get(rule.case_type)
            except registry.CaseTypeError as exc:
                raise IntakeRulesError(f"intake rule {i + 1}: {exc}") from None
            if not chat_can_open(case_type):
                raise IntakeRulesError(f"intake rule {i + 1}: a chat message cannot open a {case_type.name}: its "
                                       "input needs case_data a message does not carry")
        return self

    def route(self, text: str) -> Route:
        for i, rule in enumerate(self.rules):
            if rule.matches(text):
                case_type = registry.get(rule.case_type)
                return Route(case_type=case_type, department=rule.department or case_type.default_department, rule=i)
        default = registry.get(DEFAULT_CASE_TYPE)
        return Route(case_type=default, department=default.default_department, rule=None)


def chat_can_open(case_type: registry.CaseType) -> bool:
    field = case_type.input_model.model_fields.get("case_data")
    return field is None or not field.is_required()


@lru_cache(maxsize=8)
def load_intake_rules(path: Path) -> IntakeRules:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise IntakeRulesError(f"intake rules file {path} does not exist") from None
    except ValueError as exc:
        raise IntakeRulesError(f"intake rules file {path} is not JSON: {exc}") from None
    try:
        return IntakeRules.model_validate(data).check()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise IntakeRulesError(f"intake rules file {path}: {problems}") from None
    except IntakeRulesError as exc:
        raise IntakeRulesError(f"intake rules file {path}: {exc}") from None
