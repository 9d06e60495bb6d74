"""A SOAP ERP (spyne, document/literal SOAP 1.1): customers, orders and refunds.

Served at ``/`` of its port: POST for SOAP calls (HTTP basic auth), ``GET /?wsdl`` for the
WSDL. The spyne WSGI application runs inside a FastAPI app so that it shares the sandbox's
``/_admin`` fault injection with the REST services.

Faults a client must handle:
``Client.NotFound`` (unknown customer, order or refund), ``Client.InvalidAmount`` (not
positive, or more than is left to refund), ``Client.InvalidOrderState`` (cancelled order),
``Client.IdempotencyConflict`` (key reused for a different refund),
``Client.SchemaValidationError`` (request does not match the WSDL), ``Server`` (anything
unexpected; also what injected errors look like).

The WSDL checked in at ``connectors/wsdl/erp.wsdl`` is ``render_wsdl()``; regenerate with
``python -m sandbox.erp > connectors/wsdl/erp.wsdl`` after changing the service.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from fastapi import FastAPI, Request, Response
from spyne import Application, Array, ComplexModel, DateTime, Fault, Integer, ServiceBase, Unicode, rpc
from spyne import Decimal as SoapDecimal
from spyne.interface.wsdl import Wsdl11
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication
from starlette.concurrency import run_in_threadpool

from sandbox.data import ERP_PASSWORD, ERP_USERNAME, DemoData, OrderRecord
from sandbox.service import basic_auth_ok, service_app

NAMESPACE = "urn:ticketflow:sandbox:erp"
WSDL_ADDRESS = "http://127.0.0.1:8101/"

# Client faults are answers, not server errors; spyne logs each with a traceback otherwise.
logging.getLogger("spyne.application.client").setLevel(logging.CRITICAL)


def _required(kind):
    return kind(min_occurs=1, nillable=False)


class Customer(ComplexModel):
    __namespace__ = NAMESPACE
    customer_id = _required(Unicode)
    name = _required(Unicode)
    email = _required(Unicode)
    tier = _required(Unicode)
    customer_since = _required(DateTime)


class OrderLine(ComplexModel):
    __namespace__ = NAMESPACE
    sku = _required(Unicode)
    description = _required(Unicode)
    quantity = _required(Integer)
    unit_price = _required(SoapDecimal)


class Order(ComplexModel):
    __namespace__ = NAMESPACE
    order_id = _required(Unicode)
    customer_id = _required(Unicode)
    status = _required(Unicode)
    placed_at = _required(DateTime)
    currency = _required(Unicode)
    total_amount = _required(SoapDecimal)
    refunded_amount = _required(SoapDecimal)
    tracking_number = Unicode(min_occurs=0)
    carrier = Unicode(min_occurs=0)
    lines = Array(OrderLine)


class Refund(ComplexModel):
    __namespace__ = NAMESPACE
    refund_id = _required(Unicode)
    order_id = _required(Unicode)
    amount = _required(SoapDecimal)
    currency = _required(Unicode)
    reason = _required(Unicode)
    idempotency_key = _required(Unicode)
    status = _required(Unicode)
    created_at = _required(DateTime)


class ErpStore:
    """The ERP's state; spyne calls it from worker threads, so every access is locked."""

    def __init__(self, data_factory: Callable[[], DemoData]) -> None:
        self._factory = data_factory
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        data = self._factory()
        with self._lock:
            self.customers = data.customers
            self.orders = data.orders
            self.refunds: dict[str, Refund] = {}
            self.refund_by_key: dict[str, Refund] = {}

    def _refunded(self, order_id: str) -> Decimal:
        return sum((r.amount for r in self.refunds.values() if r.order_id == order_id), Decimal("0.00"))

    def _order(self, record: OrderRecord) -> Order:
        return Order(
            order_id=record.id, customer_id=record.customer_id, status=record.status,
            placed_at=record.placed_at, currency=record.currency, total_amount=record.total,
            refunded_amount=self._refunded(record.id), tracking_number=record.tracking_number,
            carrier=record.carrier,
            lines=[OrderLine(sku=l.sku, description=l.description, quantity=l.quantity, unit_price=l.unit_price)
                   for l in record.lines],
        )

    def get_customer(self, customer_id: str) -> Customer:
        with self._lock:
            c = self.customers.get(customer_id)
            if c is None:
                raise Fault("Client.NotFound", f"no customer {customer_id}")
            return Customer(customer_id=c.id, name=c.name, email=c.email, tier=c.tier, customer_since=c.since)

    def get_order(self, order_id: str) -> Order:
        with self._lock:
            record = self.orders.get(order_id)
            if record is None:
                raise Fault("Client.NotFound", f"no order {order_id}")
            return self._order(record)

    def list_orders(self, customer_id: str) -> list[Order]:
        with self._lock:
            records = sorted((o for o in self.orders.values() if o.customer_id == customer_id),
                             key=lambda o: o.placed_at, reverse=True)
            return [self._order(o) for o in records]

    def create_refund(self, order_id: str, amount: Decimal, reason: str, idempotency_key: str) -> Refund:
        with self._lock:
            existing = self.refund_by_key.get(idempotency_key)
            if existing is not None:
                if existing.order_id != order_id or existing.amount != amount:
                    raise Fault("Client.IdempotencyConflict",
                                f"key {idempotency_key} was used for refund {existing.refund_id} "
                                f"of {existing.amount} on order {existing.order_id}")
                return existing
            record = self.orders.get(order_id)
            if record is None:
                raise Fault("Client.NotFound", f"no order {order_id}")
            if record.status == "CANCELLED":
                raise Fault("Client.InvalidOrderState", f"order {order_id} is cancelled; nothing was charged")
            remaining = record.total - self._refunded(order_id)
            if amount <= 0:
                raise Fault("Client.InvalidAmount", "refund amount must be positive")
            if amount > remaining:
                raise Fault("Client.InvalidAmount",
                            f"refund of {amount} exceeds the {remaining} {record.currency} left on order {order_id}")
            refund = Refund(
                refund_id=f"RF-{len(self.refunds) + 1:05d}", order_id=order_id, amount=amount,
                currency=record.currency, reason=reason, idempotency_key=idempotency_key,
                status="COMPLETED", created_at=datetime.now(UTC).replace(microsecond=0),
            )
            self.refunds[refund.refund_id] = refund
            self.refund_by_key[idempotency_key] = refund
            if amount == remaining:
                record.status = "REFUNDED"
            return refund

    def get_refund(self, refund_id: str) -> Refund:
        with self._lock:
            refund = self.refunds.get(refund_id)
            if refund is None:
                raise Fault("Client.NotFound", f"no refund {refund_id}")
            return refund


class ErpService(ServiceBase):
    """The operations; ``ctx.udc`` is the ``ErpStore`` of the application called."""

    @rpc(_required(Unicode), _returns=Customer)
    def GetCustomer(ctx, customer_id):
        return ctx.udc.get_customer(customer_id)

    @rpc(_required(Unicode), _returns=Order)
    def GetOrder(ctx, order_id):
        return ctx.udc.get_order(order_id)

    @rpc(_required(Unicode), _returns=Array(Order))
    def ListOrders(ctx, customer_id):
        return ctx.udc.list_orders(customer_id)

    @rpc(_required(Unicode), _required(SoapDecimal), _required(Unicode), _required(Unicode), _returns=Refund)
    def CreateRefund(ctx, order_id, amount, reason, idempotency_key):
        return ctx.udc.create_refund(order_id, amount, reason, idempotency_key)

    @rpc(_required(Unicode), _returns=Refund)
    def GetRefund(ctx, refund_id):
        return ctx.udc.get_refund(refund_id)


def soap_application(store: ErpStore | None = None) -> Application:
    app = Application([ErpService], tns=NAMESPACE, name="Erp",
                      in_protocol=Soap11(validator="lxml"), out_protocol=Soap11())
    if store is not None:
        def attach_store(ctx) -> None:
            ctx.udc = store

        app.event_manager.add_listener("method_call", attach_store)
    return app


def render_wsdl(address: str = WSDL_ADDRESS) -> bytes:
    # Wrapping in the WSGI server is what stamps the SOAP-over-HTTP transport into the
    # binding; a bare Application renders a transport zeep ignores (no bindings at all).
    wsdl = Wsdl11(WsgiApplication(soap_application()).app.interface)
    wsdl.build_interface_document(address)
    return wsdl.get_interface_document()


def soap_fault_body(status_code: int) -> tuple[bytes, str]:
    """What an injected error looks like: the server fault a real ERP sends when its
    database is away."""
    body = (
        "<?xml version='1.0' encoding='UTF-8'?>"
        '<soap11env:Envelope xmlns:soap11env="http://schemas.xmlsoap.org/soap/envelope/">'
        "<soap11env:Body><soap11env:Fault><faultcode>soap11env:Server.Unavailable</faultcode>"
        f"<faultstring>injected fault ({status_code}): backend unavailable</faultstring>"
        "</soap11env:Fault></soap11env:Body></soap11env:Envelope>"
    )
    return body.encode(), "text/xml; charset=utf-8"


def _call_wsgi(wsgi_app: WsgiApplication, environ: dict) -> tuple[int, list[tuple[str, str]], bytes]:
    started: dict = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info=None):
        started["status"], started["headers"] = status, headers
        return chunks.append

    chunks: list[bytes] = []
    result = wsgi_app(environ, start_response)
    try:
        chunks.extend(result)
    finally:
        getattr(result, "close", lambda: None)()
    return int(started["status"].split()[0]), started["headers"], b"".join(chunks)


def _environ(request: Request, body: bytes) -> dict:
    server_host, server_port = request.scope.get("server") or ("127.0.0.1", 80)
    environ = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": request.url.path,
        "QUERY_STRING": request.url.query,
        "CONTENT_TYPE": request.headers.get("content-type", ""),
        "CONTENT_LENGTH": str(len(body)),
        "SERVER_NAME": server_host,
        "SERVER_PORT": str(server_port),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": request.url.scheme,
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in request.headers.items():
        key = "HTTP_" + name.upper().replace("-", "_")
        if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
            environ[key] = value
    return environ


def create_app(
    data_factory: Callable[[], DemoData],
    *,
    username: str = ERP_USERNAME,
    password: str = ERP_PASSWORD,
    seed: int = 0,
) -> FastAPI:
    store = ErpStore(data_factory)
    app = service_app("Sandbox ERP (SOAP)", reset_state=store.reset, seed=seed, error_body=soap_fault_body)
    wsgi_app = WsgiApplication(soap_application(store))

    @app.api_route("/", methods=["GET", "POST"], include_in_schema=False)
    async def soap_endpoint(request: Request) -> Response:
        if request.method == "POST" and not basic_auth_ok(request.headers.get("authorization"), username, password):
            return Response("missing or wrong ERP credentials", status_code=401,
                            headers={"WWW-Authenticate": 'Basic realm="erp"'})
        body = await request.body()
        status, headers, payload = await run_in_threadpool(_call_wsgi, wsgi_app, _environ(request, body))
        kept = {k: v for k, v in headers if k.lower() != "content-length"}
        return Response(payload, status_code=status, headers=kept)

    return app


if __name__ == "__main__":
    sys.stdout.buffer.write(render_wsdl())
