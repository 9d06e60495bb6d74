"""The shipped policy, decided by Casbin: departments as domains, `*` for all of them, the
four scopes, refund limits. Deny cases as carefully as the allow cases."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from models.auth import Principal
from policies import MODEL_PATH, POLICY_PATH, Authorizer, Resource

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def authorizer(tmp_path_factory) -> Authorizer:
    path = tmp_path_factory.mktemp("policy") / "policy.csv"
    path.write_text(POLICY_PATH.read_text() + (HERE / "people.csv").read_text())
    return Authorizer.from_files(MODEL_PATH, path)


def ticket(department: str = "logistics", owner: str = "cust-1", assignees: tuple[str, ...] = ()) -> Resource:
    return Resource("ticket", department=department, owner=owner, assignees=assignees)


@pytest.mark.parametrize("user,action,resource", [
    ("ana", "read", ticket("billing")),  # another department
    ("ana", "reassign", Resource("task", department="logistics")),  # agents do not steer
    ("ana", "message", ticket()),  # staff do not speak as the customer
    ("lin", "read", ticket("billing")),  # a supervisor of one department only
    ("cust-1", "read", ticket(owner="cust-2")),  # another customer's ticket
    ("cust-1", "triage", ticket()),  # customers do not pick priority or department
    ("cust-1", "read", Resource("task", department="logistics")),
    ("aud", "claim", Resource("task", department="logistics")),  # auditors act on nothing
    ("aud", "message", ticket()),
    ("agent", "read", Resource("task", department="logistics")),  # a customer named like a role
    ("", "read", Resource("agent", owner="")),  # no name matches no `own` rule
    ("stranger", "read", ticket()),
    ("root", "message", ticket()),
])
def test_denied(authorizer, user, action, resource):
    decision = authorizer.decide(Principal(name=user), action, resource)
    assert not decision.allowed and decision.rule is None


@pytest.mark.parametrize("user,action,resource,rule", [
    ("ana", "read", ticket(), "p, agent, ticket, read, department"),
    ("ana", "read", ticket("billing", assignees=("ana",)), "p, agent, ticket, read, assigned"),
    ("dee", "claim", Resource("task", department="billing"), "p, agent, task, claim, department"),
    ("lin", "reassign", Resource("task", department="logistics"), "p, supervisor, task, reassign, department"),
    ("sam", "read", ticket("billing"), "p, agent, ticket, read, department"),
    ("cust-1", "read", ticket(), "p, customer, ticket, read, own"),
    ("aud", "read", ticket("billing"), "p, auditor, ticket, read, all"),
    ("root", "write", Resource("access"), "p, admin, access, write, all"),
])
def test_allowed_and_by_which_rule(authorizer, user, action, resource, rule):
    decision = authorizer.decide(Principal(name=user), action, resource)
    assert decision.allowed and decision.rule == rule


@pytest.mark.parametrize("user,amount,allowed", [
    ("ana", "50", True), ("ana", "50.01", False), ("lin", "500", True), ("lin", "500.01", False),
    ("root", "500", True), ("aud", "1", False), ("cust-1", "1", False),
])
def test_refunds_within_the_roles_limit(authorizer, user, amount, allowed):
    refund = Resource("order", department="logistics", amount=float(Decimal(amount)))
    assert authorizer.allowed(Principal(name=user), "refund", refund) is allowed


def test_reach_for_lists(authorizer):
    assert authorizer.reach(Principal(name="dee"), "read", "ticket").departments == {"logistics", "billing"}
    assert authorizer.reach(Principal(name="sam"), "read", "ticket").everything
    customer = authorizer.reach(Principal(name="cust-1"), "read", "ticket")
    assert customer.own and not customer.everything and not customer.departments
    assert authorizer.reach(Principal(name="cust-1"), "read", "task").nothing


def test_the_matcher_is_parsed_once_not_on_every_decision(tmp_path, monkeypatch):
    """Casbin would parse its matcher with `ast` on every enforce; here it is parsed once.
    Two threads in CPython 3.11's AST conversion at once can fail, and it costs time."""
    import casbin.util.expression

    path = tmp_path / "policy.csv"
    path.write_text(POLICY_PATH.read_text() + (HERE / "people.csv").read_text())
    fresh = Authorizer.from_files(MODEL_PATH, path)
    assert fresh.allowed(Principal(name="ana"), "read", ticket())  # the matcher is parsed (once)

    def no_parsing(*args, **kwargs):  # noqa: ANN002, ANN003
        raise AssertionError("the matcher was parsed again")

    monkeypatch.setattr(casbin.util.expression.ast, "parse", no_parsing)
    for n in range(20):  # cold decisions, each a new question for Casbin
        refund = Resource("order", department="logistics", amount=float(n))
        assert fresh.allowed(Principal(name="ana"), "refund", refund) is (n <= 50)
    assert not fresh.allowed(Principal(name="ana"), "read", ticket("billing"))
