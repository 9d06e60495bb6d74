from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import requests
import zeep
import zeep.exceptions

from sandbox.data import (
    DEMO_CUSTOMER_DELAYED,
    DEMO_CUSTOMER_WITHOUT_ORDERS,
    DEMO_ORDER_CANCELLED,
    DEMO_ORDER_DELAYED,
    DEMO_TRACKING_DELAYED,
    DEMO_VIP_CUSTOMER,
)
from sandbox.erp import WSDL_ADDRESS, render_wsdl

CHECKED_IN_WSDL = Path(__file__).parents[2] / "connectors" / "wsdl" / "erp.wsdl"


@pytest.fixture
def erp(sandbox):
    session = requests.Session()
    session.auth = (sandbox.erp_username, sandbox.erp_password)
    client = zeep.Client(str(CHECKED_IN_WSDL), transport=zeep.Transport(session=session, operation_timeout=5))
    yield client.create_service("{urn:ticketflow:sandbox:erp}Erp", sandbox.urls["erp"] + "/")
    session.close()


def test_checked_in_wsdl_is_what_the_service_serves(sandbox):
    served = httpx.get(sandbox.urls["erp"] + "/?wsdl").content
    assert served == render_wsdl(sandbox.urls["erp"] + "/")
    assert CHECKED_IN_WSDL.read_bytes() == render_wsdl(WSDL_ADDRESS), (
        "connectors/wsdl/erp.wsdl is stale: python -m sandbox.erp > connectors/wsdl/erp.wsdl"
    )


def test_serves_seeded_orders_and_customers(erp):
    order = erp.GetOrder(DEMO_ORDER_DELAYED)
    assert (order.customer_id, order.status, order.tracking_number) == (DEMO_CUSTOMER_DELAYED, "SHIPPED", DEMO_TRACKING_DELAYED)
    assert order.total_amount == sum(line.unit_price * line.quantity for line in order.lines.OrderLine)
    assert [o.order_id for o in erp.ListOrders(DEMO_CUSTOMER_DELAYED)][0] == DEMO_ORDER_DELAYED
    assert erp.ListOrders(DEMO_CUSTOMER_WITHOUT_ORDERS) is None  # zeep's empty array
    assert erp.GetCustomer(DEMO_VIP_CUSTOMER).tier == "vip"


def test_same_idempotency_key_refunds_once(erp):
    first = erp.CreateRefund(DEMO_ORDER_DELAYED, Decimal("25.00"), "parcel late", "refund-key-1")
    again = erp.CreateRefund(DEMO_ORDER_DELAYED, Decimal("25.00"), "parcel late", "refund-key-1")
    assert again.refund_id == first.refund_id
    assert erp.GetOrder(DEMO_ORDER_DELAYED).refunded_amount == Decimal("25.00")
    assert erp.GetRefund(first.refund_id).amount == Decimal("25.00")


def fault_code(call) -> str:
    with pytest.raises(zeep.exceptions.Fault) as caught:
        call()
    return caught.value.code.rpartition(":")[2]


def test_refund_faults(erp):
    total = erp.GetOrder(DEMO_ORDER_DELAYED).total_amount
    erp.CreateRefund(DEMO_ORDER_DELAYED, Decimal("10.00"), "goodwill", "k-1")
    assert fault_code(lambda: erp.CreateRefund(DEMO_ORDER_DELAYED, total, "full", "k-2")) == "Client.InvalidAmount"
    assert fault_code(lambda: erp.CreateRefund(DEMO_ORDER_DELAYED, Decimal("0"), "zero", "k-3")) == "Client.InvalidAmount"
    assert fault_code(lambda: erp.CreateRefund(DEMO_ORDER_DELAYED, Decimal("11.00"), "goodwill", "k-1")) == (
        "Client.IdempotencyConflict"
    )
    assert fault_code(lambda: erp.CreateRefund("ORD-0", Decimal("1"), "x", "k-4")) == "Client.NotFound"
    assert fault_code(lambda: erp.CreateRefund(DEMO_ORDER_CANCELLED, Decimal("1"), "x", "k-5")) == (
        "Client.InvalidOrderState"
    )
    assert fault_code(lambda: erp.GetRefund("RF-404")) == "Client.NotFound"
    assert erp.GetOrder(DEMO_ORDER_DELAYED).refunded_amount == Decimal("10.00")


def test_refunding_the_rest_marks_the_order_refunded(erp):
    total = erp.GetOrder(DEMO_ORDER_DELAYED).total_amount
    erp.CreateRefund(DEMO_ORDER_DELAYED, total, "lost in transit", "k-full")
    assert erp.GetOrder(DEMO_ORDER_DELAYED).status == "REFUNDED"


def test_request_that_does_not_match_the_wsdl_is_a_client_fault(sandbox):
    envelope = (
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:erp="urn:ticketflow:sandbox:erp"><soapenv:Body><erp:GetOrder/></soapenv:Body></soapenv:Envelope>'
    )
    response = httpx.post(sandbox.urls["erp"] + "/", content=envelope, auth=(sandbox.erp_username, sandbox.erp_password),
                          headers={"Content-Type": "text/xml", "SOAPAction": "GetOrder"})
    assert response.status_code == 500
    assert b"Client.SchemaValidationError" in response.content


def test_calls_without_the_erp_password_are_refused(sandbox):
    response = httpx.post(sandbox.urls["erp"] + "/", content=b"<x/>", auth=(sandbox.erp_username, "wrong"))
    assert response.status_code == 401
