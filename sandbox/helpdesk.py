"""Another helpdesk's REST API (bearer API key), the one agents used before ticketflow.

    GET  /api/v2/tickets?requester_id=CUST-0001    {"tickets": [...], "count": n}
    GET  /api/v2/tickets/{id}                      {"ticket": {..., "comments": [...]}}
    POST /api/v2/tickets                           {"ticket": {"requester_id", "subject",
                                                    "description", "external_ref"}}
         201 with the new ticket; 200 with the existing one when a ticket with that
         ``external_ref`` already exists (how ticketflow mirrors idempotently).
    POST /api/v2/tickets/{id}/comments             {"comment": {"body"}}, header
         ``Idempotency-Key`` required: 201 new, 200 replay, 409 key reused differently.

Ticket JSON: ``id, requester_id, subject, description, status (open|pending|solved|closed),
created_at, external_ref, url``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from sandbox.data import SANDBOX_API_KEY, CommentRecord, DemoData, HelpdeskTicketRecord
from sandbox.service import require_bearer, service_app


class NewTicket(BaseModel):
    requester_id: str = Field(min_length=1)
    subject: str = Field(min_length=1, max_length=300)
    description: str = ""
    external_ref: str | None = None


class NewTicketEnvelope(BaseModel):
    ticket: NewTicket


class NewComment(BaseModel):
    body: str = Field(min_length=1)


class NewCommentEnvelope(BaseModel):
    comment: NewComment


class HelpdeskStore:
    def __init__(self, data_factory: Callable[[], DemoData]) -> None:
        self._factory = data_factory
        self.reset()

    def reset(self) -> None:
        self.tickets: dict[str, HelpdeskTicketRecord] = self._factory().tickets
        self.next_ticket = max(int(t.removeprefix("HD-")) for t in self.tickets) + 1 if self.tickets else 5001
        self.next_comment = 1
        self.comment_by_key: dict[str, tuple[str, CommentRecord]] = {}


def _ticket_json(t: HelpdeskTicketRecord, base_url: str, *, with_comments: bool = False) -> dict:
    body = {
        "id": t.id, "requester_id": t.requester_id, "subject": t.subject, "description": t.description,
        "status": t.status, "created_at": t.created_at.isoformat(), "external_ref": t.external_ref,
        "url": f"{base_url}api/v2/tickets/{t.id}",
    }
    if with_comments:
        body["comments"] = [_comment_json(c) for c in t.comments]
    return body


def _comment_json(c: CommentRecord) -> dict:
    return {"id": c.id, "body": c.body, "created_at": c.created_at.isoformat()}


def create_app(data_factory: Callable[[], DemoData], *, api_key: str = SANDBOX_API_KEY, seed: int = 0) -> FastAPI:
    store = HelpdeskStore(data_factory)

    def authorized(request: Request) -> None:
        require_bearer(request, api_key)

    def ticket_or_404(ticket_id: str) -> HelpdeskTicketRecord:
        ticket = store.tickets.get(ticket_id)
        if ticket is None:
            raise HTTPException(404, f"no ticket {ticket_id}")
        return ticket

    app = service_app("Sandbox helpdesk", reset_state=store.reset, seed=seed)
    api = "/api/v2/tickets"

    @app.get(api, dependencies=[Depends(authorized)])
    async def search(request: Request, requester_id: Annotated[str, Query(min_length=1)]) -> dict:
        found = sorted((t for t in store.tickets.values() if t.requester_id == requester_id),
                       key=lambda t: t.created_at, reverse=True)
        return {"tickets": [_ticket_json(t, str(request.base_url)) for t in found], "count": len(found)}

    @app.get(api + "/{ticket_id}", dependencies=[Depends(authorized)])
    async def show(request: Request, ticket_id: str) -> dict:
        return {"ticket": _ticket_json(ticket_or_404(ticket_id), str(request.base_url), with_comments=True)}

    @app.post(api, dependencies=[Depends(authorized)])
    async def create(request: Request, envelope: NewTicketEnvelope) -> JSONResponse:
        new = envelope.ticket
        if new.external_ref:
            for existing in store.tickets.values():
                if existing.external_ref == new.external_ref:
                    return JSONResponse({"ticket": _ticket_json(existing, str(request.base_url))}, status_code=200)
        ticket = HelpdeskTicketRecord(
            id=f"HD-{store.next_ticket}", requester_id=new.requester_id, subject=new.subject,
            description=new.description, status="open", created_at=datetime.now(UTC).replace(microsecond=0),
            external_ref=new.external_ref,
        )
        store.next_ticket += 1
        store.tickets[ticket.id] = ticket
        return JSONResponse({"ticket": _ticket_json(ticket, str(request.base_url))}, status_code=201)

    @app.post(api + "/{ticket_id}/comments", dependencies=[Depends(authorized)])
    async def comment(
        ticket_id: str,
        envelope: NewCommentEnvelope,
        idempotency_key: Annotated[str, Header(min_length=1)],
    ) -> JSONResponse:
        ticket = ticket_or_404(ticket_id)
        replay = store.comment_by_key.get(idempotency_key)
        if replay is not None:
            replay_ticket, replay_comment = replay
            if replay_ticket != ticket_id or replay_comment.body != envelope.comment.body:
                raise HTTPException(409, f"Idempotency-Key {idempotency_key} was used for another comment")
            return JSONResponse({"comment": _comment_json(replay_comment)}, status_code=200)
        new = CommentRecord(id=f"C-{store.next_comment}", body=envelope.comment.body,
                            created_at=datetime.now(UTC).replace(microsecond=0), idempotency_key=idempotency_key)
        store.next_comment += 1
        ticket.comments.append(new)
        store.comment_by_key[idempotency_key] = (ticket_id, new)
        return JSONResponse({"comment": _comment_json(new)}, status_code=201)

    return app
