from datetime import UTC, datetime

from sandbox.data import (
    DEMO_CUSTOMER_DELAYED,
    DEMO_CUSTOMER_LOST,
    DEMO_CUSTOMER_WITHOUT_ORDERS,
    DEMO_ORDER_CANCELLED,
    DEMO_ORDER_DELAYED,
    DEMO_ORDER_DELIVERED,
    DEMO_ORDER_LOST,
    DEMO_ORDER_PROCESSING,
    DEMO_TRACKING_DELAYED,
    DEMO_TRACKING_DELIVERED,
    DEMO_TRACKING_LOST,
    DEMO_VIP_CUSTOMER,
    build_demo_data,
)

NOW = datetime(2026, 3, 2, 10, tzinfo=UTC)


def test_same_seed_gives_the_same_data():
    assert build_demo_data(seed=3, now=NOW) == build_demo_data(seed=3, now=NOW)
    assert build_demo_data(seed=3, now=NOW) != build_demo_data(seed=4, now=NOW)


def test_about_twenty_customers_some_of_them_vip():
    data = build_demo_data(now=NOW)
    assert len(data.customers) == 20
    assert 2 <= sum(c.tier == "vip" for c in data.customers.values()) < 10
    assert data.customers[DEMO_VIP_CUSTOMER].tier == "vip"


def test_most_parcels_are_on_time_several_are_late_and_one_is_lost():
    shipments = build_demo_data(now=NOW).shipments.values()
    late = [s for s in shipments if s.delay_hours > 0]
    assert 3 <= len(late) < len(shipments) / 2
    assert [s.tracking_number for s in shipments if s.status == "LOST"] == [DEMO_TRACKING_LOST]


def test_well_known_stories_hold_for_every_seed():
    for seed in range(5):
        data = build_demo_data(seed=seed, now=NOW)
        delayed = data.shipments[DEMO_TRACKING_DELAYED]
        assert data.orders[DEMO_ORDER_DELAYED].customer_id == DEMO_CUSTOMER_DELAYED
        assert data.orders[DEMO_ORDER_DELAYED].tracking_number == DEMO_TRACKING_DELAYED
        assert delayed.status == "IN_TRANSIT" and delayed.eta > delayed.promised_date
        assert delayed.promised_date < NOW
        assert data.orders[DEMO_ORDER_LOST].customer_id == DEMO_CUSTOMER_LOST
        assert data.shipments[DEMO_TRACKING_LOST].status == "LOST"
        delivered = data.shipments[DEMO_TRACKING_DELIVERED]
        assert delivered.status == "DELIVERED" and delivered.delay_hours == 0
        assert data.orders[DEMO_ORDER_DELIVERED].tracking_number == DEMO_TRACKING_DELIVERED
        assert data.orders[DEMO_ORDER_PROCESSING].tracking_number is None
        assert data.orders[DEMO_ORDER_CANCELLED].status == "CANCELLED"
        assert not [o for o in data.orders.values() if o.customer_id == DEMO_CUSTOMER_WITHOUT_ORDERS]
        assert {t.requester_id for t in data.tickets.values()} >= {DEMO_CUSTOMER_DELAYED, DEMO_CUSTOMER_LOST}


def test_every_shipped_order_has_a_shipment_with_events_in_time_order():
    data = build_demo_data(now=NOW)
    for order in data.orders.values():
        if order.status in ("SHIPPED", "DELIVERED"):
            shipment = data.shipments[order.tracking_number]
            assert shipment.reference == order.id  # the carrier can find it by the order id
            times = [c.time for c in shipment.checkpoints]
            assert times == sorted(times) and times[-1] <= NOW
        assert order.total > 0
