"""Case types: what kinds of case there are, and opening one by its type's name."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field

from api.deps import CONFLICT, FORBIDDEN, CurrentUser, answers, refusal
from api.routes import tickets
from models.ticket import TicketCreated
from workflows import registry

router = APIRouter(tags=["cases"])


class CaseTypePublic(BaseModel):
    name: str = Field(description="What `POST /cases/{case_type}` takes.")
    title: str
    description: str
    id_prefix: str = Field(description="Workflow ids of this type are `<id_prefix>-<case id>`.")
    default_department: str
    task_outcomes: dict[str, list[str]] = Field(
        description="Per kind of human task, the outcomes an agent may choose when completing it.")
    input_schema: dict = Field(description="JSON Schema of the body that opens a case of this type.")


def case_type_public(case_type: registry.CaseType) -> CaseTypePublic:
    return CaseTypePublic(
        name=case_type.name, title=case_type.title, description=case_type.description,
        id_prefix=case_type.id_prefix, default_department=case_type.default_department,
        task_outcomes={kind: list(outcomes) for kind, outcomes in case_type.task_outcomes.items()},
        input_schema=case_type.input_schema(),
    )


@router.get("/case-types", response_model=list[CaseTypePublic], responses=answers(),
            summary="The kinds of case this installation runs, with the body that opens each")
async def list_case_types(user: CurrentUser) -> list[CaseTypePublic]:
    return [case_type_public(case_type) for case_type in registry.case_types()]


OPENED = {200: {"model": TicketCreated, "description": "The caller sent this external_ref before: that case."},
          **answers(FORBIDDEN, CONFLICT)}

# The route handler that opens each case type, with its own typed body. The support ticket
# opens exactly as POST /tickets does: same checks, same idempotency.
OPENERS = {"support-ticket": tickets.create_ticket}

for _case_type in registry.case_types():
    if _case_type.name in OPENERS:
        router.add_api_route(
            f"/cases/{_case_type.name}", OPENERS[_case_type.name], methods=["POST"],
            status_code=status.HTTP_201_CREATED, response_model=TicketCreated, responses=OPENED,
            summary=f"Open a case of type {_case_type.name}: {_case_type.title.lower()}",
            operation_id=f"open_case_{_case_type.name.replace('-', '_')}",
        )


@router.post("/cases/{case_type}", status_code=status.HTTP_201_CREATED, response_model=TicketCreated,
             responses=answers(refusal(404, "No case type of that name; the message lists the known ones.")),
             summary="Open a case of a type this installation does not run: the answer lists those it does")
async def open_unknown_case(case_type: str, user: CurrentUser) -> TicketCreated:
    try:
        registry.get(case_type)
    except registry.CaseTypeError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    # A registered type always has its own route above this one.
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"case type {case_type!r} cannot be opened through this API")
