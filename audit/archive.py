"""Sealed archives of ticket histories.

An archive is a directory, or the same directory packed as one ``.tar.gz``::

    tickets/<ticket id>.json   one ticket: every run of its workflow (a long ticket continues
                               as new, so it has several), with its ids, event count, first and
                               last event times and the code versions that wrote it
    manifest.json              what the archive holds: each file's SHA-256 and size, the
                               selection it was made from, when, and the signing key's id
    manifest.sig               the Ed25519 signature over manifest.json's bytes

Payloads stay as Temporal stored them: encrypted when the deployment encrypts, so an
archive leaks no more than the history did. Writing is resumable: each ticket file lands
atomically, the manifest last, and an export that finds a directory without a manifest
carries on where it stopped.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, Field
from temporalio.client import WorkflowHistory

from audit.signing import key_id, public_key_text, signature_ok

FORMAT = 1
TICKETS = "tickets"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"


class ArchivedRun(BaseModel):
    run_id: str
    history: dict[str, Any] = Field(description="The run's history as Temporal's JSON (payloads as stored).")


class TicketRecord(BaseModel):
    """One ticket's file in an archive."""

    format: int = FORMAT
    ticket_id: str
    case_type: str
    workflow_id: str
    workflow_type: str
    runs: list[ArchivedRun] = Field(description="Oldest first: each run continues the one before it.")
    event_count: int
    first_event_at: datetime | None
    last_event_at: datetime | None
    code_versions: list[str] = Field(default_factory=list,
                                     description="Build ids of the workers that made its decisions, as recorded.")

    def histories(self) -> list[WorkflowHistory]:
        return [WorkflowHistory.from_json(self.workflow_id, run.history) for run in self.runs]


def record_for(*, ticket_id: str, case_type: str, workflow_type: str,
               runs: list[tuple[str, WorkflowHistory]]) -> TicketRecord:
    """A ticket's record from the histories of its runs, oldest first."""
    events = [e for _, h in runs for e in h.events]
    versions: dict[str, None] = {}
    for e in events:
        if e.HasField("workflow_task_completed_event_attributes"):
            a = e.workflow_task_completed_event_attributes
            version = a.worker_version.build_id or a.binary_checksum or a.deployment_name
            if version:
                versions[version] = None
    return TicketRecord(
        ticket_id=ticket_id, case_type=case_type, workflow_id=runs[0][1].workflow_id, workflow_type=workflow_type,
        runs=[ArchivedRun(run_id=run_id, history=json.loads(h.to_json())) for run_id, h in runs],
        event_count=len(events),
        first_event_at=events[0].event_time.ToDatetime(UTC) if events else None,
        last_event_at=events[-1].event_time.ToDatetime(UTC) if events else None,
        code_versions=list(versions),
    )


def ticket_file(ticket_id: str) -> str:
    if not ticket_id or "/" in ticket_id or ticket_id.startswith("."):
        raise ValueError(f"a ticket id cannot name a file: {ticket_id!r}")
    return f"{TICKETS}/{ticket_id}.json"


def write_atomically(target: Path, data: bytes) -> None:
    """Write `data` to `target` so that a crash leaves the old file or the new one, never half."""
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- writing ------------------------------------------------------------------------------------


class ArchiveWriter:
    """Writes an archive at `path` (a directory, or a ``.tar.gz`` built from a staging
    directory beside it). An unfinished one found there is resumed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.packed = path.name.endswith(".tar.gz")
        self.dir = path.with_name(path.name + ".partial") if self.packed else path
        if self.packed and path.exists():
            raise FileExistsError(f"{path} exists: choose another name, or remove it")
        if not self.packed and (path / MANIFEST).exists():
            raise FileExistsError(f"{path} holds a finished archive: choose another directory, or remove it")
        (self.dir / TICKETS).mkdir(parents=True, exist_ok=True)

    def done(self) -> set[str]:
        """Ticket ids already written (by an export that was interrupted)."""
        found = set()
        for p in (self.dir / TICKETS).glob("*.json"):
            try:
                json.loads(p.read_bytes())
            except ValueError:
                p.unlink()  # cut off mid-write by a crash: written again
                continue
            found.add(p.name.removesuffix(".json"))
        return found

    def add(self, record: TicketRecord) -> None:
        """Write one ticket's file, atomically: a crash leaves it whole or absent."""
        write_atomically(self.dir / ticket_file(record.ticket_id), record.model_dump_json().encode())

    def seal(self, key: Ed25519PrivateKey, selection: dict[str, Any]) -> dict[str, Any]:
        """Write the manifest and its signature over every ticket file; pack a ``.tar.gz``.
        Returns the manifest."""
        files = {}
        for p in sorted((self.dir / TICKETS).glob("*.json")):
            data = p.read_bytes()
            files[f"{TICKETS}/{p.name}"] = {"sha256": _sha256(data), "bytes": len(data)}
        public = key.public_key()
        manifest = {
            "format": FORMAT, "created_at": datetime.now(UTC).isoformat(), "selection": selection,
            "tickets": len(files), "key_id": key_id(public), "public_key": public_key_text(public), "files": files,
        }
        body = json.dumps(manifest, indent=1, sort_keys=True).encode()
        (self.dir / MANIFEST).write_bytes(body)
        (self.dir / SIGNATURE).write_text(base64.b64encode(key.sign(body)).decode() + "\n")
        if self.packed:
            tmp = self.path.with_name(f".{self.path.name}.tmp")  # packed whole, then moved into place
            with tarfile.open(tmp, "w:gz") as tar:
                for p in sorted(self.dir.rglob("*")):
                    if p.is_file():
                        tar.add(p, arcname=p.relative_to(self.dir).as_posix())
            os.replace(tmp, self.path)
            shutil.rmtree(self.dir)
        return manifest


# --- reading and verifying -----------------------------------------------------------------------


class ArchiveError(Exception):
    """Not an archive, or not one this version can read."""


class Archive:
    """An archive to read, from a directory or a ``.tar.gz``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tar: tarfile.TarFile | None = None
        self._members: dict[str, tarfile.TarInfo] = {}
        if path.is_dir():
            self._root: Path | None = path
        elif path.is_file() and path.name.endswith(".tar.gz"):
            self._root = None
            try:  # an index of the members; their bytes are read when asked for, in order
                self._tar = tarfile.open(path, "r:gz")
                self._members = {m.name: m for m in self._tar.getmembers() if m.isfile()}
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise ArchiveError(f"{path} is not a readable .tar.gz: {exc}") from None
        else:
            raise ArchiveError(f"{path} is neither an archive directory nor a .tar.gz")

    def names(self) -> list[str]:
        if self._tar is not None:
            return sorted(self._members)
        assert self._root is not None
        return sorted(p.relative_to(self._root).as_posix() for p in self._root.rglob("*") if p.is_file())

    def read(self, name: str) -> bytes | None:
        if self._tar is not None:
            member = self._members.get(name)
            f = self._tar.extractfile(member) if member is not None else None
            return f.read() if f is not None else None
        assert self._root is not None
        p = self._root / name
        return p.read_bytes() if p.is_file() else None

    def ticket_count(self) -> int:
        return sum(1 for n in self.names() if n.startswith(f"{TICKETS}/") and n.endswith(".json"))

    def manifest(self) -> dict[str, Any]:
        body = self.read(MANIFEST)
        if body is None:
            raise ArchiveError(f"{self.path} has no {MANIFEST}: an export that did not finish (run it again to "
                               "resume), or not an archive")
        return json.loads(body)

    def tickets(self) -> Iterator[TicketRecord]:
        for name in self.names():
            if name.startswith(f"{TICKETS}/") and name.endswith(".json"):
                data = self.read(name)
                assert data is not None
                yield TicketRecord.model_validate_json(data)

    def ticket(self, ticket_id: str) -> TicketRecord | None:
        data = self.read(ticket_file(ticket_id))
        return TicketRecord.model_validate_json(data) if data is not None else None


@dataclass
class Verification:
    signature: str  # "valid", "invalid", or why it could not be checked
    changed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    checked: int = 0

    @property
    def ok(self) -> bool:
        return self.signature == "valid" and not (self.changed or self.added or self.removed)


def verify(archive: Archive, public_key: Ed25519PublicKey) -> Verification:
    """Check the manifest's signature with `public_key` and every file against its digest."""
    body = archive.read(MANIFEST)
    sig = archive.read(SIGNATURE)
    if body is None:
        return Verification(signature=f"missing: no {MANIFEST}", added=[n for n in archive.names() if n != SIGNATURE])
    try:
        signature = base64.b64decode((sig or b"").strip(), validate=True)
        valid = bool(sig) and signature_ok(public_key, body, signature)
    except ValueError:
        valid = False
    result = Verification(signature="valid" if valid else ("missing" if sig is None else "invalid"))
    try:
        listed = json.loads(body)["files"]
    except (ValueError, KeyError, TypeError):
        result.signature = "invalid: the manifest is not readable"
        return result
    present = {n for n in archive.names() if n not in (MANIFEST, SIGNATURE)}
    for name, entry in sorted(listed.items()):
        data = archive.read(name)
        if data is None:
            result.removed.append(name)
            continue
        result.checked += 1
        if _sha256(data) != entry.get("sha256"):
            result.changed.append(name)
    result.added = sorted(present - set(listed))
    return result


def read_history_file(data: bytes, default_id: str) -> list[WorkflowHistory]:
    """The histories in a file: a ticket record, or one run as `ticketflow history export` wrote it."""
    document = json.loads(data)
    if isinstance(document, dict) and "runs" in document and "workflow_id" in document:
        return TicketRecord.model_validate(document).histories()
    return [WorkflowHistory.from_json(default_id, document)]
