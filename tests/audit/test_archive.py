"""Sealed archives: what is written, and every way a written one can be tampered with."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.archive import MANIFEST, SIGNATURE, Archive, ArchiveError, ArchiveWriter, verify
from audit_helpers import records

@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def sealed(tmp_path, key) -> Path:
    writer = ArchiveWriter(tmp_path / "archive")
    for record in records():
        writer.add(record)
    writer.seal(key, {"tickets": []})
    return tmp_path / "archive"


def test_a_sealed_archive_holds_each_ticket_with_its_facts_and_verifies(sealed, key):
    archive = Archive(sealed)
    manifest = archive.manifest()
    assert manifest["tickets"] == len(records()) == 9
    assert set(manifest["files"]) == {f"tickets/{r.ticket_id}.json" for r in records()}
    record = archive.ticket("ticket_refunded")
    assert record is not None and record.event_count == 131 and record.workflow_id == "ticket-ticket_refunded"
    assert record.first_event_at < record.last_event_at and record.runs[0].run_id
    assert record.histories()[0].events[0].HasField("workflow_execution_started_event_attributes")
    result = verify(archive, key.public_key())
    assert result.ok and result.checked == 9


def test_a_changed_file_is_named(sealed, key):
    path = sealed / "tickets" / "ticket_refunded.json"
    path.write_bytes(path.read_bytes().replace(b'"event_count":131', b'"event_count":130'))
    result = verify(Archive(sealed), key.public_key())
    assert not result.ok and result.signature == "valid"
    assert result.changed == ["tickets/ticket_refunded.json"] and not result.added and not result.removed


def test_an_added_and_a_removed_file_are_named(sealed, key):
    (sealed / "tickets" / "ticket_escalated.json").unlink()
    (sealed / "tickets" / "forged.json").write_text("{}")
    result = verify(Archive(sealed), key.public_key())
    assert result.removed == ["tickets/ticket_escalated.json"] and result.added == ["tickets/forged.json"]
    assert not result.ok


def test_a_manifest_rewritten_to_match_a_change_breaks_the_signature(sealed, key):
    manifest = json.loads((sealed / MANIFEST).read_text())
    del manifest["files"]["tickets/ticket_escalated.json"]
    (sealed / "tickets" / "ticket_escalated.json").unlink()
    (sealed / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    result = verify(Archive(sealed), key.public_key())
    assert result.signature == "invalid" and not result.removed and not result.ok


def test_another_key_does_not_verify_it(sealed):
    result = verify(Archive(sealed), Ed25519PrivateKey.generate().public_key())
    assert result.signature == "invalid" and not result.ok


def test_a_missing_signature_fails(sealed, key):
    (sealed / SIGNATURE).unlink()
    assert verify(Archive(sealed), key.public_key()).signature == "missing"


def test_a_tar_gz_archive_reads_and_verifies_the_same(tmp_path, key):
    target = tmp_path / "audit.tar.gz"
    writer = ArchiveWriter(target)
    for record in records()[:3]:
        writer.add(record)
    writer.seal(key, {})
    assert target.is_file() and not (tmp_path / "audit.tar.gz.partial").exists()
    archive = Archive(target)
    assert len(list(archive.tickets())) == 3 and verify(archive, key.public_key()).ok
    with tarfile.open(target) as tar:
        assert {MANIFEST, SIGNATURE} <= set(tar.getnames())


def test_an_interrupted_export_resumes_with_what_it_wrote(tmp_path, key):
    first = ArchiveWriter(tmp_path / "a")
    written = records()[:4]
    for record in written:
        first.add(record)
    # a crash cut one file off mid-write
    (tmp_path / "a" / "tickets" / "ticket_reopened.json").write_text('{"format": 1, "tick')
    again = ArchiveWriter(tmp_path / "a")
    assert again.done() == {r.ticket_id for r in written}
    assert not (tmp_path / "a" / "tickets" / "ticket_reopened.json").exists()


def test_a_finished_archive_is_never_overwritten(sealed, tmp_path):
    with pytest.raises(FileExistsError, match="finished archive"):
        ArchiveWriter(sealed)
    (tmp_path / "x.tar.gz").write_bytes(b"")
    with pytest.raises(FileExistsError):
        ArchiveWriter(tmp_path / "x.tar.gz")


def test_what_is_not_an_archive_says_so(tmp_path):
    (tmp_path / "x.tar.gz").write_bytes(b"not gzip")
    with pytest.raises(ArchiveError, match="not a readable"):
        Archive(tmp_path / "x.tar.gz")
    with pytest.raises(ArchiveError, match="neither"):
        Archive(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArchiveError, match="no manifest.json"):
        Archive(tmp_path / "empty").manifest()
