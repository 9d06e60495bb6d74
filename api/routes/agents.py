"""Agents: their routing profile (skills, languages, queues, capacity) and their presence.

Supervisors and admins manage profiles; each agent sets their own presence. Presence drives
routing: going offline hands the agent's tasks back to routing, coming online offers them
the tasks waiting in their queues."""

from __future__ import annotations

import logging
import re
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from pydantic import Field, field_validator
from temporalio.service import RPCError

from activities.routing import offer_queued_tasks, release_agent_tasks
from api.deps import (
    FORBIDDEN,
    NOT_FOUND,
    AuthorizerDep,
    CurrentUser,
    DbDep,
    TemporalDep,
    answers,
    forbidden,
    get_temporal,
    not_found,
    require,
    require_reach,
)
from api.temporal import WorkflowEngineUnavailable
from models import readmodel
from models.agent import AgentPublic, AgentUpsert, PresenceUpdate
from routing.models import Presence
from models.auth import EVERY_DEPARTMENT, Principal
from policies import Authorizer, Resource
from policies.store import work_departments

log = logging.getLogger("ticketflow.api.agents")
router = APIRouter(prefix="/agents", tags=["agents"])

QUEUE_PATTERN = r"^[a-z0-9_-]+$"  # as a ticket's department
NAME_LIMIT = 50


class AgentProfileBody(AgentUpsert):
    """An agent's routing profile; the lists are names, not free text."""

    skills: list[str] = Field(default_factory=list, max_length=NAME_LIMIT, description="e.g. refunds, carriers")
    languages: list[str] = Field(default_factory=lambda: ["en"], max_length=NAME_LIMIT,
                                 description="Language tags, e.g. en, de-AT.")
    queues: list[str] = Field(default_factory=list, max_length=NAME_LIMIT,
                              description="Department queues the agent works.")

    @field_validator("skills", "languages")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        cleaned = [n.strip() for n in names]
        if any(not n or len(n) > NAME_LIMIT for n in cleaned):
            raise ValueError(f"names must be 1 to {NAME_LIMIT} characters")
        return sorted(set(cleaned))

    @field_validator("queues")
    @classmethod
    def _queues(cls, queues: list[str]) -> list[str]:
        bad = [q for q in queues if not re.fullmatch(QUEUE_PATTERN, q) or len(q) > NAME_LIMIT]
        if bad:
            raise ValueError(f"queue names are lower-case letters, digits, _ and -: {', '.join(bad)}")
        return sorted(set(queues))


AgentId = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[^\s/]+$")]


def _may(authorizer: Authorizer, user: Principal, action: str, agent_id: str, queues: list[str], *,
         every_queue: bool) -> bool:
    """Own profile, every agent, or (department supervisors) agents of their departments:
    any of the profile's queues to read it, every one of them to write it."""
    if authorizer.allowed(user, action, Resource("agent", owner=agent_id)):
        return True
    checks = [authorizer.allowed(user, action, Resource("agent", owner=agent_id, department=q)) for q in queues]
    return bool(checks) and (all(checks) if every_queue else any(checks))


def _no_profile(agent_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND,
                         f"no agent profile for {agent_id}: an admin or supervisor must create it with "
                         f"PUT /agents/{agent_id}")


@router.get("", response_model=list[AgentPublic], responses=answers(FORBIDDEN),
            summary="Agents with their load and presence (supervisors: of their departments)")
async def list_agents(
    user: CurrentUser, db: DbDep, authorizer: AuthorizerDep,
    queue: Annotated[str | None, Query(max_length=50, description="Only agents working this queue")] = None,
    presence: Annotated[Presence | None, Query()] = None,
) -> list[AgentPublic]:
    reach = require_reach(authorizer, user, "read", "agent")
    if not (reach.everything or reach.departments):
        raise forbidden(user, "read", "agent", why="only your own profile: GET /agents/me")
    agents = await db.run(readmodel.list_agents, queue=queue, presence=presence.value if presence else None)
    if reach.everything:
        return agents
    return [a for a in agents if reach.departments & set(a.queues)]


@router.get("/me", response_model=AgentPublic, responses=answers(FORBIDDEN, NOT_FOUND),
            summary="The caller's own agent profile, load and presence")
async def my_profile(user: CurrentUser, db: DbDep, authorizer: AuthorizerDep) -> AgentPublic:
    require(authorizer, user, "read", Resource("agent", owner=user.name))
    agent = await db.run(readmodel.get_agent, user.name)
    if agent is None:
        raise _no_profile(user.name)
    return agent


@router.put("/me/presence", response_model=AgentPublic, responses=answers(FORBIDDEN, NOT_FOUND),
            summary="Set the caller's presence: offline releases their tasks, online offers them queued ones")
async def set_my_presence(
    body: PresenceUpdate, user: CurrentUser, db: DbDep, client: TemporalDep, authorizer: AuthorizerDep
) -> AgentPublic:
    require(authorizer, user, "write", Resource("presence", owner=user.name))
    # Presence first: from here on routing gives an agent going offline nothing new, so the
    # release below hands back everything they hold. A failure after it leaves a state the
    # same request repeated completes.
    agent = await db.run(readmodel.set_presence, user.name, body.presence)
    if agent is None:
        raise _no_profile(user.name)
    if body.presence is Presence.offline:
        await release_agent_tasks(db, client, user.name, reason=f"{user.name} went offline")
    elif body.presence is Presence.online:
        await offer_queued_tasks(db, client, agent.queues)
    return await db.run(readmodel.get_agent, user.name)


@router.get("/{agent_id}", response_model=AgentPublic, responses=answers(NOT_FOUND),
            summary="One agent's profile, load and presence")
async def get_agent(agent_id: AgentId, user: CurrentUser, db: DbDep, authorizer: AuthorizerDep) -> AgentPublic:
    agent = await db.run(readmodel.get_agent, agent_id)
    if agent is None or not _may(authorizer, user, "read", agent_id, agent.queues, every_queue=False):
        raise not_found("agent", agent_id)
    return agent


@router.put("/{agent_id}", response_model=AgentPublic,
            responses={201: {"model": AgentPublic, "description": "A new agent, offline until they sign in."},
                       **answers(FORBIDDEN)},
            summary="Create or replace an agent's routing profile (supervisors, admins)")
async def put_agent(
    agent_id: AgentId, body: AgentProfileBody, user: CurrentUser, db: DbDep, authorizer: AuthorizerDep,
    request: Request, response: Response,
) -> AgentPublic:
    current = await db.run(readmodel.get_agent, agent_id)
    touched = sorted(set(body.queues) | set(current.queues if current else []))
    if not _may(authorizer, user, "write", agent_id, touched, every_queue=True):
        raise forbidden(user, "write", "agent", why=f"supervise every queue of the profile ({', '.join(touched)})"
                        if touched else "")
    if agent_id == "me":
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{
            "loc": ["path", "agent_id"], "type": "value_error",
            "msg": "'me' names the caller in these paths and cannot be an agent id"}])
    # One source of truth: a profile names only queues the agent may work under the policy.
    held = (await db.run(work_departments, [agent_id])).get(agent_id, set())
    outside = [q for q in body.queues if EVERY_DEPARTMENT not in held and q not in held]
    if outside:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{
            "loc": ["body", "queues"], "type": "value_error",
            "msg": f"{agent_id} holds no role that works tasks of {', '.join(outside)}: grant one first "
                   f"(`ticketflow policy grant --user {agent_id} --role agent --department {outside[0]}`)",
        }])
    agent, created = await db.run(readmodel.upsert_agent, agent_id, AgentUpsert(**body.model_dump()))
    if created:
        response.status_code = status.HTTP_201_CREATED
    elif agent.presence is Presence.online:
        # More capacity, a new queue or skill can fit tasks that were waiting for someone:
        # offer them now rather than when the next agent comes online or frees up. (Only
        # here is Temporal needed: editing a profile works while it is down.)
        try:
            await offer_queued_tasks(db, await get_temporal(request), agent.queues)
        except (WorkflowEngineUnavailable, RPCError) as exc:
            # The profile is saved; the waiting tasks are offered at the next chance instead.
            log.warning("profile of %s saved, but queued tasks could not be offered now: %s", agent_id, exc)
        agent = await db.run(readmodel.get_agent, agent_id)
    return agent
