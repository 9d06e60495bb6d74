"""Fakes for the activity unit tests: an in-memory ERP and the refund policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.errors import NotFound
from models.customer360 import Customer, Order, OrderStatus, Refund, RefundStatus
from policies import MODEL_PATH, POLICY_PATH, Authorizer

HERE = Path(__file__).resolve().parent
NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)


def order(order_id: str, customer_id: str, *, days_ago: int, tracking: str | None = None,
          total: str = "100.00") -> Order:
    return Order(id=order_id, customer_id=customer_id, status=OrderStatus.shipped,
                 placed_at=NOW - timedelta(days=days_ago), currency="EUR", total=Decimal(total),
                 tracking_number=tracking)


class FakeErp:
    """Just enough of an ``OrderSystem``: two customers, refunds deduplicated by key."""

    def __init__(self) -> None:
        self.customers = {"C-1": Customer(id="C-1", name="Ana Test", email="ana@example.com")}
        self.orders = {
            o.id: o for o in (
                order("O-old", "C-1", days_ago=30, tracking="T-old"),
                order("O-new", "C-1", days_ago=1, tracking="T-new"),
                order("O-other", "C-2", days_ago=2, tracking="T-other"),
            )
        }
        self.refunds: dict[str, Refund] = {}
        self.refund_calls = 0
        self.closed = False

    def get_customer(self, customer_id: str) -> Customer:
        if customer_id not in self.customers:
            raise NotFound("erp", f"no customer {customer_id}")
        return self.customers[customer_id]

    def get_order(self, order_id: str) -> Order:
        if order_id not in self.orders:
            raise NotFound("erp", f"no order {order_id}")
        return self.orders[order_id]

    def list_orders(self, customer_id: str) -> list[Order]:
        return [o for o in self.orders.values() if o.customer_id == customer_id]

    def create_refund(self, order_id: str, amount: Decimal, reason: str, idempotency_key: str) -> Refund:
        self.refund_calls += 1
        if idempotency_key not in self.refunds:
            self.refunds[idempotency_key] = Refund(
                id=f"R-{len(self.refunds) + 1}", order_id=order_id, amount=amount, currency="EUR", reason=reason,
                idempotency_key=idempotency_key, status=RefundStatus.completed, created_at=NOW,
            )
        return self.refunds[idempotency_key]

    def get_refund(self, refund_id: str) -> Refund:
        for refund in self.refunds.values():
            if refund.id == refund_id:
                return refund
        raise NotFound("erp", f"no refund {refund_id}")

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_erp() -> FakeErp:
    return FakeErp()


@pytest.fixture(scope="session")
def refund_policy(tmp_path_factory) -> Path:
    """The shipped policy with the test's people (people.csv) holding their roles."""
    path = tmp_path_factory.mktemp("policy") / "policy.csv"
    path.write_text(POLICY_PATH.read_text() + (HERE / "people.csv").read_text())
    return path


@pytest.fixture(scope="session")
def authorizer(refund_policy: Path) -> Authorizer:
    return Authorizer.from_files(MODEL_PATH, refund_policy)
