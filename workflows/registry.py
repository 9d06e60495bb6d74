"""The kinds of case ticketflow runs, and what each declares about itself.

A case type is a workflow class plus what the rest of the system needs to know about it
without reading its code: the name callers open it by (`POST /cases/{name}`), the body that
opens one and the workflow input made from it, the prefix of its workflow ids, the department that works it unless triage says
otherwise, and per kind of human task the outcomes an agent may choose. Workers run every
registered workflow; the API lists the types with their input's JSON Schema
(`GET /case-types`) and opens them.

Registering is one call, `register(CaseType(...))`, in the module that defines the
workflow, anywhere in the `workflows` package (every module there is imported when the
registry is first read); `workflows/ticket.py` registers the support ticket. The registry holds no state
that changes after import, so it is safe to share with the workflow sandbox.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel

NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


class CaseTypeError(ValueError):
    """A case type that contradicts itself or another one."""


@dataclass(frozen=True)
class CaseType:
    name: str  # lower-case words joined by hyphens, e.g. "support-ticket"; the URL segment
    title: str
    description: str
    workflow: type  # the @workflow.defn class
    create_model: type[BaseModel]  # the body of POST /cases/{name}
    input_model: type[BaseModel]  # what the workflow's run takes: the body plus what intake adds
    id_prefix: str  # workflow ids are "<id_prefix>-<case id>"
    default_department: str
    # Per kind of human task, the outcomes an agent may choose; the first is the usual one.
    task_outcomes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Fields of the workflow input decided at intake from the deployment's settings (a
    # policy file, say): called by the API with its Settings, frozen into each case.
    intake: Callable[[Any], dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        if not NAME.match(self.name):
            raise CaseTypeError(f"case type name {self.name!r}: use lower-case words joined by hyphens")
        if not NAME.match(self.id_prefix):
            raise CaseTypeError(f"case type {self.name}: id prefix {self.id_prefix!r}: use lower-case words "
                                "joined by hyphens")
        if not getattr(self.workflow, "__temporal_workflow_definition", None):
            raise CaseTypeError(f"case type {self.name}: {self.workflow.__name__} is not a @workflow.defn class")
        declared = getattr(self.workflow, "CASE_TYPE", self.name)
        if declared != self.name:
            raise CaseTypeError(f"case type {self.name}: {self.workflow.__name__}.CASE_TYPE says {declared!r}; "
                                "the read model files its cases under that name, so the two must agree")
        for kind, outcomes in self.task_outcomes.items():
            if not outcomes:
                raise CaseTypeError(f"case type {self.name}: task kind {kind!r} has no outcomes")
            if len(set(outcomes)) != len(outcomes):
                raise CaseTypeError(f"case type {self.name}: task kind {kind!r} lists an outcome twice")
        object.__setattr__(self, "task_outcomes",
                           MappingProxyType({kind: tuple(str(o) for o in outcomes)
                                             for kind, outcomes in self.task_outcomes.items()}))

    def workflow_id(self, case_id: str) -> str:
        return f"{self.id_prefix}-{case_id}"

    def outcomes_for(self, task_kind: str) -> tuple[str, ...]:
        try:
            return self.task_outcomes[task_kind]
        except KeyError:
            raise CaseTypeError(f"case type {self.name} has no task kind {task_kind!r}: it has "
                                f"{', '.join(sorted(self.task_outcomes)) or 'none'}") from None

    def input_schema(self) -> dict[str, Any]:
        return self.create_model.model_json_schema()


_registry: dict[str, CaseType] = {}


def register(case_type: CaseType) -> CaseType:
    """Add a case type; registering the same one again (a module imported twice) is a no-op."""
    existing = _registry.get(case_type.name)
    if existing is not None:
        if existing.workflow.__qualname__ == case_type.workflow.__qualname__:
            return existing
        raise CaseTypeError(f"case type {case_type.name} is registered already, by {existing.workflow.__name__}")
    for other in _registry.values():
        if other.id_prefix == case_type.id_prefix:
            raise CaseTypeError(f"case types {other.name} and {case_type.name} share the id prefix "
                                f"{case_type.id_prefix!r}: their workflow ids would collide")
    _registry[case_type.name] = case_type
    return case_type


def case_types() -> list[CaseType]:
    """Every registered case type, by name."""
    _load_builtin()
    return [_registry[name] for name in sorted(_registry)]


def get(name: str) -> CaseType:
    _load_builtin()
    try:
        return _registry[name]
    except KeyError:
        raise CaseTypeError(f"unknown case type {name!r}: known are {', '.join(sorted(_registry))}") from None


def workflows() -> list[type]:
    return [case_type.workflow for case_type in case_types()]


_discovered = False


def _load_builtin() -> None:
    """Import every module of the `workflows` package once: a case type registers itself when
    its module is imported, so a new one is found by being there."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    import workflows

    for module in pkgutil.iter_modules(workflows.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"workflows.{module.name}")
