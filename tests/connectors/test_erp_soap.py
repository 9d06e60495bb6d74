from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from connectors.errors import InvalidRequest, NotFound
from models.customer360 import CustomerTier, OrderStatus, RefundStatus
from sandbox.data import (
    DEMO_CUSTOMER_DELAYED,
    DEMO_CUSTOMER_LOST,
    DEMO_CUSTOMER_WITHOUT_ORDERS,
    DEMO_ORDER_CANCELLED,
    DEMO_ORDER_DELAYED,
    DEMO_ORDER_DELIVERED_EARLIER,
    DEMO_ORDER_PROCESSING,
    DEMO_TRACKING_DELAYED,
)


@pytest.fixture
def erp(connector):
    return connector("erp")


def test_get_order_maps_the_erp_order(erp):
    order = erp.get_order(DEMO_ORDER_DELAYED)
    assert order.customer_id == DEMO_CUSTOMER_DELAYED
    assert order.status is OrderStatus.shipped
    assert (order.tracking_number, order.carrier) == (DEMO_TRACKING_DELAYED, "Sandbox Express")
    assert order.total == Decimal("163.99") == sum(l.unit_price * l.quantity for l in order.lines)
    assert order.refundable_amount == order.total
    assert order.placed_at.utcoffset() is not None


def test_list_orders_newest_first_and_empty_for_a_customer_without_orders(erp):
    assert [o.id for o in erp.list_orders(DEMO_CUSTOMER_DELAYED)] == [DEMO_ORDER_DELAYED, DEMO_ORDER_DELIVERED_EARLIER]
    assert erp.list_orders(DEMO_CUSTOMER_WITHOUT_ORDERS) == []


def test_order_without_shipment_or_lines_yet(erp):
    order = erp.get_order(DEMO_ORDER_PROCESSING)
    assert order.status is OrderStatus.processing and order.tracking_number is None


def test_get_customer(erp):
    customer = erp.get_customer(DEMO_CUSTOMER_LOST)
    assert customer.tier is CustomerTier.vip and customer.is_vip


def test_create_refund_is_idempotent_by_key(erp):
    first = erp.create_refund(DEMO_ORDER_DELAYED, Decimal("30.00"), "parcel four days late", "ticket-7-refund")
    again = erp.create_refund(DEMO_ORDER_DELAYED, Decimal("30.00"), "parcel four days late", "ticket-7-refund")
    assert again == first
    assert first.status is RefundStatus.completed and first.currency == "EUR"
    assert erp.get_refund(first.id) == first
    assert erp.get_order(DEMO_ORDER_DELAYED).refunded_total == Decimal("30.00")


@pytest.mark.parametrize(("call", "error", "code"), [
    (lambda erp: erp.get_order("ORD-0"), NotFound, "Client.NotFound"),
    (lambda erp: erp.get_customer("CUST-0"), NotFound, "Client.NotFound"),
    (lambda erp: erp.get_refund("RF-0"), NotFound, "Client.NotFound"),
    (lambda erp: erp.create_refund(DEMO_ORDER_DELAYED, Decimal("1000"), "x", "k"), InvalidRequest, "Client.InvalidAmount"),
    (lambda erp: erp.create_refund(DEMO_ORDER_CANCELLED, Decimal("1"), "x", "k"), InvalidRequest, "Client.InvalidOrderState"),
])
def test_client_faults_are_typed_and_not_retryable(erp, call, error, code):
    with pytest.raises(error) as caught:
        call(erp)
    assert (caught.value.code, caught.value.retryable, caught.value.system) == (code, False, "erp")


def test_reusing_a_refund_key_for_another_amount_is_refused(erp):
    erp.create_refund(DEMO_ORDER_DELAYED, Decimal("5"), "goodwill", "k-1")
    with pytest.raises(InvalidRequest) as caught:
        erp.create_refund(DEMO_ORDER_DELAYED, Decimal("6"), "goodwill", "k-1")
    assert caught.value.code == "Client.IdempotencyConflict"
    assert erp.get_order(DEMO_ORDER_DELAYED).refunded_total == Decimal("5")


@pytest.mark.parametrize("amount", [Decimal("0"), Decimal("-3"), Decimal("NaN")])
def test_nonsense_amounts_never_reach_the_erp(erp, sandbox, amount):
    with pytest.raises(InvalidRequest):
        erp.create_refund(DEMO_ORDER_DELAYED, amount, "x", "k")
    assert sandbox.fault_status("erp")["requests_seen"] == 0


def test_one_client_serves_many_threads(erp):
    customers = [DEMO_CUSTOMER_DELAYED, DEMO_CUSTOMER_LOST, DEMO_CUSTOMER_WITHOUT_ORDERS] * 8
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda c: [o.customer_id for o in erp.list_orders(c)], customers))
    assert all(set(ids) <= {customer} for ids, customer in zip(results, customers, strict=True))
    assert results[0] and results[1] and not results[2]
