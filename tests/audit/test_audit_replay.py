"""Batch replay with decision checks, over the recorded histories and an archive of them."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from typer.testing import CliRunner

from audit.archive import ArchiveWriter
from audit.replay import as_json, junit, replay_tickets, table
from audit_helpers import NoRefundsTicket, RestockingFeeTicket, records
from settings import get_settings
from worker import workflow_runner, workflows



async def replayed(workflow_classes):
    return {r.ticket_id: r async for r in replay_tickets(records(), workflows=workflow_classes,
                                                         converter=pydantic_data_converter,
                                                         runner=workflow_runner("audit", "audit_helpers"))}


async def test_todays_code_makes_every_recorded_decision():
    results = await replayed(workflows())
    assert {t: r.result for t, r in results.items()} == {t: "ok" for t in results} and len(results) == 9


async def test_a_changed_refund_rule_is_caught_where_plain_replay_passes():
    refunded = next(r for r in records() if r.ticket_id == "ticket_refunded")
    [history] = refunded.histories()
    plain = await Replayer(workflows=[RestockingFeeTicket], data_converter=pydantic_data_converter,
                           workflow_runner=workflow_runner("audit", "audit_helpers")).replay_workflow(history,
                                                                                     raise_on_replay_failure=False)
    assert plain.replay_failure is None  # same commands: Temporal sees nothing wrong

    results = await replayed([RestockingFeeTicket, *[w for w in workflows() if w.__name__ != "TicketWorkflow"]])
    refund_event = next(e.event_id for e in history.events if e.HasField("activity_task_scheduled_event_attributes")
                        and e.activity_task_scheduled_event_attributes.activity_type.name == "create_refund")
    assert results["ticket_refunded"].result == "decision"
    assert results["ticket_refunded"].details == [
        f'event {refund_event}, make a refund in the ERP (create_refund): amount: "5.00" -> "4.50"']
    # the rule touches refunds only: every other ticket decides as recorded
    assert {t for t, r in results.items() if r.result != "ok"} == {"ticket_refunded"}


async def test_a_changed_workflow_is_reported_with_the_ticket_and_the_step():
    results = await replayed([NoRefundsTicket, *[w for w in workflows() if w.__name__ != "TicketWorkflow"]])
    refunded = results["ticket_refunded"]
    assert refunded.result == "diverged"
    [detail] = refunded.details
    assert "diverges at event" in detail and 'the history did "make a refund in the ERP (create_refund)"' in detail
    assert "task_claimed (by ana)" in detail

    report = list(results.values())
    suite = ET.fromstring(junit(report))
    assert (suite.get("tests"), suite.get("failures")) == ("9", "1")
    [failure] = suite.iter("failure")
    assert failure.get("message") == "commands diverged" and "create_refund" in failure.text
    parsed = json.loads(as_json(report))
    assert parsed["ok"] == 8 and parsed["total"] == 9
    assert "ticket_refunded" in table(report) and "DIVERGED" in table(report)


@pytest.fixture
def audit_settings(tmp_path, monkeypatch):
    key = tmp_path / "signing.pem"
    key.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    monkeypatch.setenv("TICKETFLOW_AUDIT_KEY_FILE", str(key))
    monkeypatch.setenv("TICKETFLOW_PAYLOAD_ENCRYPTION", "false")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_the_cli_verifies_replays_and_names_a_tampered_file(tmp_path, audit_settings):
    from audit.signing import load_signing_key
    from cli.main import app

    archive = tmp_path / "audit"
    writer = ArchiveWriter(archive)
    for record in records():
        writer.add(record)
    writer.seal(load_signing_key(get_settings()), {})

    runner = CliRunner()
    printed = runner.invoke(app, ["audit", "key"])
    assert printed.exit_code == 0 and printed.output.split()[1].startswith("ed25519:")
    ok = runner.invoke(app, ["audit", "verify", str(archive)])
    assert ok.exit_code == 0, ok.output
    assert "archive OK: 9 files match the signed manifest" in ok.output
    # an auditor without the deployment's private key checks with the public one
    public = printed.output.split()[0]
    assert runner.invoke(app, ["audit", "verify", str(archive), "--public-key", public]).exit_code == 0

    replay = runner.invoke(app, ["audit", "replay", str(archive), "--format", "junit", "-o", str(tmp_path / "r.xml")])
    assert replay.exit_code == 0, replay.output
    assert ET.parse(tmp_path / "r.xml").getroot().get("failures") == "0"

    target = archive / "tickets" / "ticket_refunded.json"
    target.write_text(target.read_text().replace('"ticket_id":"ticket_refunded"', '"ticket_id":"ticket_refundeX"'))
    bad = runner.invoke(app, ["audit", "verify", str(archive)])
    assert bad.exit_code == 1 and "changed: tickets/ticket_refunded.json" in bad.output


def test_the_cli_says_what_to_fix(tmp_path, audit_settings):
    from cli.main import app

    runner = CliRunner()
    nothing = runner.invoke(app, ["audit", "replay"])
    assert nothing.exit_code == 2 and "name an archive" in nothing.output
    assert "is neither an archive" in runner.invoke(app, ["audit", "verify", str(tmp_path / "none")]).output
    bad_key = runner.invoke(app, ["audit", "verify", str(tmp_path), "--public-key", "abc"])
    assert bad_key.exit_code == 2 and "not an Ed25519 public key" in bad_key.output
    bad_time = runner.invoke(app, ["audit", "export", "-o", str(tmp_path / "a"), "--since", "yesterday"])
    assert bad_time.exit_code == 2 and "not an ISO 8601 time" in bad_time.output
    naive = runner.invoke(app, ["audit", "export", "-o", str(tmp_path / "a"), "--since", "2026-11-01T00:00:00"])
    assert naive.exit_code == 2 and "with its offset" in naive.output
    status = runner.invoke(app, ["audit", "export", "-o", str(tmp_path / "a"), "--status", "done"])
    assert status.exit_code == 2 and "unknown status 'done'" in status.output
    case_type = runner.invoke(app, ["audit", "export", "-o", str(tmp_path / "a"), "--case-type", "nope"])
    assert case_type.exit_code == 2
