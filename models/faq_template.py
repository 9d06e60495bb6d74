"""Templated FAQ answers: answers that speak of the customer's own order and parcel.

An FAQ entry's answer that contains ``{{`` or ``{%`` is a template (Jinja syntax, rendered
in Jinja's sandbox), e.g. ``Your parcel is {{ shipment.status }}, expected
{{ shipment.eta }}``. A template may use only the fields of :class:`FaqAnswerContext`,
which is built from the customer 360 the ticket gathered. The knowledge base checks a
template when an entry is created, updated or imported (:func:`template_problems`), so a
misspelt field is refused there, by the person who wrote it, and never meets a customer.

Every field a template names must be known for the ticket, or the bot does not answer:
a reply with a gap in it ("expected None") is worse than an agent's. :func:`render`
says which fields were missing instead of rendering.

Pure code (no I/O): the knowledge base's validation, the FAQ activity that renders, and
workflow code that builds the context all import it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment
from pydantic import AwareDatetime, BaseModel, Field

from models.customer360 import Customer360, OrderStatus, ShipmentStatus
from models.enums import CustomerTier

TEMPLATE_MARKERS = ("{{", "{%")


# --- what a template may use -------------------------------------------------------------------
# Every leaf is optional: None means "this ticket does not know it" (the system was down, the
# carrier gave no estimate, the customer has no such order), which stops the bot from answering.


class ScanFacts(BaseModel):
    """The carrier's most recent scan of the parcel."""

    time: AwareDatetime | None = Field(default=None, description="when it was scanned (shown in UTC)")
    location: str | None = Field(default=None, description="where, e.g. 'Berlin delivery station'")
    description: str | None = Field(default=None, description="the carrier's words, e.g. 'Arrived at delivery station'")


class ShipmentFacts(BaseModel):
    """The parcel of the order, as the carrier tracks it."""

    tracking_number: str | None = None
    carrier: str | None = None
    status: ShipmentStatus | None = Field(default=None, description="e.g. 'in transit' (None if the carrier cannot say)")
    eta: date | None = Field(default=None, description="the carrier's estimated delivery date")
    promised: date | None = Field(default=None, description="the delivery date promised at checkout")
    delivered_on: date | None = None
    delay_days: int | None = Field(default=None, description="whole days late against the promise, 0 when on time")
    last_scan: ScanFacts | None = None


class OrderFacts(BaseModel):
    """The order the ticket is about, as the ERP has it."""

    id: str | None = None
    status: OrderStatus | None = Field(default=None, description="e.g. 'shipped' (None if the ERP cannot say)")
    placed_on: date | None = None
    total: Decimal | None = None
    currency: str | None = None
    tracking_number: str | None = None
    carrier: str | None = None


class CustomerFacts(BaseModel):
    """The customer, as the ERP and the older helpdesk know them."""

    name: str | None = None
    tier: CustomerTier | None = None
    earlier_tickets: int | None = Field(default=None, description="tickets in the older helpdesk")


class FaqAnswerContext(BaseModel):
    """Everything a templated answer may use: ``order.*``, ``shipment.*`` (with
    ``shipment.last_scan.*``) and ``customer.*``. It crosses Temporal inside the FAQ query."""

    order: OrderFacts | None = None
    shipment: ShipmentFacts | None = None
    customer: CustomerFacts | None = None

    @classmethod
    def from_customer360(cls, picture: Customer360, order_id: str | None = None) -> FaqAnswerContext:
        """The ticket's order (the one it names, else the customer's newest: the ERP lists
        newest first) and that order's parcel, tracked by the order's tracking number.

        Only an order the ERP confirms is the customer's counts. When the ERP could not be
        asked, the gather still shows an agent the parcels the carrier lists under an order
        id the customer typed; the bot does not tell anyone where a parcel is on the
        strength of a typed id, so that ticket has no order or shipment fields."""
        order = next((o for o in picture.orders if o.id == order_id), None) if order_id else (
            picture.orders[0] if picture.orders else None)
        shipment = None
        if order is not None and order.tracking_number:
            shipment = next((s for s in picture.shipments if s.tracking_number == order.tracking_number), None)
        helpdesk_down = any(gap.system == "helpdesk" for gap in picture.gaps)
        customer = picture.customer
        return cls(
            order=None if order is None else OrderFacts(
                id=order.id, status=None if order.status == OrderStatus.unknown else order.status,
                placed_on=_day(order.placed_at), total=order.total, currency=order.currency,
                tracking_number=order.tracking_number, carrier=order.carrier,
            ),
            shipment=None if shipment is None else ShipmentFacts(
                tracking_number=shipment.tracking_number, carrier=shipment.carrier,
                status=None if shipment.status == ShipmentStatus.unknown else shipment.status,
                eta=_day(shipment.estimated_delivery), promised=_day(shipment.promised_delivery),
                delivered_on=_day(shipment.delivered_at), delay_days=shipment.delay_days,
                last_scan=None if not shipment.events else ScanFacts(
                    **max(shipment.events, key=lambda e: e.time).model_dump(include={"time", "location", "description"})
                ),
            ),
            customer=CustomerFacts(
                name=customer.name if customer else None, tier=customer.tier if customer else None,
                earlier_tickets=None if helpdesk_down else len(picture.external_tickets),
            ),
        )


def _day(moment: datetime | None) -> date | None:
    return None if moment is None else moment.astimezone(UTC).date()


def template_fields(model: type[BaseModel] = FaqAnswerContext, prefix: str = "") -> list[str]:
    """Every field a template may name, dotted: ``order.id``, ``shipment.last_scan.location``..."""
    fields: list[str] = []
    for name in model.model_fields:
        nested = _nested_model(model, name)
        fields += template_fields(nested, f"{prefix}{name}.") if nested else [f"{prefix}{name}"]
    return fields


def _nested_model(model: type[BaseModel], name: str) -> type[BaseModel] | None:
    for candidate in (model.model_fields[name].annotation, *getattr(model.model_fields[name].annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


# --- checking a template -------------------------------------------------------------------------


def is_template(answer: str) -> bool:
    return any(marker in answer for marker in TEMPLATE_MARKERS)


def _display(value: Any) -> Any:
    """How a field reads in a sentence to a customer."""
    if isinstance(value, Enum):
        return str(value.value).replace("_", " ")
    if isinstance(value, datetime):
        value = value.astimezone(UTC)
        return f"{value.day} {value:%B %Y}, {value:%H:%M} UTC"
    if isinstance(value, date):
        return f"{value.day} {value:%B %Y}"
    return value


# Plain text, not HTML: a reply goes out as a chat or email message. Jinja's sandbox keeps a
# template from reaching anything but the values it is given.
_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True,
                            finalize=_display)


# What a template may contain besides text and fields: conditions and a few filters that
# cannot make a reply large or slow. Loops, arithmetic, calls and assignments are refused:
# a customer answer needs none of them, and each could keep a worker busy for good.
FILTERS = ("upper", "lower", "title", "capitalize", "trim", "round")
_ALLOWED = (nodes.Template, nodes.Output, nodes.TemplateData, nodes.Const, nodes.Name, nodes.Getattr,
            nodes.Getitem, nodes.Filter, nodes.If, nodes.CondExpr, nodes.Not, nodes.And, nodes.Or,
            nodes.Compare, nodes.Operand)


def _refused_constructs(node: nodes.Node) -> Iterator[str]:
    if not isinstance(node, _ALLOWED):
        yield f"line {node.lineno}: {type(node).__name__.lower()} is not allowed in an answer template " \
              f"(use fields, if/elif/else and the filters {', '.join(FILTERS)})"
        return
    if isinstance(node, nodes.Filter) and node.name not in FILTERS:
        yield f"line {node.lineno}: filter {node.name!r} is not allowed; use one of {', '.join(FILTERS)}"
    for child in node.iter_child_nodes():
        yield from _refused_constructs(child)


@dataclass(frozen=True)
class _Use:
    path: str
    line: int


def _uses(node: nodes.Node) -> Iterator[_Use]:
    """The dotted names a template reads (``shipment.last_scan.location``), outermost first."""
    if isinstance(node, nodes.Getattr | nodes.Getitem):
        path = _dotted(node)
        if path is not None:
            yield _Use(path, node.lineno)
            return
    if isinstance(node, nodes.Name) and node.ctx == "load":
        yield _Use(node.name, node.lineno)
        return
    for child in node.iter_child_nodes():
        yield from _uses(child)


def _dotted(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        inner = _dotted(node.node)
        return None if inner is None else f"{inner}.{node.attr}"
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        inner = _dotted(node.node)
        return None if inner is None else f"{inner}.{node.arg.value}"
    return None


def _check_path(path: str) -> str | None:
    """Why a template may not read `path`, or None if it may."""
    model: type[BaseModel] | None = FaqAnswerContext
    walked: list[str] = []
    for name in path.split("."):
        if model is None:
            return f"{'.'.join(walked)} is a value, it has no field {name!r}"
        if name not in model.model_fields:
            known = ", ".join(f"{'.'.join([*walked, n])}" for n in model.model_fields)
            return f"{'.'.join([*walked, name])} is not a field a template may use; known here: {known}"
        walked.append(name)
        model = _nested_model(model, name)
    if model is not None:
        return f"{path} is a group of fields; name one of: {', '.join(f'{path}.{n}' for n in model.model_fields)}"
    return None


def template_problems(answer: str) -> list[str]:
    """What is wrong with the template `answer`, one sentence each with its line in the
    answer; empty if it renders for any ticket that has the fields it names."""
    try:
        parsed = _ENV.parse(answer)
    except TemplateSyntaxError as exc:
        return [f"line {exc.lineno}: {exc.message}"]
    problems = [*_refused_constructs(parsed),
                *(f"line {use.line}: {why}" for use in _uses(parsed) if (why := _check_path(use.path)))]
    if problems:
        return problems
    try:
        _ENV.from_string(answer)  # compiled only once nothing in it can run long
    except TemplateSyntaxError as exc:
        return [f"line {exc.lineno}: {exc.message}"]
    return []


def check_answer(answer: str) -> str:
    """Refuse a template answer that uses a field or syntax it may not (pydantic validator)."""
    if is_template(answer) and (problems := template_problems(answer)):
        raise ValueError("answer template: " + "; ".join(problems))
    return answer


# --- rendering ---------------------------------------------------------------------------------


class RenderedAnswer(BaseModel):
    """A template rendered for one ticket: the text, or the fields it lacks."""

    text: str | None = None
    missing_fields: list[str] = Field(default_factory=list)
    error: str | None = None

    @property
    def reason(self) -> str | None:
        """Why there is no text, in words an agent reads on the task."""
        if self.error is not None:
            return f"the template did not render: {self.error}"
        if not self.missing_fields:
            return None
        names = self.missing_fields
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
        return f"needs {listed}, which this ticket does not have"


def _value(context: FaqAnswerContext, path: str) -> Any:
    value: Any = context
    for name in path.split("."):
        value = getattr(value, name, None)
        if value is None:
            return None
    return value


# A worker answers with a few templates over and over: parse and compile each once.
@lru_cache(maxsize=256)
def _used_fields(answer: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(use.path for use in _uses(_ENV.parse(answer))))


@lru_cache(maxsize=256)
def _compiled(answer: str) -> Template:
    return _ENV.from_string(answer)


def render(answer: str, context: FaqAnswerContext | None) -> RenderedAnswer:
    """`answer` with the ticket's facts filled in; or, if the ticket lacks a field the
    template names (None: nothing was gathered), which ones, in the order they appear."""
    context = context or FaqAnswerContext()
    missing = [path for path in _used_fields(answer) if _value(context, path) is None]
    if missing:
        return RenderedAnswer(missing_fields=missing)
    try:
        return RenderedAnswer(text=_compiled(answer).render(context.model_dump()))
    except TemplateError as exc:  # checked when saved; a template that still fails is not sent
        return RenderedAnswer(error=str(exc))
