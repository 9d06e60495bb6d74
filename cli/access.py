"""`ticketflow policy|user|token|department`: who may do what, from a shell on the server.

The commands work on the database directly, apply migrations first, and act as
`policies.store.CLI_ACTOR` in the access audit. What the API's `/admin` routes do, these do
through the same store: each change is one transaction with its audit row, in force in every
running process within seconds. Input the store refuses prints `error: ...` on stderr and
exits 2 with nothing changed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from sqlmodel import Session

from policies import store
from policies.store import CLI_ACTOR, AccessInputError, AccessNotFound, PolicyDiff, TokenView, UserView

T = TypeVar("T")

policy_app = typer.Typer(help="The policy: its rules (show, export, import, diff) and who holds which role "
                              "where (grant, revoke).", no_args_is_help=True)
user_app = typer.Typer(help="Users: create, list, show, disable, set a password or invite to set one.",
                       no_args_is_help=True)
token_app = typer.Typer(help="API tokens: create, list, revoke, rotate.", no_args_is_help=True)
department_app = typer.Typer(help="Departments (task queues; the places roles are held in): add, list.",
                             no_args_is_help=True)

ROLES_HELP = "One of: " + ", ".join(sorted(store.ROLES)) + "."


def _run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Migrate, then run `fn(session, ...)` in one transaction. A refusal of the store
    rolls it back whole and ends the command with one line on stderr and exit code 2."""
    from migrations import upgrade
    from models.db import Database
    from settings import get_settings

    url = get_settings().effective_database_url
    upgrade(url)
    db = Database(url)
    try:
        return db.call(fn, *args, **kwargs)
    except (AccessInputError, AccessNotFound) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        db.dispose()


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else "-"


def _held(memberships: list[tuple[str, str]]) -> str:
    return ", ".join(f"{role} in {department}" for role, department in memberships) or "no roles"


def _echo_membership_change(user: str, result: tuple[list[tuple[str, str]], bool], verb: str) -> None:
    memberships, changed = result
    typer.echo(f"{verb if changed else 'unchanged'}: {user} holds {_held(memberships)}")


def _echo_diff(diff: PolicyDiff) -> None:
    for rule in diff.added:
        typer.echo("+ " + ", ".join(rule))
    for rule in diff.removed:
        typer.echo("- " + ", ".join(rule))


def _token_line(t: TokenView) -> str:
    if t.revoked_at:
        state = f"revoked {_when(t.revoked_at)}"
    else:
        state = f"expires {_when(t.expires_at)}" if t.expires_at else "never expires"
    return f"{t.id:>6}  {t.user:<20} {t.label or '-':<24} created {_when(t.created_at)}, {state}"


# --- policy ----------------------------------------------------------------------------------


def _rules_and_version(session: Session) -> tuple[list[store.Rule], int]:
    return store.rules(session), store.current_version(session)


@policy_app.command("show")
def policy_show() -> None:
    """The rules in force, as a table, with the policy version.

    Who holds which role where: `ticketflow user list`."""
    rules, version = _run(_rules_and_version)
    typer.echo(f"policy version {version}")
    typer.echo(f"{'ROLE':<12}{'OBJECT':<10}{'ACTION':<10}{'SCOPE':<12}LIMIT")
    for rule in (r for r in rules if r[0] == "p"):
        _, role, obj, act, scope, *limit = rule
        typer.echo(f"{role:<12}{obj:<10}{act:<10}{scope:<12}{(limit or [''])[0] or '-'}")
    for _, role, inherited, *_ in (r for r in rules if r[0] == "g"):
        typer.echo(f"{role} has every right of {inherited}")


@policy_app.command("export")
def policy_export(
    output: Annotated[Path | None, typer.Option("-o", "--output", help="File to write; default: stdout.")] = None,
) -> None:
    """Write the rules as a policy file, which `ticketflow policy import` takes back.

    Memberships are not in it: they are granted per user (`ticketflow policy grant`)."""
    text = _run(store.export_policy)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)


PolicyFileArg = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                               help="A policy file: lines `p, ROLE, OBJECT, ACTION, SCOPE, LIMIT` "
                                                    "and `g, ROLE, ROLE, *`; # starts a comment.")]


@policy_app.command("diff")
def policy_diff(file: PolicyFileArg) -> None:
    """What importing FILE would add (+) and remove (-); changes nothing."""
    diff = _run(store.import_policy, CLI_ACTOR, file.read_text(encoding="utf-8"), dry_run=True)
    _echo_diff(diff)
    typer.echo("no changes" if diff.empty else f"{len(diff.added)} to add, {len(diff.removed)} to remove")


@policy_app.command("import")
def policy_import(
    file: PolicyFileArg,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would change.")] = False,
) -> None:
    """Replace the rules with FILE's, all or nothing; memberships stay.

    A bad line is named and nothing is imported. Prints the rules added (+) and removed (-)."""
    diff = _run(store.import_policy, CLI_ACTOR, file.read_text(encoding="utf-8"), dry_run=dry_run)
    _echo_diff(diff)
    if diff.empty:
        typer.echo("no changes")
    elif dry_run:
        typer.echo(f"dry run, nothing written: {len(diff.added)} to add, {len(diff.removed)} to remove")
    else:
        typer.echo(f"imported: {len(diff.added)} added, {len(diff.removed)} removed")


UserOpt = Annotated[str, typer.Option("--user", help="An existing user (`ticketflow user create`).")]
RoleOpt = Annotated[str, typer.Option("--role", help=ROLES_HELP)]


@policy_app.command("grant")
def policy_grant(
    user: UserOpt, role: RoleOpt,
    department: Annotated[str, typer.Option("--department", help="A department, or * for every department.")],
) -> None:
    """Give a user a role in a department; in force everywhere within seconds."""
    _echo_membership_change(user, _run(store.grant, CLI_ACTOR, user, role, department), "granted")


@policy_app.command("revoke")
def policy_revoke(
    user: UserOpt, role: RoleOpt,
    department: Annotated[str, typer.Option("--department", help="The department the role is held in (* too).")],
) -> None:
    """Take a role in a department away from a user; their tokens stay valid for what remains."""
    _echo_membership_change(user, _run(store.revoke, CLI_ACTOR, user, role, department), "revoked")


# --- users -----------------------------------------------------------------------------------


@user_app.command("create")
def user_create(
    name: Annotated[str, typer.Argument(help="Letters, digits and . _ @ + -; for customers, their customer id.")],
    display_name: Annotated[str, typer.Option("--display-name", help="How people see them.")] = "",
) -> None:
    """Create a user with no roles and no token (`policy grant`, then `token create`)."""
    view, created = _run(store.create_user, CLI_ACTOR, name, display_name)
    typer.echo(f"created user {name}" if created else f"user {name} exists already: unchanged")


@user_app.command("list")
def user_list() -> None:
    """Every user with the roles they hold where, and whether they are disabled."""
    for view in _run(store.list_users):
        disabled = f"  (disabled {_when(view.disabled_at)})" if view.disabled_at else ""
        typer.echo(f"{view.name:<20} {_held(view.memberships)}{disabled}")


def _user_and_tokens(session: Session, name: str) -> tuple[UserView, list[TokenView]]:
    view = store.get_user(session, name)
    if view is None:
        raise AccessNotFound(f"no user {name!r} (`ticketflow user list` shows them all)")
    return view, store.list_tokens(session, name)


@user_app.command("show")
def user_show(name: Annotated[str, typer.Argument(help="The user's name.")]) -> None:
    """One user: roles, state and valid tokens (never their secrets)."""
    view, tokens = _run(_user_and_tokens, name)
    typer.echo(f"user          {view.name}" + (f" ({view.display_name})" if view.display_name else ""))
    typer.echo(f"created       {_when(view.created_at)}")
    typer.echo(f"disabled      {_when(view.disabled_at)}")
    typer.echo(f"roles         {_held(view.memberships)}")
    typer.echo(f"valid tokens  {len(tokens)}")
    for token in tokens:
        typer.echo(_token_line(token))


def _disable(session: Session, actor: str, name: str) -> tuple[UserView, int]:
    valid = len(store.list_tokens(session, name))
    return store.disable_user(session, actor, name), valid


@user_app.command("disable")
def user_disable(name: Annotated[str, typer.Argument(help="The user's name.")]) -> None:
    """Disable a user and revoke every token they hold; their memberships stay for the record."""
    view, revoked = _run(_disable, CLI_ACTOR, name)
    typer.echo(f"disabled {view.name}; {revoked} token(s) revoked")


@user_app.command("set-password")
def user_set_password(
    name: Annotated[str, typer.Argument(help="The user's name.")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input "
                                                  "(one line) instead of asking for it twice.")] = False,
) -> None:
    """Set the password a person signs in to the console with (at least 12 characters); their
    open sessions end. To let them choose it themselves, send an invite instead."""
    import sys

    from policies import people

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    _run(people.set_password, CLI_ACTOR, name, password)
    typer.echo(f"password set for {name}; their console sessions ended")


@user_app.command("invite")
def user_invite(
    name: Annotated[str, typer.Argument(help="The user's name.")],
    valid_hours: Annotated[int, typer.Option("--valid-hours", min=1, max=24 * 30,
                                             help="How long the invite may be used.")] = 72,
) -> None:
    """A one-time invite that lets a person set their own password: they send it with their
    new password to `POST /auth/invite`. Printed once; only its hash is kept."""
    from datetime import timedelta

    from policies import people

    token = _run(people.create_invite, CLI_ACTOR, name, timedelta(hours=valid_hours))
    typer.echo(f"invite for {name}, valid {valid_hours} h, usable once:\n{token}")


# --- tokens ----------------------------------------------------------------------------------


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option(help="User name; for customers, their customer id. Created if missing.")],
    role: Annotated[str, typer.Option(help=f"Granted to the user in each department. {ROLES_HELP}")],
    department: Annotated[list[str] | None, typer.Option(
        help="Where the role holds; repeat it for several, * for every department. Agents and supervisors "
             "must name one; other roles default to *.")] = None,
) -> None:
    """Create the user if needed, grant the role, and print a new API token on stdout.

    The token is stored only as a hash: this is the only time it is shown."""
    typer.echo(_run(store.token_for, user, role, department or [], actor=CLI_ACTOR))


@token_app.command("list")
def token_list(
    user: Annotated[str | None, typer.Option(help="Only this user's tokens.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Also revoked tokens.")] = False,
) -> None:
    """Tokens (id, user, label, expiry), never their secrets; valid ones only unless --all."""
    for token in _run(store.list_tokens, user, include_revoked=all_):
        typer.echo(_token_line(token))


TokenIdArg = Annotated[int, typer.Argument(help="The token's id (`ticketflow token list`).")]


@token_app.command("revoke")
def token_revoke(token_id: TokenIdArg) -> None:
    """Revoke a token: every API process refuses it within seconds."""
    view = _run(store.revoke_token, CLI_ACTOR, token_id)
    typer.echo(f"revoked token {view.id} of {view.user}")


@token_app.command("rotate")
def token_rotate(
    token_id: TokenIdArg,
    expires_in_days: Annotated[int | None, typer.Option(
        min=1, help="Of the new token; default: as long as the old one was valid (never, if it never expired).")
    ] = None,
) -> None:
    """Revoke a token and print its successor (same user and label) on stdout."""
    secret, view = _run(store.rotate_token, CLI_ACTOR, token_id,
                        expires_in=timedelta(days=expires_in_days) if expires_in_days else None)
    typer.echo(f"token {token_id} revoked; new token {view.id} for {view.user}:", err=True)
    typer.echo(secret)


# --- departments -----------------------------------------------------------------------------


@department_app.command("add")
def department_add(
    name: Annotated[str, typer.Argument(help="Lower-case letters, digits, _ and -; also the name of its task queue.")],
    description: Annotated[str, typer.Option(help="What the department handles.")] = "",
) -> None:
    """Add a department, so roles can be granted in it."""
    _, created = _run(store.add_department, CLI_ACTOR, name, description)
    typer.echo(f"added department {name}" if created else f"department {name} exists already: unchanged")


@department_app.command("list")
def department_list() -> None:
    """Every department with its description."""
    for d in _run(store.departments):
        typer.echo(f"{d.name:<20} {d.description}")
