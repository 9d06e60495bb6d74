"""Connector results travel through Temporal: they must survive its pydantic converter."""

from temporalio.contrib.pydantic import pydantic_data_converter

from models.customer360 import Customer360, SystemGap
from sandbox.data import DEMO_CUSTOMER_DELAYED, DEMO_ORDER_DELAYED, DEMO_TRACKING_DELAYED, DEMO_TRACKING_LOST


def round_trip(value):
    converter = pydantic_data_converter.payload_converter
    [payload] = converter.to_payloads([value])
    [back] = converter.from_payloads([payload], [type(value)])
    return back


def test_customer360_round_trips_with_money_times_and_derived_fields(connector):
    carrier = connector("carrier")
    picture = Customer360(
        customer_id=DEMO_CUSTOMER_DELAYED,
        orders=[connector("erp").get_order(DEMO_ORDER_DELAYED)],
        shipments=[carrier.track_shipment(DEMO_TRACKING_DELAYED), carrier.track_shipment(DEMO_TRACKING_LOST)],
        external_tickets=connector("helpdesk").find_tickets(DEMO_CUSTOMER_DELAYED),
        gaps=[SystemGap(system="messaging", reason="timed out after 10s", error_type="Timeout")],
    )
    back = round_trip(picture)
    assert back == picture
    assert back.orders[0].total == picture.orders[0].total  # Decimal, not float
    assert [s.is_delayed for s in back.delayed_shipments] == [True, True]
    assert not back.is_complete


def test_old_payload_without_new_fields_still_loads():
    old = Customer360.model_validate_json('{"customer_id": "CUST-1", "shipments": [{"tracking_number": "T",'
                                          ' "carrier": "C", "status": "in_transit"}]}')
    assert old.shipments[0].delay_hours == 0 and not old.shipments[0].is_delayed and old.gaps == []
