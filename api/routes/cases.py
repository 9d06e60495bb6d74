"""Case types: what kinds of case there are, and opening one by its type's name.

Every registered case type gets its own `POST /cases/<name>` route, with its own body in the
OpenAPI document; they all open cases the way `POST /tickets` opens support tickets."""

# No `from __future__ import annotations` here: each opening route's body annotation is its
# case type's model, evaluated when the route is made.

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, Field

from api.deps import CONFLICT, FORBIDDEN, AuthorizerDep, CurrentUser, DbDep, SettingsDep, TemporalDep, answers, \
    refusal
from api.routes.tickets import open_case
from models.ticket import TicketCreate, TicketCreated
from workflows import registry


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


async def list_case_types(user: CurrentUser) -> list[CaseTypePublic]:
    return [case_type_public(case_type) for case_type in registry.case_types()]


OPENED = {200: {"model": TicketCreated, "description": "The caller sent this external_ref before: that case."},
          **answers(FORBIDDEN, CONFLICT)}


def _opening_route(case_type: registry.CaseType):  # noqa: ANN202
    body_model = case_type.create_model

    async def open_this_case(
        body: body_model, request: Request, user: CurrentUser, db: DbDep, client: TemporalDep,  # type: ignore[valid-type]
        settings: SettingsDep, authorizer: AuthorizerDep, response: Response,
    ) -> TicketCreated:
        return await open_case(case_type, body, request, user, db, client, settings, authorizer, response)

    return open_this_case


def openable(case_type: registry.CaseType) -> bool:
    """The API opens case types whose body carries the common fields (a TicketCreate)."""
    return isinstance(case_type.create_model, type) and issubclass(case_type.create_model, TicketCreate)


async def open_unknown_case(case_type: str, user: CurrentUser) -> TicketCreated:
    try:
        registry.get(case_type)
    except registry.CaseTypeError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    # A registered type has a route of its own above this one unless its body lacks the
    # common fields every case is opened with.
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"case type {case_type!r} cannot be opened through this API: "
                                                   "its opening body is not a TicketCreate")


def case_router() -> APIRouter:
    """The routes of this module, with an opening route for every case type registered now
    (made when the app is, so a case type is found wherever its module is)."""
    routes = APIRouter(tags=["cases"])
    routes.add_api_route("/case-types", list_case_types, methods=["GET"], response_model=list[CaseTypePublic],
                         responses=answers(),
                         summary="The kinds of case this installation runs, with the body that opens each")
    for case_type in registry.case_types():
        if openable(case_type):
            routes.add_api_route(
                f"/cases/{case_type.name}", _opening_route(case_type), methods=["POST"],
                status_code=status.HTTP_201_CREATED, response_model=TicketCreated, responses=OPENED,
                summary=f"Open a case of type {case_type.name}: {case_type.title.lower()}",
                operation_id=f"open_case_{case_type.name.replace('-', '_')}",
            )
    routes.add_api_route(
        "/cases/{case_type}", open_unknown_case, methods=["POST"], status_code=status.HTTP_201_CREATED,
        response_model=TicketCreated,
        responses=answers(refusal(404, "No case type of that name; the message lists the known ones.")),
        summary="Open a case of a type this installation does not run: the answer lists those it does")
    return routes
