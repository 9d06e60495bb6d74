import httpx
import pytest

from connectors.errors import Conflict, InvalidRequest, NotFound
from models.customer360 import ExternalTicketStatus, OutboundMessageStatus, ShipmentStatus
from sandbox.data import (
    CARRIER_NAME,
    DEMO_CUSTOMER_DELAYED,
    DEMO_CUSTOMER_LOST,
    DEMO_CUSTOMER_WITHOUT_ORDERS,
    DEMO_ORDER_DELAYED,
    DEMO_ORDER_LOST,
    DEMO_ORDER_PROCESSING,
    DEMO_TRACKING_DELAYED,
    DEMO_TRACKING_DELIVERED,
    DEMO_TRACKING_LOST,
)

# --- carrier -------------------------------------------------------------------------------


def test_delayed_parcel(connector):
    shipment = connector("carrier").track_shipment(DEMO_TRACKING_DELAYED)
    assert (shipment.status, shipment.carrier) == (ShipmentStatus.in_transit, CARRIER_NAME)
    assert shipment.is_delayed and shipment.delay_hours == 96 and shipment.delay_days == 4
    assert shipment.estimated_delivery > shipment.promised_delivery
    assert [e.time for e in shipment.events] == sorted(e.time for e in shipment.events)
    assert ShipmentStatus.exception in {e.status for e in shipment.events}


def test_lost_and_delivered_parcels(connector):
    carrier = connector("carrier")
    lost = carrier.track_shipment(DEMO_TRACKING_LOST)
    assert lost.status is ShipmentStatus.lost and lost.is_delayed and lost.estimated_delivery is None
    delivered = carrier.track_shipment(DEMO_TRACKING_DELIVERED)
    assert delivered.status is ShipmentStatus.delivered and not delivered.is_delayed
    assert delivered.delivered_at <= delivered.promised_delivery


def test_unknown_tracking_number_is_not_found(connector):
    with pytest.raises(NotFound) as caught:
        connector("carrier").track_shipment("SBX-NOPE/../shipments")
    assert (caught.value.retryable, caught.value.status_code) == (False, 404)


def test_parcels_are_found_by_the_order_id_on_their_label(connector):
    carrier = connector("carrier")
    assert carrier.find_shipments(DEMO_ORDER_DELAYED) == [carrier.track_shipment(DEMO_TRACKING_DELAYED)]
    [lost] = carrier.find_shipments(DEMO_ORDER_LOST)
    assert lost.tracking_number == DEMO_TRACKING_LOST and lost.status is ShipmentStatus.lost


def test_a_return_label_is_made_once_per_key_and_tracked_until_scanned(connector, sandbox):
    carrier = connector("carrier")
    label = carrier.create_return_label(DEMO_ORDER_DELAYED, ["SKU-HEADPH"], "case-1:label")
    assert carrier.create_return_label(DEMO_ORDER_DELAYED, ["SKU-HEADPH"], "case-1:label") == label  # a retry
    assert carrier.create_return_label(DEMO_ORDER_DELAYED, ["SKU-CHARGR"], "case-2:label") != label
    assert label.carrier == CARRIER_NAME and label.label_url.endswith(f"{label.tracking_number}.pdf")
    parcel = carrier.track_shipment(label.tracking_number)
    assert parcel.status is ShipmentStatus.label_created
    [returned] = [s for s in carrier.find_shipments(f"RETURN-{DEMO_ORDER_DELAYED}")
                  if s.tracking_number == label.tracking_number]
    scan = httpx.post(f"{sandbox.urls['carrier']}/returns/{label.tracking_number}/scan",
                      headers={"Authorization": f"Bearer {sandbox.api_key}"})
    assert scan.status_code == 200
    assert carrier.track_shipment(label.tracking_number).status is ShipmentStatus.in_transit
    with pytest.raises(InvalidRequest):
        carrier.create_return_label(" ", [], "k")


def test_a_reference_no_parcel_carries_is_an_empty_list(connector):
    carrier = connector("carrier")
    assert carrier.find_shipments(DEMO_ORDER_PROCESSING) == []  # not shipped yet
    assert carrier.find_shipments("ORD-1001&reference=ORD-1002") == []  # one reference, escaped
    with pytest.raises(InvalidRequest):
        carrier.find_shipments(" ")


# --- helpdesk ------------------------------------------------------------------------------


def test_find_tickets(connector):
    helpdesk = connector("helpdesk")
    [ticket] = helpdesk.find_tickets(DEMO_CUSTOMER_LOST)
    assert ticket.status is ExternalTicketStatus.open and ticket.customer_id == DEMO_CUSTOMER_LOST
    assert ticket.ticketflow_ticket_id is None and ticket.url.endswith(ticket.id)
    assert helpdesk.find_tickets(DEMO_CUSTOMER_WITHOUT_ORDERS) == []


def test_mirror_ticket_is_idempotent_by_ticketflow_id(connector):
    helpdesk = connector("helpdesk")
    first = helpdesk.mirror_ticket("tf-100", DEMO_CUSTOMER_DELAYED, "Parcel late", "ORD-1001 has not arrived")
    again = helpdesk.mirror_ticket("tf-100", DEMO_CUSTOMER_DELAYED, "Parcel late", "ORD-1001 has not arrived")
    assert again == first and first.ticketflow_ticket_id == "tf-100"
    mirrored = [t for t in helpdesk.find_tickets(DEMO_CUSTOMER_DELAYED) if t.ticketflow_ticket_id == "tf-100"]
    assert mirrored == [first]


def test_add_comment_is_idempotent_by_key(connector, sandbox):
    helpdesk = connector("helpdesk")
    ticket = helpdesk.mirror_ticket("tf-101", DEMO_CUSTOMER_DELAYED, "Parcel late", "body")
    first = helpdesk.add_comment(ticket.id, "Refund of 30 EUR issued.", "tf-101-comment-1")
    assert helpdesk.add_comment(ticket.id, "Refund of 30 EUR issued.", "tf-101-comment-1") == first
    with pytest.raises(Conflict):
        helpdesk.add_comment(ticket.id, "Something else", "tf-101-comment-1")
    with pytest.raises(NotFound):
        helpdesk.add_comment("HD-0", "text", "k")
    shown = httpx.get(f"{sandbox.urls['helpdesk']}/api/v2/tickets/{ticket.id}",
                      headers={"Authorization": f"Bearer {sandbox.api_key}"}).json()
    assert [c["body"] for c in shown["ticket"]["comments"]] == ["Refund of 30 EUR issued."]


def test_empty_arguments_are_refused_before_calling(connector):
    with pytest.raises(InvalidRequest):
        connector("helpdesk").mirror_ticket("", DEMO_CUSTOMER_DELAYED, "s", "b")


# --- messaging -----------------------------------------------------------------------------


def test_send_reply_posts_once_per_key(connector, sandbox):
    chat = connector("messaging")
    first = chat.send_reply("conv-3", "Your parcel arrives on Friday.", "tf-7-reply-1")
    assert chat.send_reply("conv-3", "Your parcel arrives on Friday.", "tf-7-reply-1") == first
    assert first.status is OutboundMessageStatus.delivered and first.conversation_id == "conv-3"
    recorded = httpx.get(f"{sandbox.urls['messaging']}/v1/conversations/conv-3/messages",
                         headers={"Authorization": f"Bearer {sandbox.api_key}"}).json()["messages"]
    assert [m["id"] for m in recorded] == [first.id]
