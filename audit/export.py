"""Choosing tickets in Temporal and writing their histories into an archive."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio import workflow as wf
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode

from audit.archive import ArchiveWriter, TicketRecord, record_for
from workflows import registry

STATUSES = {s.name.lower(): s for s in WorkflowExecutionStatus}


def workflow_type_name(cls: type) -> str:
    return wf._Definition.must_from_class(cls).name


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass
class Selection:
    """Which tickets to take. Every field narrows; none set: every ticket of every case type."""

    tickets: list[str] = field(default_factory=list)
    since: datetime | None = None  # opened at or after
    until: datetime | None = None  # opened before
    status: str | None = None  # the workflow's status: running, completed, terminated, ...
    case_type: str | None = None
    query: str | None = None  # a Temporal visibility query, ANDed with the rest

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}: use one of {', '.join(sorted(STATUSES))}")
        if self.case_type is not None:
            registry.get(self.case_type)  # raises, naming the known ones
        for t in (self.since, self.until):
            if t is not None and t.tzinfo is None:
                raise ValueError("give times with their offset, e.g. 2026-11-01T00:00:00+00:00")

    def case_types(self) -> list[registry.CaseType]:
        return [ct for ct in registry.case_types() if self.case_type is None or ct.name == self.case_type]

    def visibility_query(self) -> str:
        parts = ["(" + " OR ".join(f"WorkflowType = {_quote(workflow_type_name(ct.workflow))}"
                                   for ct in self.case_types()) + ")"]
        if self.tickets:
            ids = [ct.workflow_id(t) for t in self.tickets for ct in self.case_types()]
            parts.append("(" + " OR ".join(f"WorkflowId = {_quote(i)}" for i in ids) + ")")
        if self.since is not None:
            parts.append(f"StartTime >= {_quote(self.since.isoformat())}")
        if self.until is not None:
            parts.append(f"StartTime < {_quote(self.until.isoformat())}")
        if self.status is not None:
            parts.append(f"ExecutionStatus = {_quote(STATUSES[self.status].name.title().replace('_', ''))}")
        if self.query:
            parts.append(f"({self.query})")
        return " AND ".join(parts)

    def describe(self) -> dict[str, Any]:
        return {"tickets": self.tickets, "since": self.since.isoformat() if self.since else None,
                "until": self.until.isoformat() if self.until else None, "status": self.status,
                "case_type": self.case_type, "query": self.query, "visibility_query": self.visibility_query()}


def case_of(workflow_id: str) -> tuple[registry.CaseType, str] | None:
    """The case type and ticket id behind a workflow id, or None for a workflow that is not a case."""
    found = [ct for ct in registry.case_types() if workflow_id.startswith(ct.id_prefix + "-")]
    if not found:
        return None
    ct = max(found, key=lambda c: len(c.id_prefix))
    return ct, workflow_id[len(ct.id_prefix) + 1:]


async def selected_workflow_ids(client: Client, selection: Selection) -> list[str]:
    """Workflow ids of the selected tickets, once each (a ticket's runs share its id)."""
    seen: dict[str, None] = {}
    async for execution in client.list_workflows(selection.visibility_query(), page_size=1000):
        if case_of(execution.id) is not None:
            seen[execution.id] = None
    return list(seen)


async def fetch_runs(client: Client, workflow_id: str, latest_run_id: str | None = None
                     ) -> list[tuple[str, WorkflowHistory]]:
    """Every run of the workflow, oldest first: the latest (described, unless its id is
    given), then the run each one continued."""
    runs: list[tuple[str, WorkflowHistory]] = []
    run_id = latest_run_id or (await client.get_workflow_handle(workflow_id).describe()).run_id
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        runs.append((run_id, history))
        first = history.events[0] if history.events else None
        run_id = (first.workflow_execution_started_event_attributes.continued_execution_run_id
                  if first is not None and first.HasField("workflow_execution_started_event_attributes") else "")
    return runs[::-1]


async def fetch_record(client: Client, workflow_id: str, latest_run_id: str | None = None) -> TicketRecord:
    found = case_of(workflow_id)
    assert found is not None
    case_type, ticket_id = found
    return record_for(ticket_id=ticket_id, case_type=case_type.name,
                      workflow_type=workflow_type_name(case_type.workflow),
                      runs=await fetch_runs(client, workflow_id, latest_run_id))


@dataclass
class ExportResult:
    written: int = 0
    resumed: int = 0  # found written by an earlier, interrupted export
    missing: list[str] = field(default_factory=list)  # gone from Temporal between listing and reading
    manifest: dict[str, Any] | None = None


async def export(client: Client, selection: Selection, writer: ArchiveWriter, *, concurrency: int = 8,
                 progress: Callable[[int], None] = lambda n: None,
                 planned: Callable[[int], None] = lambda n: None) -> ExportResult:
    """Write every selected ticket not yet in `writer`'s directory. Call ``writer.seal`` after."""
    workflow_ids = await selected_workflow_ids(client, selection)
    done = writer.done()
    result = ExportResult()
    todo = []
    for wid in workflow_ids:
        found = case_of(wid)
        assert found is not None
        if found[1] in done:
            result.resumed += 1
        else:
            todo.append(wid)
    planned(len(todo))
    gate = asyncio.Semaphore(concurrency)

    async def one(wid: str) -> None:
        async with gate:
            try:
                record = await fetch_record(client, wid)
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
                result.missing.append(wid)
            else:
                await asyncio.to_thread(writer.add, record)
                result.written += 1
            progress(1)

    await asyncio.gather(*(one(w) for w in todo))
    return result
