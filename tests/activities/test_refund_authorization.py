"""A refund is money: ``create_refund`` asks the policy again, whatever the workflow says,
with the decider's roles from the memberships (people.csv), never from the request, within
the role's limit, and refunds only orders of the ticket's customer. Deny cases first."""

from __future__ import annotations

from decimal import Decimal

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.systems import SystemActivities
from models.systems import RefundRequest

run = ActivityEnvironment().run


def refund(**overrides) -> RefundRequest:
    data = dict(ticket_id="TK-1", customer_id="C-1", order_id="O-new", amount=Decimal("12.50"), reason="parcel late",
                idempotency_key="TK-1:TK-1-t1:refund", department="logistics", decided_by="ana",
                decided_by_role="agent", decided_by_department="logistics")
    data.update(overrides)
    return RefundRequest(**data)


@pytest.mark.parametrize("who", [
    dict(decided_by="gil"),
    dict(decided_by="gil", decided_by_role="admin", decided_by_department="logistics"),
    dict(decided_by="C-1", decided_by_role="customer"),
    dict(decided_by="wizard"),
    dict(decided_by="ana", amount=Decimal("50.01")),
], ids=["agent-of-another-department", "claims-a-role-it-does-not-hold", "customer-refunding-own-order",
        "unknown-user", "agent-over-their-limit"])
def test_denied_refunds_fail_permanently_and_never_reach_the_erp(who, fake_erp, authorizer):
    acts = SystemActivities(orders=fake_erp, authorizer=authorizer)
    with pytest.raises(ApplicationError) as caught:
        run(acts.create_refund, refund(**who))
    assert caught.value.type == "Forbidden" and caught.value.non_retryable
    assert "nothing was refunded" in caught.value.message
    assert fake_erp.refund_calls == 0


@pytest.mark.parametrize("who", [
    dict(),
    dict(decided_by="ana", amount=Decimal("50.00")),
    dict(decided_by="gen"),
    dict(decided_by="sam", amount=Decimal("500.00")),
    dict(decided_by="root"),
], ids=["agent-of-the-department", "agent-at-their-limit", "agent-of-every-department", "supervisor-at-their-limit",
        "admin"])
def test_allowed_refunds_reach_the_erp_once_per_key(who, fake_erp, authorizer):
    acts = SystemActivities(orders=fake_erp, authorizer=authorizer)
    first = run(acts.create_refund, refund(**who))
    again = run(acts.create_refund, refund(**who))  # a retry carries the same key
    assert first == again and first.order_id == "O-new"
    assert len(fake_erp.refunds) == 1


def test_an_order_of_another_customer_is_not_refunded(fake_erp, authorizer):
    acts = SystemActivities(orders=fake_erp, authorizer=authorizer)
    with pytest.raises(ApplicationError) as caught:
        run(acts.create_refund, refund(order_id="O-other"))
    assert caught.value.type == "InvalidRequest" and caught.value.non_retryable
    assert "not an order of customer C-1" in caught.value.message
    assert fake_erp.refund_calls == 0


def test_an_unknown_order_is_a_permanent_not_found(fake_erp, authorizer):
    acts = SystemActivities(orders=fake_erp, authorizer=authorizer)
    with pytest.raises(ApplicationError) as caught:
        run(acts.create_refund, refund(order_id="O-missing"))
    assert caught.value.type == "NotFound" and caught.value.non_retryable
    assert fake_erp.refund_calls == 0


def test_permission_is_checked_before_the_deployment_is(authorizer):
    """A forbidden refund says so even where no ERP is configured: the answer to "may I?"
    does not depend on the deployment."""
    with pytest.raises(ApplicationError) as caught:
        run(SystemActivities(authorizer=authorizer).create_refund, refund(decided_by="gil"))
    assert caught.value.type == "Forbidden"
