"""The agents' console and the supervisors' dashboard: server-rendered pages.

The pages are plain HTML from Jinja2 templates; ``static/console.js`` adds what a page needs
live. It follows ``/events`` and, on a change the page shows, fetches the same page again and
swaps the regions marked ``data-live`` (the reply being typed is not one of them). Actions go
to the JSON API (``/tasks/...``) with the session cookie and its CSRF token, so the console
has no rights of its own: a refusal there is shown as it comes back.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache
from importlib.resources import files
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, FastAPI, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlmodel import Session, select

from api.deps import get_authorizer, live_session
from console import dashboard, i18n
from models import readmodel
from models.auth import Principal
from models.db import Database, utcnow
from models.enums import Priority
from models.faq import FaqEntryRow
from models.faq_template import FaqAnswerContext, is_template, render
from models.readmodel import InvalidCursor, TaskSort
from models.customer360 import Customer360, left_to_refund
from models.task import Task, TaskPublic, TaskStatus
from models.ticket import TicketPublic
from policies import Authorizer, Resource
from policies.store import departments as all_departments

router = APIRouter(prefix="/console", include_in_schema=False)


def install(app: FastAPI) -> None:
    """Serve the console under /console, with its script and styles from the installation."""
    app.mount("/console/static", StaticFiles(directory=str(STATIC)), name="console-static")
    app.include_router(router)

STATIC = files("console") / "static"
PAGE_SIZE = 50
# Open or claimed tasks due within this long count as at risk on the dashboard.
AT_RISK_WINDOW = timedelta(minutes=30)
# The dashboard's figures over the last day scan that day's tickets: at most once this often.
DAY_FIGURES_TTL = 10.0


def _static_version() -> str:
    """Changes when a static file does, so browsers fetch the new one (`?v=` on the links)."""
    stamps = [int(entry.stat().st_mtime) for entry in STATIC.iterdir() if entry.is_file()]  # type: ignore[attr-defined]
    return format(max(stamps, default=0), "x")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


@cache
def environment(lang: str) -> Environment:
    env = Environment(loader=PackageLoader("console", "templates"), autoescape=select_autoescape(["html"]),
                      extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_translations(i18n.translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.globals["static_version"] = _static_version()
    env.filters["duration"] = _duration
    env.filters["minutes"] = lambda seconds: round(seconds / 60, 1) if seconds is not None else None
    env.filters["money"] = lambda value: f"{Decimal(str(value)):.2f}" if value not in (None, "") else ""
    return env


@cache
def js_messages(lang: str) -> dict[str, str]:
    """The texts console.js writes itself, in the page's language (made once per language:
    the catalogs are read when the process starts)."""
    _ = i18n.translations(lang).gettext
    return {
        "due_in": _("due in %(time)s"),
        "overdue_by": _("overdue by %(time)s"),
        "saved": _("Done."),
        "failed": _("The action failed: %(reason)s"),
        "offline": _("Connection lost: reconnecting…"),
        "live": _("Live"),
        "reply_needed": _("Write a reply first."),
        "refund_reason_needed": _("Say why you refund."),
        "queue_needed": _("Pick a department to transfer to."),
        "inserted": _("Suggestion inserted into the reply."),
        "wrong": _("Wrong user name or password."),
        "confirm_escalate": _("Escalate this ticket?"),
        "confirm_leave": _("Leave this ticket? What you typed is lost."),
        "refund_outcome": _("A refund goes with a reply and resolve or with a question to the customer: "
                            "clear the amount to do this."),
        "refund_amount": _("The refund amount is not a number."),
        "throttled": _("Too many attempts: try again in %(seconds)s s."),
    }


@cache
def labels(lang: str) -> tuple[dict[str, str], dict[str, str]]:
    """The inbox's priority and status names, translated once per page rather than per row."""
    _ = i18n.translations(lang).gettext
    priorities = {"low": _("low"), "normal": _("normal"), "high": _("high"), "urgent": _("urgent")}
    statuses = {"open": _("open"), "claimed": _("claimed"), "completed": _("completed"), "cancelled": _("cancelled"),
                "active": _("open or claimed"), "all": _("all")}
    return priorities, statuses


@dataclass(frozen=True, slots=True)
class InboxRow:
    """One task as the inbox shows it, prepared here so that the template only prints."""

    task_id: str
    ticket_id: str
    subject: str
    customer: str
    queue: str
    priority: str
    priority_label: str
    status: str
    assignee: str
    due_at: str
    created_at: str

    @classmethod
    def of(cls, task: dict[str, Any], priorities: dict[str, str], statuses: dict[str, str]) -> InboxRow:
        """From a row of `readmodel.list_tasks(summary=True)`."""
        label = statuses.get(task["status"], task["status"])
        due, created = task["due_at"], task["created_at"]
        return cls(task_id=task["id"], ticket_id=task["ticket_id"], subject=task["subject"] or task["ticket_id"],
                   customer=task["customer_name"] or task["customer_id"] or "", queue=task["queue"],
                   priority=task["priority"], priority_label=priorities.get(task["priority"], task["priority"]),
                   status=f"{label} · {task['assignee']}" if task["assignee"] else label,
                   assignee=task["assignee"] or "", due_at=due.isoformat() if due else "",
                   created_at=created.isoformat() if created else "")


@dataclass
class Viewer:
    """The signed-in person a page is for."""

    user: str
    csrf_token: str
    lang: str
    principal: Principal


def _language(request: Request) -> str:
    return i18n.choose(request.cookies.get(i18n.COOKIE), request.headers.get("accept-language"))


def _page(request: Request, template: str, viewer: Viewer | None, status_code: int = 200, **values: Any) -> HTMLResponse:
    lang = viewer.lang if viewer else _language(request)
    html = environment(lang).get_template(template).render(
        request_path=request.url.path, query=str(request.url.query), viewer=viewer, lang=lang,
        languages=i18n.LANGUAGES.values(), messages=js_messages(lang),
        **values)
    return HTMLResponse(html, status_code=status_code, headers={
        "Cache-Control": "no-store",
        # Nothing on a console page comes from another host, and nothing may frame it.
        "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                                   "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
    })


def _safe_next(target: str | None) -> str:
    """Only a console page of this site after sign-in, never another host."""
    if target and target.startswith("/console") and not target.startswith("//") and "\\" not in target:
        return target
    return "/console/inbox"


async def _signed_in(request: Request) -> tuple[Viewer, Authorizer] | None:
    """Who the page is for and the process's authorizer, current with the policy; None without
    a live session (the page then sends the person to sign in)."""
    row = await live_session(request)
    if row is None:
        return None
    viewer = Viewer(user=row.user, csrf_token=row.csrf_token, lang=_language(request), principal=Principal(name=row.user))
    return viewer, await get_authorizer(request)


def _to_sign_in(request: Request) -> RedirectResponse:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/console/sign-in?next={quote(here, safe='')}", status.HTTP_303_SEE_OTHER)


def _db(request: Request) -> Database:
    return request.app.state.db


# --- sign-in and language ----------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
async def console_home() -> RedirectResponse:
    return RedirectResponse("/console/inbox", status.HTTP_303_SEE_OTHER)


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(request: Request, next: str | None = None) -> HTMLResponse:  # noqa: A002
    return _page(request, "sign_in.html", None, next=_safe_next(next))


@router.get("/language")
async def switch_language(request: Request, to: str, next: str | None = None) -> RedirectResponse:  # noqa: A002
    if to not in i18n.LANGUAGES:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"unknown language {to!r}: one of {', '.join(i18n.LANGUAGES)}")
    response = RedirectResponse(_safe_next(next), status.HTTP_303_SEE_OTHER)
    response.set_cookie(i18n.COOKIE, to, max_age=365 * 86400, samesite="lax", path="/")
    return response


# --- the inbox -----------------------------------------------------------------------------


@dataclass
class InboxFilter:
    status: str = "open"  # open | claimed | completed | active (open or claimed) | all
    queue: str | None = None
    priority: str | None = None
    mine: bool = False
    assignee: str | None = None  # whose claimed tasks (supervisors drill down from an agent)
    sort: TaskSort = TaskSort.created
    overdue: bool = False
    due_within: int | None = None  # minutes: open or claimed tasks due before now + this
    cursor: str | None = None

    def query(self, **changes: Any) -> str:
        values = {"status": self.status, "queue": self.queue, "priority": self.priority,
                  "mine": "1" if self.mine else None, "assignee": self.assignee, "sort": self.sort.value,
                  "overdue": "1" if self.overdue else None, "due_within": self.due_within, **changes}
        return urlencode({k: v for k, v in values.items() if v not in (None, "")})


_STATUSES = ("open", "claimed", "active", "completed", "all")


def _inbox_filter(request: Request) -> tuple[InboxFilter, list[str]]:
    """The filters in the query string; what is wrong with any of them, to show beside the list."""
    params, problems = request.query_params, []
    chosen = InboxFilter()
    if (value := params.get("status")) is not None:
        if value in _STATUSES:
            chosen.status = value
        else:
            problems.append(f"status {value!r}: one of {', '.join(_STATUSES)}")
    if value := params.get("queue"):
        chosen.queue = value[:50]
    if value := params.get("priority"):
        if value in Priority.__members__:
            chosen.priority = value
        else:
            problems.append(f"priority {value!r}: one of {', '.join(Priority.__members__)}")
    chosen.mine = params.get("mine") in ("1", "true", "on")
    if chosen.mine and params.get("status") is None:
        chosen.status = "active"  # an open task is nobody's: "mine" alone means what I hold
    if value := params.get("assignee"):
        chosen.assignee = value[:100]
    if value := params.get("sort"):
        try:
            chosen.sort = TaskSort(value)
        except ValueError:
            problems.append(f"sort {value!r}: one of {', '.join(s.value for s in TaskSort)}")
    chosen.overdue = params.get("overdue") in ("1", "true", "on")
    if value := params.get("due_within"):
        if value.isdigit() and 0 < int(value) <= 7 * 24 * 60:
            chosen.due_within = int(value)
        else:
            problems.append(f"due_within {value!r}: minutes from 1 to 10080")
    if value := params.get("cursor"):
        chosen.cursor = value[:500]
    return chosen, problems


@router.get("/inbox", response_class=HTMLResponse)
async def inbox(request: Request) -> Response:
    signed = await _signed_in(request)
    if signed is None:
        return _to_sign_in(request)
    viewer, authorizer = signed
    if authorizer.is_customer_only(viewer.principal):
        return _page(request, "staff_only.html", viewer, status_code=403, supervisor=False)
    reach = authorizer.reach(viewer.principal, "read", "task")
    chosen, problems = _inbox_filter(request)
    db = _db(request)
    visible = (sorted(d.name for d in await db.run(all_departments)) if reach.everything
               else sorted(reach.departments))
    status_value = {"active": None, "all": None}.get(chosen.status, chosen.status)
    now = utcnow()
    # overdue: past the due time; due_within: at risk, due from now until then (as the dashboard counts)
    overdue_at = now if chosen.overdue else now + timedelta(minutes=chosen.due_within) if chosen.due_within else None
    due_from = now if chosen.due_within and not chosen.overdue else None
    if chosen.queue is not None and chosen.queue not in visible:
        problems.append(f"queue {chosen.queue!r}: you work {', '.join(visible) or 'no queue'}")
        chosen.queue = None
    rows: list[InboxRow] = []
    next_cursor = None
    priorities, statuses = labels(viewer.lang)
    if not reach.nothing:
        query = dict(limit=PAGE_SIZE, cursor=chosen.cursor, sort=chosen.sort, status=status_value,
                     queue=chosen.queue, queues=None if reach.everything else visible,
                     assignee=viewer.user if chosen.mine else chosen.assignee, priority=chosen.priority,
                     overdue_at=overdue_at, due_from=due_from, active=chosen.status == "active", case_type=None,
                     summary=True)  # only what the list shows: no JSON column decoded
        try:
            items, next_cursor = await db.run(readmodel.list_tasks, **query)
        except InvalidCursor as exc:
            problems.append(str(exc))
            query["cursor"] = chosen.cursor = None
            items, next_cursor = await db.run(readmodel.list_tasks, **query)
        rows = [InboxRow.of(item, priorities, statuses) for item in items]
    return _page(request, "inbox.html", viewer, status_code=400 if problems else 200,
                 rows=rows, next_cursor=next_cursor, filter=chosen, problems=problems, queues=visible,
                 priorities=list(Priority.__members__), statuses=_STATUSES, priority_labels=priorities,
                 status_labels=statuses, sorts=[s.value for s in TaskSort],
                 now=utcnow(), supervisor=_supervises(authorizer, viewer.principal))


# --- one ticket ----------------------------------------------------------------------------


def _tasks_of(session: Session, ticket_id: str) -> list[TaskPublic]:
    rows = session.exec(select(Task).where(Task.ticket_id == ticket_id).order_by(Task.created_at))  # type: ignore[call-overload]
    return [readmodel.task_public(row) for row in rows]


@dataclass
class Suggestion:
    entry_id: str
    question: str
    score: float
    answer: str | None  # ready to send: a template filled in with the ticket's facts
    needs: str | None  # why a template could not be filled in


def _suggestions(session: Session, ticket: TicketPublic) -> list[Suggestion]:
    faq = ticket.context.get("faq") or {}
    picture = ticket.context.get("customer360")
    facts = None
    if picture:
        try:
            facts = FaqAnswerContext.from_customer360(Customer360.model_validate(picture), ticket.order_id)
        except ValueError:
            facts = None
    found: list[Suggestion] = []
    items = faq.get("suggestions") or []
    # the answers only: reading whole entries would check every template answer again
    ids = [str(item.get("entry_id", "")) for item in items]
    query = select(FaqEntryRow.id, FaqEntryRow.answer).where(FaqEntryRow.id.in_(ids))  # type: ignore[attr-defined]
    answers = {entry_id: answer for entry_id, answer in session.exec(query)} if ids else {}  # type: ignore[call-overload]
    for item in items:
        answer, needs = answers.get(str(item.get("entry_id", ""))), None
        if answer is not None and is_template(answer):
            rendered = render(answer, facts)
            answer, needs = rendered.text, rendered.reason
        found.append(Suggestion(entry_id=item.get("entry_id", ""), question=item.get("question", ""),
                                score=float(item.get("score") or 0), answer=answer, needs=needs))
    return found


def _readable(ticket: TicketPublic, tasks: list[TaskPublic], viewer: Viewer, authorizer: Authorizer) -> bool:
    """As the API reads tickets (its department, or a task the viewer holds), and also through
    a live task the viewer may read: a ticket transferred or escalated to another queue keeps
    its department, and whoever works that queue must be able to open it to claim the task."""
    who = viewer.principal
    holders = tuple(t.assignee for t in tasks if t.assignee and t.status == TaskStatus.claimed)
    if authorizer.allowed(who, "read", Resource("ticket", department=ticket.department, owner=ticket.customer_id,
                                                 assignees=holders)):
        return True
    return any(authorizer.allowed(who, "read", Resource("task", department=t.queue,
                                                         assignees=(t.assignee,) if t.assignee else ()))
               for t in tasks if t.status in (TaskStatus.open, TaskStatus.claimed))


@router.get("/tickets/{ticket_id}", response_class=HTMLResponse)
async def ticket_page(request: Request, ticket_id: str) -> Response:
    signed = await _signed_in(request)
    if signed is None:
        return _to_sign_in(request)
    viewer, authorizer = signed
    db = _db(request)
    found = await db.run(_ticket_parts, ticket_id[:64])
    if found is None or authorizer.is_customer_only(viewer.principal) or not _readable(*found[:2], viewer, authorizer):
        return _page(request, "missing.html", viewer, status_code=404, ticket_id=ticket_id[:64])
    ticket, tasks, suggestions, queues = found
    current = next((t for t in reversed(tasks) if t.status in (TaskStatus.open, TaskStatus.claimed)), None)
    left = left_to_refund(ticket.context.get("customer360"), ticket.order_id)
    # the limit the API applies: the one of the queue the task is in
    limit = authorizer.refund_limit(viewer.principal, current.queue if current else ticket.department)
    return _page(request, "ticket.html", viewer, ticket=ticket, tasks=tasks, task=current,
                 suggestions=suggestions, picture=ticket.context.get("customer360") or {},
                 sla=ticket.context.get("sla") or {}, refundable=left[0] if left else None, refund_limit=limit,
                 queues=[q for q in queues if q != ticket.department], now=utcnow(),
                 supervisor=_supervises(authorizer, viewer.principal))


def _ticket_parts(session: Session, ticket_id: str
                  ) -> tuple[TicketPublic, list[TaskPublic], list[Suggestion], list[str]] | None:
    row = readmodel.get_ticket(session, ticket_id)
    if row is None:
        return None
    ticket = readmodel.ticket_public(row)
    return (ticket, _tasks_of(session, ticket_id), _suggestions(session, ticket),
            [d.name for d in all_departments(session)])


# --- the supervisors' dashboard ------------------------------------------------------------


def _supervised(authorizer: Authorizer, who: Principal) -> list[str] | None:
    """The departments whose agents `who` oversees (None: all); [] for nobody's."""
    reach = authorizer.reach(who, "read", "agent")
    if reach.everything:
        return None
    return sorted(reach.departments)


def _supervises(authorizer: Authorizer, who: Principal) -> bool:
    return _supervised(authorizer, who) != []


@dataclass
class _Cached:
    lock: asyncio.Lock
    at: float = float("-inf")
    figures: dashboard.DayFigures | None = None


async def _day_figures(request: Request, departments: list[str] | None) -> dashboard.DayFigures:
    """The last day's figures of these departments, computed at most every DAY_FIGURES_TTL
    per app (each app has its own database) and set of departments; one computation at a
    time per set, the others wait for it."""
    state = request.app.state
    if not hasattr(state, "console_day_figures"):
        state.console_day_figures = {}
    cache: dict[tuple[str, ...] | None, _Cached] = state.console_day_figures
    key = tuple(departments) if departments is not None else None
    entry = cache.setdefault(key, _Cached(asyncio.Lock()))
    async with entry.lock:
        if entry.figures is None or time.monotonic() - entry.at >= DAY_FIGURES_TTL:
            entry.figures = await _db(request).run(dashboard.last_day, departments, utcnow())
            entry.at = time.monotonic()
        return entry.figures


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard_page(request: Request) -> Response:
    signed = await _signed_in(request)
    if signed is None:
        return _to_sign_in(request)
    viewer, authorizer = signed
    departments = _supervised(authorizer, viewer.principal)
    if departments == []:
        return _page(request, "not_allowed.html", viewer, status_code=403, supervisor=False)
    db = _db(request)
    now = utcnow()
    depth, risk, agents = await db.run(_board, departments, now)
    day = await _day_figures(request, departments)
    hours = [now - timedelta(hours=24 - i) for i in range(24)]
    return _page(request, "dashboard.html", viewer, depth=depth, risk=risk, agents=agents, day=day, hours=hours,
                 at_risk_minutes=int(AT_RISK_WINDOW.total_seconds() // 60), now=now, supervisor=True,
                 departments=departments)


def _board(session: Session, departments: list[str] | None, now: datetime) -> tuple[Any, Any, Any]:
    return (dashboard.queue_depth(session, departments), dashboard.sla_risk(session, departments, now, AT_RISK_WINDOW),
            dashboard.agents_board(session, departments))
