"""The README is the first thing a newcomer trusts: keep its facts true."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from models.auth import Role
from settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
ROUTE_MATRIX = ROOT / "policies" / "route_matrix.csv"
SEED_POLICY = ROOT / "policies" / "policy.csv"


def section(heading: str) -> str:
    """The README's text under `heading`, up to the next heading of any level."""
    start = README.index(f"\n{heading}\n") + len(heading) + 2
    following = re.search(r"^#{1,6} ", README[start:], re.MULTILINE)
    return README[start:start + following.start()] if following else README[start:]


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_every_setting_is_documented(field):
    assert f"`TICKETFLOW_{field.upper()}`" in README


def test_every_documented_setting_exists():
    documented = set(re.findall(r"`TICKETFLOW_([A-Z_]+)`", README))
    assert documented <= {f.upper() for f in Settings.model_fields} | {"TEST_POSTGRES_URL"}


@pytest.mark.parametrize("command", ["up", "worker", "api", "sandbox", "db upgrade",
                                     "token create", "token list", "token revoke", "token rotate",
                                     "user create", "user list", "user show", "user disable",
                                     "policy grant", "policy revoke", "policy show", "policy export",
                                     "policy import", "policy diff", "department add", "department list",
                                     "history show", "history export", "history replay", "keys rotate", "keys list", "case new",
                                     "audit export", "audit key", "audit verify", "audit replay", "audit whatif",
                                     "faq import",
                                     "faq export", "faq ask", "faq status", "faq publish",
                                     "faq suggestions", "faq review"])
def test_documented_commands_exist(command):
    assert f"ticketflow {command}" in README
    result = CliRunner().invoke(app, [*command.split(), "--help"])
    assert result.exit_code == 0, result.output


def route_matrix() -> tuple[list[str], dict[tuple[str, str], list[str]]]:
    """The callers (columns) of policies/route_matrix.csv and each route's decisions."""
    lines = [line for line in ROUTE_MATRIX.read_text().splitlines() if line and not line.startswith("#")]
    header, *rows = list(csv.reader(lines))
    assert header[:2] == ["method", "path"]
    return header[2:], {(row[0], row[1]): row[2:] for row in rows}


def readme_route_tables() -> tuple[list[list[str]], dict[tuple[str, str], list[str]]]:
    """The headers of the tables under "Who may call what" and each route row's cells."""
    headers: list[list[str]] = []
    routes: dict[tuple[str, str], list[str]] = {}
    lines = [line.strip() for line in section("### Who may call what").splitlines() if line.startswith("|")]
    for line, following in zip(lines, [*lines[1:], ""]):
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if set("".join(cells)) <= set("-: "):
            continue  # the line under a header
        if following.startswith("| ---"):
            headers.append(cells[1:])  # the first cell names the group of routes
            continue
        route = re.fullmatch(r"`(GET|POST|PUT|PATCH|DELETE) (/\S*)`", cells[0])
        assert route, f"not a route: {cells[0]!r}"
        assert route.groups() not in routes, f"{cells[0]} is in the README twice"
        routes[route.groups()] = cells[1:]
    return headers, routes


def test_who_may_call_what_is_the_route_matrix():
    callers, expected = route_matrix()
    headers, documented = readme_route_tables()
    assert headers, "no tables under 'Who may call what'"
    assert all(h == callers for h in headers), f"every table's columns are, in order: {callers}"
    assert set(documented) == set(expected), "routes differ between the README and policies/route_matrix.csv"
    wrong = {route: (documented[route], expected[route]) for route in expected if documented[route] != expected[route]}
    assert wrong == {}, "README cells differ from policies/route_matrix.csv (README, CSV)"


def test_every_role_is_documented():
    roles = section("## Access control")
    assert all(f"| `{role.value}` |" in roles for role in Role)


def test_quoted_policy_rules_are_seed_rules():
    seed = {", ".join(f.strip() for f in line.split(",")).rstrip(", ")
            for line in SEED_POLICY.read_text().splitlines() if line.startswith(("p,", "g,"))}
    quoted = re.findall(r"`([pg], [a-z][^`]*)`", README)  # not the `p, ROLE, ...` template
    assert quoted, "the README quotes no policy rule"
    assert set(quoted) <= seed, "rules quoted in the README that policies/policy.csv does not hold"
