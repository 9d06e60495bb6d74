"""`ticketflow policy|user|token|department` on a fresh database of their own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from cli.main import app
from models.db import Database
from policies import store
from settings import get_settings


@pytest.fixture
def cli_database(tmp_path, monkeypatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'ticketflow.db'}"
    monkeypatch.setenv("TICKETFLOW_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


@pytest.fixture
def ticketflow(cli_database):
    """Runs `ticketflow ...` in this process; an unexpected exception fails the test."""
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args), catch_exceptions=False)


def memberships(url: str, user: str) -> list[tuple[str, str]]:
    db = Database(url)
    try:
        return db.call(store.memberships, user)
    finally:
        db.dispose()


def test_token_create_grants_every_department_named_and_prints_only_the_token(ticketflow, cli_database):
    result = ticketflow("token", "create", "--user", "x", "--role", "agent",
                        "--department", "logistics", "--department", "billing")

    assert result.exit_code == 0
    assert result.stdout.strip().startswith(store.TOKEN_PREFIX) and len(result.stdout.splitlines()) == 1
    assert memberships(cli_database, "x") == [("agent", "billing"), ("agent", "logistics")]


def test_an_agent_token_without_a_department_is_refused(ticketflow, cli_database):
    result = ticketflow("token", "create", "--user", "x", "--role", "agent")

    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("error: ") and "the role agent is held in named departments: give --department D" \
        in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_a_token_for_an_unknown_department_creates_no_user(ticketflow, cli_database):
    result = ticketflow("token", "create", "--user", "x", "--role", "agent", "--department", "atlantis")

    assert result.exit_code == 2 and "unknown department 'atlantis'" in result.stderr
    assert "x" not in ticketflow("user", "list").stdout


def test_policy_grant_in_an_unknown_department_names_it(ticketflow, cli_database):
    ticketflow("user", "create", "x")

    result = ticketflow("policy", "grant", "--user", "x", "--role", "agent", "--department", "atlantis")

    assert result.exit_code == 2
    assert result.stderr.startswith("error: unknown department 'atlantis': known are billing, general")
    assert memberships(cli_database, "x") == []


def test_policy_grant_and_revoke(ticketflow, cli_database):
    ticketflow("user", "create", "x")

    granted = ticketflow("policy", "grant", "--user", "x", "--role", "supervisor", "--department", "*")
    revoked = ticketflow("policy", "revoke", "--user", "x", "--role", "supervisor", "--department", "*")

    assert granted.stdout == "granted: x holds supervisor in *\n"
    assert revoked.stdout == "revoked: x holds no roles\n"
    assert memberships(cli_database, "x") == []


def test_an_exported_policy_imports_with_no_changes(ticketflow, tmp_path):
    exported = tmp_path / "policy.csv"
    assert ticketflow("policy", "export", "-o", str(exported)).exit_code == 0

    result = ticketflow("policy", "import", str(exported))

    assert result.exit_code == 0 and result.stdout == "no changes\n"


def test_a_malformed_policy_file_is_refused_naming_its_line(ticketflow, tmp_path):
    bad = tmp_path / "policy.csv"
    bad.write_text("p, agent, ticket, read, department,\np, agent, ticket, fly\n")
    before = ticketflow("policy", "export").stdout

    result = ticketflow("policy", "import", str(bad))

    assert result.exit_code == 2 and result.stderr.startswith("error: line 2: ")
    assert ticketflow("policy", "export").stdout == before


def test_policy_import_dry_run_shows_the_change_and_writes_nothing(ticketflow, tmp_path):
    proposal = tmp_path / "policy.csv"
    proposal.write_text(ticketflow("policy", "export").stdout + "p, auditor, faq, ask, all,\n")

    dry = ticketflow("policy", "import", str(proposal), "--dry-run")

    assert dry.stdout.splitlines()[0] == "+ p, auditor, faq, ask, all, "
    assert ticketflow("policy", "diff", str(proposal)).stdout == dry.stdout.replace(
        "dry run, nothing written: ", "")
    assert "imported: 1 added, 0 removed" in ticketflow("policy", "import", str(proposal)).stdout


def test_user_list_shows_memberships(ticketflow):
    ticketflow("token", "create", "--user", "dee", "--role", "agent", "--department", "logistics",
               "--department", "billing")
    ticketflow("user", "create", "nobody")

    lines = ticketflow("user", "list").stdout.splitlines()

    assert [line.split(maxsplit=1) for line in lines] == [["dee", "agent in billing, agent in logistics"],
                                                          ["nobody", "no roles"]]


def test_user_disable_revokes_their_tokens(ticketflow):
    ticketflow("token", "create", "--user", "cust-9", "--role", "customer")

    result = ticketflow("user", "disable", "cust-9")

    assert result.stdout == "disabled cust-9; 1 token(s) revoked\n"
    assert ticketflow("token", "list").stdout == ""


def test_token_rotate_prints_a_new_token_and_revokes_the_old(ticketflow):
    old = ticketflow("token", "create", "--user", "aud", "--role", "auditor").stdout.strip()

    rotated = ticketflow("token", "rotate", "1")

    assert rotated.exit_code == 0
    new = rotated.stdout.strip()
    assert new.startswith(store.TOKEN_PREFIX) and new != old
    assert [line.split()[0] for line in ticketflow("token", "list").stdout.splitlines()] == ["2"]
    assert ticketflow("token", "rotate", "1").exit_code == 2


def test_an_unknown_token_is_named(ticketflow):
    result = ticketflow("token", "revoke", "99")

    assert result.exit_code == 2 and result.stderr == "error: no token 99\n"


def test_department_add_then_list(ticketflow):
    assert ticketflow("department", "add", "claims", "--description", "Insurance claims.").exit_code == 0

    assert "claims               Insurance claims." in ticketflow("department", "list").stdout.splitlines()
    assert ticketflow("department", "add", "Claims").exit_code == 2


@pytest.mark.parametrize("command", ["policy show", "policy export", "policy import", "policy diff",
                                     "policy grant", "policy revoke", "user create", "user list", "user show",
                                     "user disable", "token create", "token list", "token revoke",
                                     "token rotate", "department add", "department list"])
def test_every_command_has_help(command):
    result = CliRunner().invoke(app, [*command.split(), "--help"])

    assert result.exit_code == 0 and "Usage:" in result.stdout


def test_a_password_is_set_from_stdin_and_a_short_one_is_refused(cli_database):
    from policies import people

    runner = CliRunner()
    runner.invoke(app, ["user", "create", "pat"], catch_exceptions=False)

    short = runner.invoke(app, ["user", "set-password", "pat", "--password-stdin"], input="short\n")
    done = runner.invoke(app, ["user", "set-password", "pat", "--password-stdin"], input="a long enough secret\n")

    assert short.exit_code == 2 and "at least 12 characters" in short.output
    assert done.exit_code == 0 and "password set for pat" in done.output
    db = Database(cli_database)
    try:
        password_hash, wait = db.call(people.sign_in_check, "pat")
    finally:
        db.dispose()
    assert wait is None and people.password_matches(password_hash, "a long enough secret")
    assert "a long enough secret" not in password_hash


def test_an_invite_is_printed_once_for_a_known_user(ticketflow, cli_database):
    ticketflow("user", "create", "pat")

    invite = ticketflow("user", "invite", "pat", "--valid-hours", "24")
    unknown = ticketflow("user", "invite", "nobody")

    assert invite.exit_code == 0 and "valid 24 h" in invite.output
    assert invite.output.strip().splitlines()[-1].startswith("tfi_")
    assert unknown.exit_code == 2 and "unknown user 'nobody'" in unknown.output
