"""Which SLA applies to a ticket, and what happens on breach."""

from datetime import timedelta

import pytest
from pydantic import ValidationError

from sla import (
    CustomerTier,
    MoveToQueue,
    NoSlaPolicyError,
    Notify,
    Priority,
    RaisePriority,
    SlaPolicy,
    SlaTarget,
    SlaTargetKind,
    resolve_policy,
)


def policy(priority=Priority.high, department=None, tier=None, hours=8) -> SlaPolicy:
    target = SlaTarget(first_response=timedelta(hours=hours), resolution=timedelta(hours=hours * 4))
    return SlaPolicy(priority=priority, department=department, tier=tier, target=target)


DEFAULT = policy(hours=8)
BILLING = policy(department="billing", hours=6)
VIP = policy(tier=CustomerTier.vip, hours=2)
BILLING_VIP = policy(department="billing", tier=CustomerTier.vip, hours=1)
LOW = policy(priority=Priority.low, hours=24)
ALL = [DEFAULT, BILLING, VIP, BILLING_VIP, LOW]


@pytest.mark.parametrize(
    ("department", "tier", "expected"),
    [
        ("billing", CustomerTier.vip, BILLING_VIP),
        ("shipping", CustomerTier.vip, VIP),  # tier beats the missing department override
        ("billing", CustomerTier.standard, BILLING),
        ("billing", None, BILLING),
        ("shipping", CustomerTier.standard, DEFAULT),
        (None, None, DEFAULT),
    ],
)
def test_most_specific_policy_wins(department, tier, expected):
    assert resolve_policy(ALL, Priority.high, department, tier) == expected


def test_list_order_does_not_matter():
    assert resolve_policy(reversed(ALL), Priority.high, "billing", CustomerTier.vip) == BILLING_VIP


def test_tier_policy_beats_department_policy():
    assert resolve_policy([BILLING, VIP], Priority.high, "billing", CustomerTier.vip) == VIP


def test_priority_must_match():
    assert resolve_policy(ALL, Priority.low, "billing", CustomerTier.vip) == LOW
    with pytest.raises(NoSlaPolicyError, match="priority urgent"):
        resolve_policy(ALL, Priority.urgent, "billing", CustomerTier.vip)


def test_narrowed_policies_do_not_leak_to_other_tickets():
    with pytest.raises(NoSlaPolicyError, match="department shipping, tier standard"):
        resolve_policy([BILLING, VIP, BILLING_VIP], Priority.high, "shipping", CustomerTier.standard)


def test_equally_specific_policies_are_a_configuration_error():
    with pytest.raises(ValueError, match="2 SLA policies are equally specific"):
        resolve_policy([DEFAULT, BILLING, policy(department="billing", hours=5)], Priority.high, "billing", None)


def test_models_from_other_modules_with_same_values_are_accepted():
    # models.ticket.Priority has the same string values; plain strings work too.
    assert resolve_policy(ALL, "high", "billing", "vip") == BILLING_VIP


def test_escalations_parse_from_configuration_and_filter_by_target():
    configured = SlaPolicy.model_validate(
        {
            "priority": "urgent",
            "target": {"first_response": "PT30M", "resolution": "PT4H"},
            "escalations": [
                {"action": "notify", "recipient": "team-lead"},
                {"action": "raise_priority", "on_breach_of": "first_response"},
                {"action": "move_to_queue", "queue": "escalations", "on_breach_of": "resolution"},
            ],
        }
    )
    assert configured.warn_at == 0.8
    assert configured.escalations_for(SlaTargetKind.first_response) == [
        Notify(recipient="team-lead"),
        RaisePriority(on_breach_of="first_response"),
    ]
    assert configured.escalations_for(SlaTargetKind.resolution) == [
        Notify(recipient="team-lead"),
        MoveToQueue(queue="escalations", on_breach_of="resolution"),
    ]
    assert SlaPolicy.model_validate_json(configured.model_dump_json()) == configured


@pytest.mark.parametrize(
    "data",
    [
        {"first_response": "PT0S", "resolution": "PT4H"},
        {"first_response": "PT1H", "resolution": "-PT4H"},
    ],
)
def test_targets_must_be_positive(data):
    with pytest.raises(ValidationError, match="positive"):
        SlaTarget.model_validate(data)


@pytest.mark.parametrize("warn_at", [0, 1, 1.5, -0.2])
def test_warn_at_is_a_fraction_of_the_budget(warn_at):
    with pytest.raises(ValidationError):
        SlaPolicy(priority=Priority.normal, target=DEFAULT.target, warn_at=warn_at)


def test_unknown_escalation_is_refused():
    with pytest.raises(ValidationError):
        SlaPolicy.model_validate({"priority": "low", "target": DEFAULT.target, "escalations": [{"action": "page_ceo"}]})
