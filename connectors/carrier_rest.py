"""``LogisticsProvider`` over the carrier's REST tracking API (see ``sandbox.carrier`` for
the wire format)."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel

from connectors.errors import require_text
from connectors.http import RestConnector, path_segment
from models.customer360 import Shipment, ShipmentStatus, TrackingEvent
from models.returns import ReturnLabel

_STATUS = {
    "LABEL_CREATED": ShipmentStatus.label_created,
    "IN_TRANSIT": ShipmentStatus.in_transit,
    "OUT_FOR_DELIVERY": ShipmentStatus.out_for_delivery,
    "DELIVERED": ShipmentStatus.delivered,
    "EXCEPTION": ShipmentStatus.exception,
    "LOST": ShipmentStatus.lost,
}


class _Checkpoint(BaseModel):
    timestamp: AwareDatetime
    location: str
    description: str
    status: str


class _Tracking(BaseModel):
    tracking_number: str
    carrier: str
    status: str
    promised_delivery_date: AwareDatetime | None = None
    estimated_delivery: AwareDatetime | None = None
    delivered_at: AwareDatetime | None = None
    delay_hours: float = 0.0
    checkpoints: list[_Checkpoint] = []


class _ShipmentList(BaseModel):
    shipments: list[_Tracking]


class _ReturnLabel(BaseModel):
    tracking_number: str
    carrier: str
    label_url: str


def _status(code: str) -> ShipmentStatus:
    return _STATUS.get(code.upper(), ShipmentStatus.unknown)


def _shipment(raw: _Tracking) -> Shipment:
    events = sorted(
        (TrackingEvent(time=c.timestamp, location=c.location, description=c.description, status=_status(c.status))
         for c in raw.checkpoints),
        key=lambda e: e.time,
    )
    return Shipment(
        tracking_number=raw.tracking_number,
        carrier=raw.carrier,
        status=_status(raw.status),
        events=events,
        promised_delivery=raw.promised_delivery_date,
        estimated_delivery=raw.estimated_delivery,
        delivered_at=raw.delivered_at,
        delay_hours=max(0.0, raw.delay_hours),
    )


class RestLogisticsProvider(RestConnector):
    """``LogisticsProvider`` for the carrier's REST API. Thread-safe."""

    system = "carrier"

    def track_shipment(self, tracking_number: str) -> Shipment:
        require_text(self.system, tracking_number=tracking_number)
        return _shipment(self._parse(_Tracking, self._call("GET", f"/shipments/{path_segment(tracking_number)}")))

    def find_shipments(self, reference: str) -> list[Shipment]:
        require_text(self.system, reference=reference)
        raw = self._parse(_ShipmentList, self._call("GET", "/shipments", params={"reference": reference}))
        return [_shipment(t) for t in raw.shipments]

    def create_return_label(self, order_id: str, skus: list[str], idempotency_key: str) -> ReturnLabel:
        require_text(self.system, order_id=order_id, idempotency_key=idempotency_key)
        raw = self._parse(_ReturnLabel, self._call("POST", "/returns", json={
            "reference": order_id, "items": skus, "idempotency_key": idempotency_key}))
        return ReturnLabel(tracking_number=raw.tracking_number, carrier=raw.carrier, label_url=raw.label_url)
