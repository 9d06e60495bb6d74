"""`ticketflow keys`: the payload encryption keys of this deployment."""

from __future__ import annotations

import typer

from encryption.keys import MissingKeys, add_key, key_file_path, load_key_ring
from settings import Settings, get_settings

keys_app = typer.Typer(help="Payload encryption keys (what Temporal stores is encrypted with them).",
                       no_args_is_help=True)


@keys_app.command("rotate")
def rotate() -> None:
    """Add a new key to the key file (creating it): it encrypts from now on, older keys still
    decrypt. Copy the file to every worker and API host, then restart them."""
    settings = get_settings()
    if settings.payload_keys is not None:
        typer.echo("error: TICKETFLOW_PAYLOAD_KEYS is set, so the key file is not used: add the new key there",
                   err=True)
        raise typer.Exit(2)
    path = key_file_path(settings)
    key_id = add_key(path)
    typer.echo(f"key {key_id} added to {path}; it encrypts from now on")


@keys_app.command("list")
def list_keys() -> None:
    """The ids of the keys this process would use, oldest first (never the keys)."""
    ring = require_keys(get_settings())
    if ring is None:
        typer.echo("payload encryption is off (TICKETFLOW_PAYLOAD_ENCRYPTION=false)")
        return
    for key_id, _ in ring.items():
        typer.echo(f"{key_id}{'  (encrypts)' if key_id == ring.current else ''}")


def require_keys(settings: Settings):  # noqa: ANN201
    """The key ring, or exit 2 with what to do: a worker or API process must not start
    without the keys the others use."""
    if not settings.payload_encryption:
        return None
    try:
        return load_key_ring(settings)
    except MissingKeys as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
