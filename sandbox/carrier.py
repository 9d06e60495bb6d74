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

``GET /shipments?reference=ORD-1001`` finds the shipper's parcels by the reference on their
label (the shop's order id, matched exactly): ``{"shipments": [<as above>, ...]}`` in
tracking number order. A reference no parcel carries is an empty list, not a 404.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse

from sandbox.data import SANDBOX_API_KEY, DemoData, ShipmentRecord
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


def create_app(data_factory: Callable[[], DemoData], *, api_key: str = SANDBOX_API_KEY, seed: int = 0) -> FastAPI:
    shipments = data_factory().shipments

    def reset() -> None:
        shipments.clear()
        shipments.update(data_factory().shipments)

    def authorized(request: Request) -> None:
        require_bearer(request, api_key)

    app = service_app("Sandbox carrier tracking", reset_state=reset, seed=seed)

    @app.get("/shipments", dependencies=[Depends(authorized)])
    async def find_by_reference(reference: Annotated[str, Query(min_length=1)]) -> JSONResponse:
        found = sorted((s for s in shipments.values() if s.reference == reference), key=lambda s: s.tracking_number)
        return JSONResponse({"shipments": [_wire(s) for s in found]})

    @app.get("/shipments/{tracking_number}", dependencies=[Depends(authorized)])
    async def track(tracking_number: str) -> JSONResponse:
        s = shipments.get(tracking_number)
        if s is None:
            return JSONResponse({"error": f"unknown tracking number {tracking_number}"}, status_code=404)
        return JSONResponse(_wire(s))

    return app
