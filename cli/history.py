"""`ticketflow history`: what happened on a ticket, and proof that today's code would decide
the same way (replay)."""

from __future__ import annotations

import asyncio
import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated

import typer
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory

from encryption import data_converter
from settings import get_settings

history_app = typer.Typer(help="Read, export and replay a ticket's workflow history (for audits).",
                          no_args_is_help=True)


async def _fetch(ticket_id: str) -> WorkflowHistory:
    """The latest run's history of the ticket's workflow, whatever its case type; from the
    archive store once Temporal no longer has it."""
    from activities.archive import archive_store
    from temporalio.service import RPCError, RPCStatusCode

    from worker import connect
    from workflows import registry

    client = await connect(get_settings())
    for case_type in registry.case_types():
        try:
            return await client.get_workflow_handle(case_type.workflow_id(ticket_id)).fetch_history()
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
    archived = archive_store(get_settings()).get(ticket_id)
    if archived is not None:
        typer.echo(f"(from the archive: {archived.workflow_id}, {len(archived.runs)} run(s), "
                   f"{archived.event_count} events; the latest run follows)", err=True)
        return archived.histories()[-1]
    typer.echo(f"error: no ticket {ticket_id} in Temporal (namespace {get_settings().temporal_namespace}): "
               "check the id (nor is it in the archive store)", err=True)
    raise typer.Exit(1)


def _payload_text(payloads) -> str:  # noqa: ANN001
    values = []
    for p in _decoded(payloads.payloads if payloads else []):
        try:
            values.append(json.loads(p.data))
        except ValueError:
            values.append(f"<{len(p.data)} bytes>")
    return json.dumps(values[0] if len(values) == 1 else values, default=str)[:300]


@lru_cache(maxsize=1)
def _codec():  # noqa: ANN202
    return data_converter(get_settings()).payload_codec


def _decoded(payloads) -> list:  # noqa: ANN001
    """Payloads as the workflow saw them: decrypted when the deployment encrypts."""
    codec = _codec()
    return codec.decode_sync(payloads) if codec is not None else list(payloads)


def _failure_text(failure) -> str:  # noqa: ANN001
    """A failure's message; encrypted deployments keep it in the encoded attributes."""
    if failure.HasField("encoded_attributes"):
        [attributes] = _decoded([failure.encoded_attributes])
        return json.loads(attributes.data).get("message", failure.message)
    return failure.message


def describe(event) -> str:  # noqa: ANN001 - a temporal.api.history.v1.HistoryEvent
    kind = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
    attrs = ""
    if event.HasField("activity_task_scheduled_event_attributes"):
        a = event.activity_task_scheduled_event_attributes
        attrs = f"{a.activity_type.name} {_payload_text(a.input)}"
    elif event.HasField("activity_task_completed_event_attributes"):
        attrs = _payload_text(event.activity_task_completed_event_attributes.result)
    elif event.HasField("activity_task_failed_event_attributes"):
        attrs = _failure_text(event.activity_task_failed_event_attributes.failure)
    elif event.HasField("workflow_execution_signaled_event_attributes"):
        a = event.workflow_execution_signaled_event_attributes
        attrs = f"{a.signal_name} {_payload_text(a.input)}"
    elif event.HasField("workflow_execution_update_accepted_event_attributes"):
        req = event.workflow_execution_update_accepted_event_attributes.accepted_request
        attrs = f"{req.input.name} {_payload_text(req.input.args)}"
    elif event.HasField("timer_started_event_attributes"):
        attrs = f"fires after {event.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()}"
    elif event.HasField("workflow_execution_started_event_attributes"):
        attrs = _payload_text(event.workflow_execution_started_event_attributes.input)
    return f"{event.event_id:>5}  {event.event_time.ToDatetime():%Y-%m-%d %H:%M:%S}  {kind:<40} {attrs}"


@history_app.command("show")
def show(ticket_id: str) -> None:
    """Print every event of a ticket's workflow: what it did, in order, with inputs."""
    history = asyncio.run(_fetch(ticket_id))
    for event in history.events:
        typer.echo(describe(event))


@history_app.command("export")
def export(ticket_id: str, output: Annotated[Path, typer.Option("--output", "-o")]) -> None:
    """Save a ticket's workflow history as JSON (input for `replay`, or for the record)."""
    history = asyncio.run(_fetch(ticket_id))
    output.write_text(history.to_json())
    typer.echo(f"{len(history.events)} events written to {output}")


async def _replay_checked(history: WorkflowHistory) -> list[str]:
    """What today's code does differently, commands and decisions (empty: nothing)."""
    from audit.archive import record_for
    from audit.replay import replay_tickets
    from worker import workflow_runner, workflows

    record = record_for(ticket_id=history.workflow_id, case_type="?", workflow_type="?",
                        runs=[(history.run_id, history)])
    async for outcome in replay_tickets([record], workflows=workflows(), converter=data_converter(get_settings()),
                                        runner=workflow_runner("audit")):
        return outcome.details if outcome.result != "ok" else []
    return []


@history_app.command("replay")
def replay(source: Annotated[str, typer.Argument(help="A ticket id, or a JSON file from `history export`.")]) -> None:
    """Re-run today's workflow code against a recorded history, checking its commands and
    what they carry (refund amounts, messages, queues, SLA due times).

    Exit 0: the code makes exactly the decisions recorded; otherwise it prints where it diverges.
    """
    path = Path(source)
    if path.exists():
        try:
            history = WorkflowHistory.from_json(f"ticket-{path.stem}", path.read_text())
        except (ValueError, KeyError) as exc:
            typer.echo(f"error: {path} is not a history from `history export` ({exc})", err=True)
            raise typer.Exit(2) from None
    else:
        history = asyncio.run(_fetch(source))
    differences = asyncio.run(_replay_checked(history))
    if differences:
        typer.echo("replay FAILED: " + "\n  ".join(differences), err=True)
        raise typer.Exit(1)
    typer.echo(f"replay OK: {len(history.events)} events, same commands and decisions")
