"""The codec endpoint: decodes (and encodes) payloads for the Temporal Web UI and CLI, so
people allowed to read histories see them decrypted, in the protocol Temporal's tools speak
(`POST {endpoint}/decode` with `{"payloads": [...]}` as protobuf JSON).

With the Temporal CLI: `temporal workflow show -w ticket-<id> --codec-endpoint
http://<api>/codec --codec-auth "Bearer <token>"`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from google.protobuf import json_format
from pydantic import BaseModel
from temporalio.api.common.v1 import Payloads

from api.deps import FORBIDDEN, AuthorizerDep, CurrentUser, answers, require
from encryption.codec import DecryptionError
from policies import Resource

router = APIRouter(prefix="/codec", tags=["codec"])


class CodecPayloads(BaseModel):
    payloads: list[dict[str, Any]] = []


def _payloads(body: CodecPayloads) -> Payloads:
    try:
        return json_format.ParseDict({"payloads": body.payloads}, Payloads())
    except json_format.ParseError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{
            "loc": ["body", "payloads"], "type": "value_error", "msg": f"not Temporal payloads: {exc}"}]) from exc


def _answer(payloads: list) -> CodecPayloads:  # noqa: ANN001
    return CodecPayloads(payloads=json_format.MessageToDict(Payloads(payloads=payloads))["payloads"]
                         if payloads else [])


@router.post("/decode", response_model=CodecPayloads, responses=answers(FORBIDDEN),
             summary="Decrypt payloads of a workflow history (auditors, admins)")
async def decode(body: CodecPayloads, request: Request, user: CurrentUser, authorizer: AuthorizerDep
                 ) -> CodecPayloads:
    require(authorizer, user, "read", Resource("history"))
    codec = request.app.state.codec
    payloads = list(_payloads(body).payloads)
    if codec is None:  # encryption is off: payloads are plain already
        return _answer(payloads)
    try:
        return _answer(await codec.decode(payloads))
    except DecryptionError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{
            "loc": ["body", "payloads"], "type": "value_error", "msg": str(exc)}]) from exc


@router.post("/encode", response_model=CodecPayloads, responses=answers(FORBIDDEN),
             summary="Encrypt payloads, for sending signals or updates from Temporal's tools (admins)")
async def encode(body: CodecPayloads, request: Request, user: CurrentUser, authorizer: AuthorizerDep
                 ) -> CodecPayloads:
    require(authorizer, user, "write", Resource("history"))
    codec = request.app.state.codec
    payloads = list(_payloads(body).payloads)
    return _answer(payloads if codec is None else await codec.encode(payloads))
