"""`ticketflow audit`: sealed archives of many tickets' histories, and replay that checks them."""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from audit.archive import Archive, ArchiveError, ArchiveWriter, TicketRecord, read_history_file, verify
from audit.signing import (
    MissingSigningKey,
    ensure_signing_key,
    key_id,
    load_signing_key,
    public_key_from_text,
    public_key_text,
    signing_key_path,
)
from settings import get_settings

audit_app = typer.Typer(help="Archive, verify, replay and re-evaluate many tickets' histories (for auditors).",
                        no_args_is_help=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@audit_app.command("key")
def key(create: Annotated[bool, typer.Option("--create", help="Make the signing key if there is none.")] = False,
        ) -> None:
    """Print the public key that checks this deployment's archives (give it to auditors)."""
    settings = get_settings()
    if create and ensure_signing_key(signing_key_path(settings)):
        typer.echo(f"created {signing_key_path(settings)}: back it up", err=True)
    try:
        public = load_signing_key(settings).public_key()
    except MissingSigningKey as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"{public_key_text(public)}  {key_id(public)}")


def _time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _fail(f"{option}: {value!r} is not an ISO 8601 time (e.g. 2026-11-01T00:00:00+00:00)") from None
    if parsed.tzinfo is None:
        raise _fail(f"{option}: give the time with its offset, e.g. {value}+00:00")
    return parsed


@audit_app.command("export")
def export(
    output: Annotated[Path, typer.Option("--output", "-o", help="A directory, or a file ending in .tar.gz.")],
    ticket: Annotated[list[str], typer.Option("--ticket", help="A ticket id (repeat for more).")] = [],  # noqa: B006
    since: Annotated[str | None, typer.Option(help="Opened at or after (ISO 8601 with offset).")] = None,
    until: Annotated[str | None, typer.Option(help="Opened before (ISO 8601 with offset).")] = None,
    status: Annotated[str | None, typer.Option(help="Workflow status: running, completed, terminated, ...")] = None,
    case_type: Annotated[str | None, typer.Option("--case-type", help="Only this case type.")] = None,
    query: Annotated[str | None, typer.Option(help="A Temporal visibility query, ANDed with the rest.")] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Histories fetched at once.")] = 8,
) -> None:
    """Write the selected tickets' histories (no selector: every ticket) into a signed archive.

    Interrupted? Run the same command again: it keeps what was written and fetches the rest."""
    from audit.export import Selection, export as run_export
    from worker import connect

    settings = get_settings()
    try:
        selection = Selection(tickets=list(ticket), since=_time(since, "--since"), until=_time(until, "--until"),
                              status=status, case_type=case_type, query=query)
        signing = load_signing_key(settings)
        writer = ArchiveWriter(output)
    except (ValueError, LookupError, MissingSigningKey, FileExistsError) as exc:
        raise _fail(str(exc)) from None

    async def go() -> None:
        client = await connect(settings)
        bar = None

        def planned(n: int) -> None:
            nonlocal bar
            bar = typer.progressbar(length=n, label="exporting", file=sys.stderr)
            bar.__enter__()

        try:
            result = await run_export(client, selection, writer, concurrency=concurrency,
                                      progress=lambda n: bar.update(n) if bar else None, planned=planned)
        finally:
            if bar is not None:
                bar.__exit__(None, None, None)
        manifest = writer.seal(signing, selection.describe())
        resumed = f" ({result.resumed} kept from an interrupted export)" if result.resumed else ""
        typer.echo(f"{manifest['tickets']} tickets archived in {output}{resumed}, signed by {manifest['key_id']}")
        for wid in result.missing:
            typer.echo(f"  skipped {wid}: gone from Temporal while exporting", err=True)

    asyncio.run(go())


def _public_key(public_key: str | None):  # noqa: ANN202
    if public_key is None:
        try:
            return load_signing_key(get_settings()).public_key()
        except MissingSigningKey as exc:
            raise _fail(f"{exc}; or pass the deployment's public key with --public-key") from None
    text = Path(public_key).read_text() if Path(public_key).is_file() else public_key
    try:
        return public_key_from_text(text.split()[0] if text.strip() else "")
    except ValueError as exc:
        raise _fail(f"--public-key: {exc}") from None


@audit_app.command("verify")
def verify_cmd(
    archive: Annotated[Path, typer.Argument(help="An archive directory or .tar.gz from `audit export`.")],
    public_key: Annotated[str | None, typer.Option("--public-key", help="The key `audit key` printed (or a file "
                                                   "holding it). Default: this deployment's signing key.")] = None,
) -> None:
    """Check the manifest's signature and every file's digest. Exit 0 only if all hold."""
    key_ = _public_key(public_key)
    try:
        result = verify(Archive(archive), key_)
    except ArchiveError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"signature: {result.signature} (key {key_id(key_)})")
    for label, names in (("changed", result.changed), ("added", result.added), ("removed", result.removed)):
        for name in names:
            typer.echo(f"  {label}: {name}")
    if not result.ok:
        typer.echo(f"archive FAILED verification: {len(result.changed)} changed, {len(result.added)} added, "
                   f"{len(result.removed)} removed", err=True)
        raise typer.Exit(1)
    typer.echo(f"archive OK: {result.checked} files match the signed manifest")


class ReportFormat(StrEnum):
    table = "table"
    json = "json"
    junit = "junit"


def _records(sources: list[str], query: str | None) -> tuple[Iterable[TicketRecord], int]:
    """Tickets from archives, history files, ticket ids and a visibility query, and how many.
    An archive's tickets are read one at a time, as they are replayed."""
    from audit.archive import record_for
    from audit.export import Selection, fetch_record, selected_workflow_ids

    sources_of: list[Iterable[TicketRecord]] = []
    count = 0
    fetched: list[TicketRecord] = []
    ids: list[str] = []
    for source in sources:
        path = Path(source)
        if path.is_dir() or source.endswith(".tar.gz"):
            try:
                archive = Archive(path)
                count += archive.ticket_count()
            except ArchiveError as exc:
                raise _fail(str(exc)) from None
            sources_of.append(archive.tickets())
        elif path.is_file():
            try:
                hs = read_history_file(path.read_bytes(), f"ticket-{path.stem}")
            except ValueError as exc:
                raise _fail(f"{path}: not a history file ({exc})") from None
            fetched.append(record_for(ticket_id=path.stem, case_type="?", workflow_type="?",
                                      runs=[(h.run_id, h) for h in hs]))
        else:
            ids.append(source)
    if ids or query:
        from activities.archive import archive_store
        from worker import connect

        async def fetch() -> list[TicketRecord]:
            client = await connect(get_settings())
            wids = await selected_workflow_ids(client, Selection(tickets=ids, query=query))
            return [await fetch_record(client, w) for w in wids]

        found = asyncio.run(fetch())
        known = {r.ticket_id for r in found}
        store = archive_store(get_settings())
        for ticket_id in ids:
            if ticket_id in known:
                continue
            archived = store.get(ticket_id)  # gone from Temporal, kept in the archive store
            if archived is None:
                raise _fail(f"no ticket {ticket_id} in Temporal, in the archive store, or as a file of that name")
            found.append(archived)
        fetched.extend(found)
    return itertools.chain(fetched, *sources_of), count + len(fetched)


@audit_app.command("replay")
def replay(
    sources: Annotated[list[str], typer.Argument(help="Archives, files from `history export`, or ticket ids.")] = [],  # noqa: B006
    query: Annotated[str | None, typer.Option(help="Also every ticket this visibility query selects.")] = None,
    fmt: Annotated[ReportFormat, typer.Option("--format", help="table for people, json, junit for CI.")] =
    ReportFormat.table,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the report here, not stdout.")] = None,
) -> None:
    """Replay every ticket against today's code and check its decisions. Exit 1 if any diverged."""
    from audit.replay import as_json, junit, replay_tickets, table
    from encryption import data_converter
    from worker import workflow_runner, workflows

    if not sources and not query:
        raise _fail("name an archive, a history file or a ticket id, or pass --query")
    records, count = _records(sources, query)
    converter = data_converter(get_settings())

    async def go() -> list:
        out = []
        with typer.progressbar(length=count, label="replaying", file=sys.stderr) as bar:
            async for r in replay_tickets(records, workflows=workflows(), converter=converter,
                                          runner=workflow_runner("audit"), progress=bar.update):
                out.append(r)
        return out

    results = asyncio.run(go())
    report = {ReportFormat.table: table, ReportFormat.json: as_json, ReportFormat.junit: junit}[fmt](results)
    if output is not None:
        output.write_text(report if report.endswith("\n") else report + "\n")
        events = sum(r.events for r in results)
        typer.echo(f"{len(results)} tickets, {events} events replayed; report in {output}", err=True)
    else:
        typer.echo(report)
    if any(r.result != "ok" for r in results):
        raise typer.Exit(1)


@audit_app.command("whatif")
def whatif(
    sources: Annotated[list[str], typer.Argument(help="Archives, files from `history export`, or ticket ids.")],
    sla: Annotated[Path | None, typer.Option("--sla", help="Another SLA configuration (the format of "
                                             "policies/sla.json).")] = None,
    faq_threshold: Annotated[float | None, typer.Option("--faq-threshold", min=0.0, max=1.0,
                                                        help="Another confidence the FAQ bot must reach to answer.")
                             ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON.")] = False,
) -> None:
    """What recorded tickets would have done under another SLA policy or FAQ threshold:
    breaches added and avoided, automatic answers gained and lost, with the precision the
    customers' verdicts give."""
    import json

    from pydantic import ValidationError

    from audit.whatif import what_if
    from encryption import data_converter
    from policies.sla import load_sla_config

    if sla is None and faq_threshold is None:
        raise _fail("say what to change: --sla FILE, --faq-threshold X, or both")
    config = None
    if sla is not None:
        try:
            config = load_sla_config(sla)
        except FileNotFoundError:
            raise _fail(f"--sla: no file {sla}") from None
        except (ValidationError, ValueError) as exc:
            raise _fail(f"--sla: {sla} is not an SLA configuration: {exc}") from None
    records, _ = _records(sources, None)
    result = what_if(records, data_converter(get_settings()), sla=config, faq_threshold=faq_threshold)
    report = result.as_dict()
    if as_json:
        typer.echo(json.dumps(report, indent=1))
        return
    typer.echo(f"{result.tickets} tickets" + (f" ({len(result.unreadable)} unreadable)" if result.unreadable else ""))
    if report["sla"] is not None:
        s = report["sla"]
        typer.echo(f"SLA under {sla}: {s['breaches_before']} breaches recorded -> {s['breaches_after']}; "
                   f"{s['added']} added, {s['avoided']} avoided")
        for change in s["changed"]:
            typer.echo(f"  {change['ticket_id']}: {', '.join(change['before']) or 'none'} -> "
                       f"{', '.join(change['after']) or 'none'}")
    if report["faq"] is not None:
        f = report["faq"]

        def pct(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.0%}"

        typer.echo(f"FAQ at threshold {f['threshold']}: {f['answered_before']} answered automatically -> "
                   f"{f['answered_after']}; {len(f['gained'])} gained (no verdict yet), {len(f['lost'])} lost; "
                   f"precision from the customers' verdicts {pct(f['precision_before'])} -> "
                   f"{pct(f['precision_after'])}")
