"""`ticketflow`: run the stack, its parts, and administer it."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import typer

from cli.access import department_app, policy_app, token_app, user_app
from cli.audit import audit_app
from cli.faq import faq_app
from cli.history import history_app
from cli.keys import keys_app, require_keys
from cli.scaffold import case_app
from cli.logs import LogFormat, configure
from settings import get_settings

app = typer.Typer(help="ticketflow: every customer issue as a durable Temporal workflow.", no_args_is_help=True,
                  add_completion=False)
db_app = typer.Typer(help="The read-model database.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(department_app, name="department")
app.add_typer(db_app, name="db")
app.add_typer(history_app, name="history")
app.add_typer(faq_app, name="faq")
app.add_typer(keys_app, name="keys")
app.add_typer(case_app, name="case")
app.add_typer(audit_app, name="audit")

log = logging.getLogger("ticketflow")


Verbose = Annotated[bool, typer.Option(help="Also the debug lines, and every request and migration step.")]
LogFormatOption = Annotated[LogFormat, typer.Option(help="text for people; json: one object per line, for collectors.")]


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply all database migrations (safe to run again)."""
    from migrations import upgrade

    settings = get_settings()
    upgrade(settings.effective_database_url)
    typer.echo("database is up to date")


@app.command()
def worker(
    faq: Annotated[bool, typer.Option("--faq/--no-faq", help="Also answer FAQ questions (loads the model).")] = False,
    verbose: Verbose = False,
    log_format: LogFormatOption = LogFormat.text,
) -> None:
    """Run a worker against TICKETFLOW_TEMPORAL_ADDRESS (run as many as you need).

    It also makes sure the hourly housekeeping schedule exists and follows its settings.
    Payloads are encrypted with the keys of TICKETFLOW_PAYLOAD_KEYS or the key file; it
    refuses to start without them while TICKETFLOW_PAYLOAD_ENCRYPTION is on. With
    TICKETFLOW_WORKER_METRICS_ADDRESS set it serves Prometheus metrics there.
    """
    from migrations import upgrade
    from worker import MetricsAddressError, run_worker

    configure(verbose=verbose, log_format=log_format)
    settings = get_settings()
    require_keys(settings)
    upgrade(settings.effective_database_url)
    try:
        asyncio.run(run_worker(settings, faq=faq))
    except MetricsAddressError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def api(
    workers: Annotated[int, typer.Option(min=1, help="API processes sharing the port (they share nothing else).")] = 1,
    verbose: Verbose = False,
    log_format: LogFormatOption = LogFormat.text,
) -> None:
    """Serve the HTTP API on TICKETFLOW_API_HOST:TICKETFLOW_API_PORT.

    SIGTERM or Ctrl-C ends open event streams at once and waits at most 5 s for other requests.
    """
    import uvicorn

    from migrations import upgrade

    configure(verbose=verbose, log_format=log_format)
    settings = get_settings()
    require_keys(settings)
    upgrade(settings.effective_database_url)
    if workers > 1 and settings.metrics_enabled:
        typer.echo(f"warning: the {workers} API processes count requests apart, and /metrics answers from whichever "
                   "process takes the scrape; run one process per container (or port) to scrape each", err=True)
    from api.main import SHUTDOWN_GRACE_SECONDS

    # log_config=None: uvicorn logs through the handler configured above (text or JSON).
    uvicorn.run("api.main:app_from_settings", factory=True, workers=workers, host=settings.api_host,
                port=settings.api_port, log_level="info" if verbose else "warning", log_config=None,
                timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS)


@app.command()
def sandbox(seed: Annotated[int, typer.Option(help="Seed of the demo data the systems serve.")] = 7) -> None:
    """Serve the sandbox ERP (SOAP), carrier, helpdesk and messaging systems on loopback.

    They listen on TICKETFLOW_SANDBOX_PORT and the three ports after it, as under `ticketflow up`.
    """
    from sandbox.run import SERVICES, main as sandbox_main

    base = get_settings().sandbox_port
    ports = [arg for i, name in enumerate(SERVICES) for arg in (f"--{name}-port", str(base + i))]
    raise typer.Exit(sandbox_main(["--seed", str(seed), *ports]))


@app.command()
def up(
    demo: Annotated[bool, typer.Option(help="Create demo tokens and tickets on first start.")] = True,
    sandbox_systems: Annotated[bool, typer.Option("--sandbox/--no-sandbox",
                                                  help="Start the sandbox external systems.")] = True,
    verbose: Verbose = False,
    log_format: LogFormatOption = LogFormat.text,
) -> None:
    """Run everything on one machine: Temporal, sandbox systems, a worker and the API.

    Temporal is embedded unless TICKETFLOW_TEMPORAL_ADDRESS is set. Ctrl-C stops it all; state persists in the data directory, so the next `up` carries on where this one stopped.
    """
    configure(verbose=verbose, log_format=log_format)
    from cli.stack import run_stack

    raise typer.Exit(asyncio.run(run_stack(get_settings(), demo=demo, with_sandbox=sandbox_systems)))


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
