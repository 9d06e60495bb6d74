"""``OrderSystem`` over the ERP's SOAP API, with zeep.

The WSDL is the checked-in ``connectors/wsdl/erp.wsdl``; the ERP is never asked for it at
run time, and the endpoint address comes from settings instead of the WSDL.

zeep is synchronous and a ``requests.Session`` is not documented as thread-safe, so each
thread gets its own zeep client and session (created on first use, about a millisecond of
WSDL parsing); one ``SoapOrderSystem`` serves the whole activity thread pool.
"""

from __future__ import annotations

import threading
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Self

import requests
import zeep
import zeep.exceptions
from pydantic import ValidationError
from requests.adapters import HTTPAdapter
from zeep.helpers import serialize_object

from connectors.errors import (
    ConnectorError,
    InvalidRequest,
    MalformedResponse,
    NotFound,
    Timeout,
    Unauthorized,
    Unavailable,
    error_class_for_status,
    require_text,
)
from connectors.registry import ConnectorConfig
from models.customer360 import Customer, CustomerTier, Order, OrderLine, OrderStatus, Refund, RefundStatus

SYSTEM = "erp"
WSDL_PATH = Path(__file__).parent / "wsdl" / "erp.wsdl"
BINDING = "{urn:ticketflow:sandbox:erp}Erp"

_ORDER_STATUS = {
    "PROCESSING": OrderStatus.processing,
    "SHIPPED": OrderStatus.shipped,
    "DELIVERED": OrderStatus.delivered,
    "CANCELLED": OrderStatus.cancelled,
    "REFUNDED": OrderStatus.refunded,
}
_REFUND_STATUS = {
    "PENDING": RefundStatus.pending,
    "COMPLETED": RefundStatus.completed,
    "REJECTED": RefundStatus.rejected,
}


def error_for_fault(fault: zeep.exceptions.Fault) -> ConnectorError:
    """SOAP fault -> connector error. ``Client.*`` faults are the request's fault and
    permanent; ``Server`` (and anything unknown) is the ERP's and worth retrying."""
    code = (fault.code or "").rpartition(":")[2]  # "soap11env:Client.NotFound" -> "Client.NotFound"
    head, _, sub = code.partition(".")
    message = fault.message or code or "SOAP fault without a message"
    if head in ("Client", "Sender"):
        if sub in ("NotFound", "ResourceNotFound"):
            return NotFound(SYSTEM, message, code=code)
        if sub.startswith(("Auth", "Unauthorized")):
            return Unauthorized(SYSTEM, message, code=code)
        return InvalidRequest(SYSTEM, message, code=code)
    return Unavailable(SYSTEM, message, code=code or None)


def error_for_transport(exc: zeep.exceptions.TransportError) -> ConnectorError:
    """A non-SOAP HTTP answer (a proxy's error page, a truncated body...)."""
    status = exc.status_code
    detail = f"HTTP {status}: {str(exc.message)[:300]}"
    if status == 404:
        # The endpoint itself is missing: a wrong URL in settings, not a missing order.
        return InvalidRequest(SYSTEM, f"no SOAP endpoint at the configured address ({detail})", status_code=status)
    return error_class_for_status(status)(SYSTEM, detail, status_code=status)


def _items(array: Any, element: str) -> list[Any]:
    """A spyne array as zeep returns it: ``None`` when empty, ``{element: [...]}`` nested,
    or already a list at the top level of a response."""
    if array is None:
        return []
    if isinstance(array, dict):
        return list(array.get(element) or [])
    return list(array)


def _order(raw: dict) -> Order:
    status = raw["status"]
    return Order(
        id=raw["order_id"],
        customer_id=raw["customer_id"],
        status=_ORDER_STATUS.get(status, OrderStatus.unknown),
        external_status=status,
        placed_at=raw["placed_at"],
        currency=raw["currency"],
        total=raw["total_amount"],
        refunded_total=raw["refunded_amount"],
        tracking_number=raw.get("tracking_number"),
        carrier=raw.get("carrier"),
        lines=[
            OrderLine(sku=l["sku"], description=l["description"], quantity=l["quantity"], unit_price=l["unit_price"])
            for l in _items(raw.get("lines"), "OrderLine")
        ],
    )


def _refund(raw: dict) -> Refund:
    return Refund(
        id=raw["refund_id"],
        order_id=raw["order_id"],
        amount=raw["amount"],
        currency=raw["currency"],
        reason=raw["reason"],
        idempotency_key=raw["idempotency_key"],
        status=_REFUND_STATUS.get(raw["status"], RefundStatus.unknown),
        created_at=raw["created_at"],
    )


def _customer(raw: dict) -> Customer:
    return Customer(
        id=raw["customer_id"],
        name=raw["name"],
        email=raw["email"],
        tier=CustomerTier.vip if raw["tier"] == "vip" else CustomerTier.standard,
        customer_since=raw["customer_since"],
    )


class SoapOrderSystem:
    """``OrderSystem`` for the SOAP ERP. Thread-safe."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        username: str | None = None,
        password: str | None = None,
        wsdl_path: Path = WSDL_PATH,
    ) -> None:
        """``base_url`` is the SOAP endpoint address; ``timeout`` (seconds) bounds the
        connect and each read of a call; ``username``/``password`` are HTTP basic auth."""
        self._address = base_url
        self._timeout = timeout
        self._auth = (username, password or "") if username is not None else None
        self._wsdl = str(wsdl_path)
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()

    @classmethod
    def from_config(cls, config: ConnectorConfig) -> Self:
        return cls(
            config.base_url,
            timeout=config.timeout_seconds,
            username=config.username,
            password=config.password.get_secret_value() if config.password else None,
        )

    def _service(self) -> Any:
        service = getattr(self._local, "service", None)
        if service is None:
            session = requests.Session()
            # requests' default adapter already has zero retries; spelled out because
            # Temporal owns retries, and a retried CreateRefund must be Temporal's decision.
            adapter = HTTPAdapter(max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.auth = self._auth
            transport = zeep.Transport(session=session, timeout=self._timeout, operation_timeout=self._timeout)
            client = zeep.Client(self._wsdl, transport=transport)
            service = client.create_service(BINDING, self._address)
            self._local.service = service
            with self._sessions_lock:
                self._sessions.append(session)
        return service

    def _call(self, operation: str, *args: Any) -> Any:
        try:
            result = getattr(self._service(), operation)(*args)
        except zeep.exceptions.Fault as exc:
            raise error_for_fault(exc) from exc
        except zeep.exceptions.TransportError as exc:
            raise error_for_transport(exc) from exc
        except requests.Timeout as exc:
            raise Timeout(SYSTEM, f"{operation}: no answer within {self._timeout}s") from exc
        except requests.RequestException as exc:
            raise Unavailable(SYSTEM, f"{operation}: {type(exc).__name__}: {exc}") from exc
        except zeep.exceptions.Error as exc:
            # XMLSyntaxError, XMLParseError, ValidationError, UnexpectedElementError...
            raise MalformedResponse(SYSTEM, f"{operation}: {type(exc).__name__}: {exc}") from exc
        return serialize_object(result, dict)

    def _convert(self, operation: str, convert: Any, raw: Any) -> Any:
        try:
            return convert(raw)
        except (KeyError, TypeError, ValidationError, InvalidOperation) as exc:
            raise MalformedResponse(SYSTEM, f"{operation}: unexpected response: {type(exc).__name__}: {exc}") from exc

    def get_customer(self, customer_id: str) -> Customer:
        require_text(SYSTEM, customer_id=customer_id)
        return self._convert("GetCustomer", _customer, self._call("GetCustomer", customer_id))

    def get_order(self, order_id: str) -> Order:
        require_text(SYSTEM, order_id=order_id)
        return self._convert("GetOrder", _order, self._call("GetOrder", order_id))

    def list_orders(self, customer_id: str) -> list[Order]:
        require_text(SYSTEM, customer_id=customer_id)
        raw = self._call("ListOrders", customer_id)
        return self._convert("ListOrders", lambda r: [_order(o) for o in _items(r, "Order")], raw)

    def create_refund(self, order_id: str, amount: Decimal, reason: str, idempotency_key: str) -> Refund:
        require_text(SYSTEM, order_id=order_id, reason=reason, idempotency_key=idempotency_key)
        amount = Decimal(amount)
        if not amount.is_finite() or amount <= 0:
            raise InvalidRequest(SYSTEM, f"refund amount must be positive, got {amount}")
        raw = self._call("CreateRefund", order_id, amount, reason, idempotency_key)
        return self._convert("CreateRefund", _refund, raw)

    def get_refund(self, refund_id: str) -> Refund:
        require_text(SYSTEM, refund_id=refund_id)
        return self._convert("GetRefund", _refund, self._call("GetRefund", refund_id))

    def close(self) -> None:
        with self._sessions_lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()
        self._local = threading.local()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
