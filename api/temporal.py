"""The API's connection to Temporal, made on first use so the API can start (and answer
503 with a reason) while Temporal is still coming up or down for maintenance."""

from __future__ import annotations

import asyncio

from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.service import RPCError, RPCStatusCode


class WorkflowEngineUnavailable(RuntimeError):
    pass


UNAVAILABLE_CODES = {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED}


def is_unavailable(err: RPCError) -> bool:
    return err.status in UNAVAILABLE_CODES


class TemporalGateway:
    def __init__(self, address: str, namespace: str, client: Client | None = None, *,
                 converter: DataConverter | None = None) -> None:
        self.address = address
        self.namespace = namespace
        self.converter = converter
        self._client = client
        self._lock = asyncio.Lock()

    async def client(self) -> Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await asyncio.wait_for(
                        Client.connect(self.address, namespace=self.namespace, data_converter=self.converter),
                        timeout=5,
                    )
                except Exception as exc:  # noqa: BLE001 - connection failures come in many types
                    raise WorkflowEngineUnavailable(
                        f"cannot reach Temporal at {self.address}: {exc}".strip()
                    ) from exc
        return self._client
