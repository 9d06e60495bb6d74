"""``TicketSystem`` over the older helpdesk's REST API (see ``sandbox.helpdesk`` for the
wire format).

A mirrored ticket carries ``external_ref = "ticketflow:<ticket id>"``; the helpdesk
returns the existing ticket for a known ref, which makes mirroring idempotent.
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel

from connectors.errors import require_text
from connectors.http import RestConnector, path_segment
from models.customer360 import ExternalComment, ExternalTicket, ExternalTicketStatus

EXTERNAL_REF_PREFIX = "ticketflow:"
_STATUS = {s.value: s for s in ExternalTicketStatus}


class _Ticket(BaseModel):
    id: str
    requester_id: str
    subject: str
    status: str
    created_at: AwareDatetime
    external_ref: str | None = None
    url: str = ""

    def to_contract(self) -> ExternalTicket:
        ref = self.external_ref or ""
        return ExternalTicket(
            id=self.id,
            customer_id=self.requester_id,
            subject=self.subject,
            status=_STATUS.get(self.status.lower(), ExternalTicketStatus.unknown),
            created_at=self.created_at,
            url=self.url,
            ticketflow_ticket_id=ref.removeprefix(EXTERNAL_REF_PREFIX) if ref.startswith(EXTERNAL_REF_PREFIX) else None,
        )


class _TicketEnvelope(BaseModel):
    ticket: _Ticket


class _TicketList(BaseModel):
    tickets: list[_Ticket]


class _Comment(BaseModel):
    id: str
    body: str
    created_at: AwareDatetime


class _CommentEnvelope(BaseModel):
    comment: _Comment


class RestTicketSystem(RestConnector):
    """``TicketSystem`` for the helpdesk's REST API. Thread-safe."""

    system = "helpdesk"

    def find_tickets(self, customer_id: str) -> list[ExternalTicket]:
        require_text(self.system, customer_id=customer_id)
        raw = self._parse(_TicketList, self._call("GET", "/api/v2/tickets", params={"requester_id": customer_id}))
        return [t.to_contract() for t in raw.tickets]

    def mirror_ticket(self, ticket_id: str, customer_id: str, subject: str, body: str) -> ExternalTicket:
        require_text(self.system, ticket_id=ticket_id, customer_id=customer_id, subject=subject)
        payload = {"ticket": {"requester_id": customer_id, "subject": subject, "description": body,
                              "external_ref": EXTERNAL_REF_PREFIX + ticket_id}}
        return self._parse(_TicketEnvelope, self._call("POST", "/api/v2/tickets", json=payload)).ticket.to_contract()

    def add_comment(self, external_ticket_id: str, text: str, idempotency_key: str) -> ExternalComment:
        require_text(self.system, external_ticket_id=external_ticket_id, text=text, idempotency_key=idempotency_key)
        raw = self._parse(_CommentEnvelope, self._call(
            "POST", f"/api/v2/tickets/{path_segment(external_ticket_id)}/comments",
            json={"comment": {"body": text}}, headers={"Idempotency-Key": idempotency_key},
        ))
        return ExternalComment(id=raw.comment.id, ticket_id=external_ticket_id, text=raw.comment.body,
                               created_at=raw.comment.created_at)
