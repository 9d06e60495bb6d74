"""A carrier's REST tracking API (bearer API key).

``GET /shipments/{tracking_number}`` answers in the carrier's own vocabulary::

    {"tracking_number": "SBX100000001", "carrier": "Sandbox Express",
     "reference": "ORD-1001",           # the shipper's reference on the label; may be null
     "status": "IN_TRANSIT",            # LABEL_CREATED | IN_TRANSIT | OUT_FOR_DELIVERY |
                                        # DELIVERED | EXCEPTION | LOST
     "promised_delivery_date": "...",   # ISO 8601, what the shop promised
     "estimated_delivery": "...",       # null once delivered or lost
     "delivered_at": null,
     "delay_hours": 96.0,               # against the promise; 0 when on time
     "checkpoints": [{"timestamp": "...", "location": "...", "description": "...",
                      "status": "IN_TRANSIT"}]}

An unknown tracking number is a 404 ``{"error": ...}``.

``POST /returns`` ``{"reference": "ORD-1001", "items": ["SKU-LAMP"], "idempotency_key": "..."}``
makes a return label: ``201 {"tracking_number": "SBXR...", "carrier": ..., "label_url": ...}``,
a new parcel in ``LABEL_CREATED`` under the reference ``RETURN-<reference>``. The same key
answers the same label (200). ``POST /returns/{tracking_number}/scan`` stands in for the
customer handing the parcel in: it moves to ``IN_TRANSIT`` with a checkpoint (sandbox only).

``GET /shipments?reference=ORD-1001`` finds the shipper's parcels by the reference on their
label (the shop's order id, matched exactly): ``{"shipments": [<as above>, ...]}`` in
tracking number order. A reference no parcel carries is an empty list, not a 404.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from datetime import UTC, datetime, timedelta

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from sandbox.data import CARRIER_NAME, SANDBOX_API_KEY, CheckpointRecord, DemoData, ShipmentRecord
from sandbox.service import require_bearer, service_app


def _wire(s: ShipmentRecord) -> dict[str, Any]:
    return {
        "tracking_number": s.tracking_number,
        "carrier": s.carrier,
        "reference": s.reference,
        "status": s.status,
        "promised_delivery_date": s.promised_date.isoformat(),
        "estimated_delivery": s.eta.isoformat() if s.eta and s.status not in ("DELIVERED", "LOST") else None,
        "delivered_at": s.delivered_at.isoformat() if s.delivered_at else None,
        "delay_hours": round(s.delay_hours, 1),
        "checkpoints": [
            {"timestamp": c.time.isoformat(), "location": c.location, "description": c.description,
             "status": c.code}
            for c in s.checkpoints
        ],
    }


class ReturnLabelRequest(BaseModel):
    reference: str = Field(min_length=1, max_length=100)
    items: list[str] = Field(default_factory=list, max_length=50)
    idempotency_key: str = Field(min_length=1, max_length=200)


def create_app(data_factory: Callable[[], DemoData], *, api_key: str = SANDBOX_API_KEY, seed: int = 0) -> FastAPI:
    shipments = data_factory().shipments
    labels: dict[str, str] = {}  # idempotency key -> tracking number

    def reset() -> None:
        shipments.clear()
        shipments.update(data_factory().shipments)
        labels.clear()

    def authorized(request: Request) -> None:
        require_bearer(request, api_key)

    app = service_app("Sandbox carrier tracking", reset_state=reset, seed=seed)

    @app.get("/shipments", dependencies=[Depends(authorized)])
    async def find_by_reference(reference: Annotated[str, Query(min_length=1)]) -> JSONResponse:
        found = sorted((s for s in shipments.values() if s.reference == reference), key=lambda s: s.tracking_number)
        return JSONResponse({"shipments": [_wire(s) for s in found]})

    def _label(s: ShipmentRecord) -> dict[str, str]:
        return {"tracking_number": s.tracking_number, "carrier": s.carrier,
                "label_url": f"https://labels.sandbox.invalid/{s.tracking_number}.pdf"}

    @app.post("/returns", dependencies=[Depends(authorized)])
    async def create_return_label(req: ReturnLabelRequest) -> JSONResponse:
        known = labels.get(req.idempotency_key)
        if known is not None:
            return JSONResponse(_label(shipments[known]))
        now = datetime.now(UTC)
        number = f"SBXR{len(labels) + 1:08d}"
        shipments[number] = ShipmentRecord(
            tracking_number=number, status="LABEL_CREATED", promised_date=now + timedelta(days=5), eta=None,
            delivered_at=None, reported_at=now, reference=f"RETURN-{req.reference}",
            checkpoints=[CheckpointRecord(now, "Online", "Return label created", "LABEL_CREATED")],
            carrier=CARRIER_NAME)
        labels[req.idempotency_key] = number
        return JSONResponse(_label(shipments[number]), status_code=201)

    @app.post("/returns/{tracking_number}/scan", dependencies=[Depends(authorized)])
    async def scan_return(tracking_number: str) -> JSONResponse:
        s = shipments.get(tracking_number)
        if s is None or not tracking_number.startswith("SBXR"):
            return JSONResponse({"error": f"no return parcel {tracking_number}"}, status_code=404)
        if s.status == "LABEL_CREATED":
            now = datetime.now(UTC)
            s.status, s.reported_at, s.eta = "IN_TRANSIT", now, now + timedelta(days=2)
            s.checkpoints.append(CheckpointRecord(now, "Drop-off point", "Parcel handed in", "IN_TRANSIT"))
        return JSONResponse(_wire(s))

    @app.get("/shipments/{tracking_number}", dependencies=[Depends(authorized)])
    async def track(tracking_number: str) -> JSONResponse:
        s = shipments.get(tracking_number)
        if s is None:
            return JSONResponse({"error": f"unknown tracking number {tracking_number}"}, status_code=404)
        return JSONResponse(_wire(s))

    return app
