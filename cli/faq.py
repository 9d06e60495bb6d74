"""`ticketflow faq`: the FAQ knowledge base from the command line.

The commands work on the database directly (as `ticketflow token create` does) and apply
migrations first. Those that change the knowledge base also publish its new index version
here, so they load the embedding model (a few seconds) and need no running worker.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from models.faq import FaqPublication, FaqResult

faq_app = typer.Typer(help="The FAQ knowledge base: import, export, ask the bot, review what tickets suggest.",
                      no_args_is_help=True)


def _database():
    from migrations import upgrade
    from models.db import Database
    from settings import get_settings

    settings = get_settings()
    upgrade(settings.effective_database_url)
    return Database(settings.effective_database_url)


def _show_progress() -> None:
    """Loading the model and publishing log their progress; show it on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("faq")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def _publish_here(db) -> FaqPublication:
    from faq.encoder import FaqModelError
    from faq.knowledge_base import kb_state, publish, record_publish_error

    _show_progress()
    try:
        return publish(db)
    except FaqModelError as exc:
        revision = db.call(kb_state).revision
        db.call(record_publish_error, revision, str(exc))
        typer.echo(f"the index was not published: {exc}", err=True)
        raise typer.Exit(1) from exc


def _echo_publication(publication: FaqPublication) -> None:
    if publication.status == "published":
        typer.echo(f"index version {publication.index_version} answers for knowledge-base revision "
                   f"{publication.kb_revision}")
    else:
        typer.echo(f"index {publication.status} for revision {publication.kb_revision}"
                   f"{': ' + publication.detail if publication.detail else ''}; run `ticketflow faq publish`",
                   err=True)


@faq_app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="A CSV or JSON file.")],
    format_: Annotated[str | None, typer.Option(
        "--format", help="csv or json; default: from the file name's extension.")] = None,
    replace: Annotated[bool, typer.Option(
        help="Also delete the entries the file does not have (default: create and update only).")] = False,
) -> None:
    """Import FAQ entries, all or nothing, and publish the new index version.

    A file with problems is rejected whole: every problem is listed with its line (and, for
    JSON, its array index), nothing is imported, and the exit code is 1.
    """
    from faq import knowledge_base as kb
    from faq.io import FaqImportError, parse_entries_located

    file_format = (format_ or file.suffix.lstrip(".")).lower()
    if file_format not in ("csv", "json"):
        typer.echo(f"cannot tell whether {file} is CSV or JSON: add --format csv or --format json", err=True)
        raise typer.Exit(2)
    db = _database()
    try:
        located = parse_entries_located(file.read_bytes(), file_format)
        counts = db.call(kb.import_entries, located, replace=replace)
    except FaqImportError as exc:
        typer.echo(f"{file}: rejected, nothing imported ({len(exc.problems)} problem(s)):", err=True)
        for problem in exc.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"imported {file}: {counts.created} created, {counts.updated} updated, "
               f"{counts.unchanged} unchanged, {counts.deleted} deleted")
    _echo_publication(_publish_here(db))
    db.dispose()


@faq_app.command("export")
def export(
    format_: Annotated[str, typer.Option("--format", help="csv or json.")] = "json",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="File to write; default: stdout.")] = None,
) -> None:
    """Write every FAQ entry as CSV or JSON; `ticketflow faq import` reads it back unchanged."""
    from faq import knowledge_base as kb
    from faq.io import export_entries

    if format_ not in ("csv", "json"):
        typer.echo("--format is csv or json", err=True)
        raise typer.Exit(2)
    db = _database()
    data = export_entries(db.call(kb.all_entries), format_)  # type: ignore[arg-type]
    db.dispose()
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        output.write_bytes(data)
        typer.echo(f"wrote {output}", err=True)


@faq_app.command("ask")
def ask(
    question: Annotated[str, typer.Argument(help="What a customer asks.")],
    department: Annotated[str | None, typer.Option(help="Only match entries of this department.")] = None,
    language: Annotated[str | None, typer.Option(help="Only match entries in this language.")] = None,
    version: Annotated[str | None, typer.Option(help="Ask an earlier index version.")] = None,
) -> None:
    """Ask the FAQ bot as a ticket would: best entry, confidence, threshold, decision."""
    from faq.knowledge_base import PublishedIndexes
    from faq.store import FaqIndexNotFound
    from models.faq import FaqQuery

    db = _database()
    _show_progress()
    query = FaqQuery(text=question, department=department, language=language, index_version=version)
    try:
        result = PublishedIndexes(db).answer(query, fall_back_to_current=False)
    except FaqIndexNotFound as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    db.dispose()
    typer.echo(_describe(result))


def _describe(result: FaqResult) -> str:
    lines = [f"index version  {result.index_version}"]
    if result.best is None:
        lines.append("no entry matches (the knowledge base is empty)")
    else:
        best = result.best
        lines.append(f"best entry     {best.entry_id} ({best.department}), score {best.score:.3f}: {best.question!r}")
    confidence = "none (index not calibrated)" if result.confidence is None else f"{result.confidence:.3f}"
    threshold = "-" if result.threshold is None else f"{result.threshold:.3f}"
    lines.append(f"confidence     {confidence}, threshold {threshold}")
    lines.append(f"decision       {result.decision.value}")
    if result.answer:
        lines.append(f"answer         {result.answer}")
    if result.alternatives:
        lines.append("alternatives")
        lines.extend(
            f"  {match.entry_id} ({match.department}), score {match.score:.3f}: {match.question!r}"
            for match in result.alternatives
        )
    return "\n".join(lines)


@faq_app.command("status")
def status() -> None:
    """The index version answering now, its calibration, and whether a newer one is pending."""
    from faq.knowledge_base import index_status

    db = _database()
    typer.echo(db.call(index_status).model_dump_json(indent=2))
    db.dispose()


@faq_app.command("publish")
def publish_(
    rebuild: Annotated[bool, typer.Option(
        "--rebuild", help="Build again even if the newest revision is published: after an upgrade, or a change of "
        "TICKETFLOW_FAQ_QUANTIZE or the FAQ calibration settings, so the index uses them.")] = False,
) -> None:
    """Build and publish the index of the newest revision, if that is not published yet."""
    db = _database()
    if rebuild:
        from faq.knowledge_base import request_rebuild

        db.call(request_rebuild)
    _echo_publication(_publish_here(db))
    db.dispose()


@faq_app.command("suggestions")
def suggestions(
    status_: Annotated[str, typer.Option(
        "--status", help="pending, accepted, rejected or all.")] = "pending",
    entry: Annotated[str | None, typer.Option(help="Only suggestions for this FAQ entry.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many, oldest first.")] = 50,
) -> None:
    """What tickets suggest: question variants (+) and evidence that an entry was wrong (-).

    A customer's "helpful" or an agent's reply that is an entry's answer suggests the
    ticket's question as a variant of that entry; "not helpful", or an agent answering
    otherwise, is evidence against it. Review them with `ticketflow faq review`.
    """
    from faq.learning import list_suggestions
    from models.faq import FaqSuggestionStatus

    if status_ not in {*FaqSuggestionStatus, "all"}:
        typer.echo("--status is pending, accepted, rejected or all", err=True)
        raise typer.Exit(2)
    db = _database()
    items, more = db.call(list_suggestions, limit=limit, entry_id=entry,
                          status=None if status_ == "all" else FaqSuggestionStatus(status_))
    db.dispose()
    if not items:
        typer.echo(f"no {'' if status_ == 'all' else status_ + ' '}suggestions", err=True)
    for item in items:
        flag = f"  [already a question of {item.conflict_entry_id}]" if item.conflict_entry_id else ""
        typer.echo(f"{item.id:>6} {'+' if item.correct else '-'} {item.entry_id:<24} {item.status.value:<8} "
                   f"{item.source.value:<16} ticket {item.ticket_id}: {item.question!r}{flag}")
    if more:
        typer.echo(f"more than {limit}: add --limit or --entry", err=True)


@faq_app.command("review")
def review(
    accept: Annotated[list[int] | None, typer.Option(
        "--accept", help="A suggestion id to accept; repeat for more.")] = None,
    reject: Annotated[list[int] | None, typer.Option(
        "--reject", help="A suggestion id to reject; repeat for more.")] = None,
) -> None:
    """Accept and reject suggestions, all or nothing, and publish the new index version.

    Accepted variants join their entries; accepted suggestions of either kind are
    calibration evidence of every later index version. If any id is unknown or reviewed
    already, or an accepted question is another entry's, nothing is reviewed and the exit
    code is 1. The review is recorded as the server's shell's ("cli").
    """
    from pydantic import ValidationError

    from faq import learning
    from faq.knowledge_base import kb_state, publication
    from models.faq import FaqSuggestionReview
    from policies.store import CLI_ACTOR

    try:
        decisions = FaqSuggestionReview(accept=accept or [], reject=reject or [])
    except ValidationError as exc:
        typer.echo(exc.errors()[0]["msg"].removeprefix("Value error, "), err=True)
        raise typer.Exit(2) from exc
    db = _database()
    try:
        outcome = db.call(learning.review, decisions, CLI_ACTOR)
    except (learning.FaqSuggestionNotFound, learning.FaqSuggestionConflict) as exc:
        typer.echo(f"nothing reviewed: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"accepted {len(outcome.accepted)}, rejected {len(outcome.rejected)}"
               + (f"; new question variants in {', '.join(outcome.entries_changed)}" if outcome.entries_changed else ""))
    if outcome.kb_revision is None:
        _echo_publication(db.call(lambda session: publication(kb_state(session))))
    else:
        _echo_publication(_publish_here(db))
    db.dispose()
