"""The return request: what a customer sends back, the policy that decides what may come back,
and the return label the carrier makes. Contracts only (pydantic), safe in workflow history."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from functools import lru_cache
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, Field, model_validator

from models.customer360 import Order, OrderStatus
from models.ticket import TicketCreate, TicketInput

RETURNABLE_STATUSES = (OrderStatus.shipped, OrderStatus.delivered)


class ReturnPolicy(BaseModel):
    """What may come back, and how long the case waits at each step (`policies/returns.json`,
    frozen into each case at intake, so a later change applies to new cases only)."""

    window_days: int = Field(default=30, ge=1, le=365, description="Days from the order within which it may come back.")
    non_returnable_skus: list[str] = Field(default_factory=list, description="Items that never come back.")
    reason_timeout: timedelta = Field(default=timedelta(days=7), description="How long to wait for a missing reason.")
    scan_poll_every: timedelta = Field(default=timedelta(hours=6), description="How often to ask the carrier "
                                       "whether the returned parcel was scanned.")
    scan_wait_limit: timedelta = Field(default=timedelta(days=30), description="When to stop waiting for it.")
    remind_after: timedelta = Field(default=timedelta(days=3), description="Remind the customer once to send "
                                    "the parcel when it is not scanned by then.")
    queue: str = Field(default="returns", pattern=r"^[a-z0-9_-]+$", description="Where approval tasks go.")


@lru_cache(maxsize=8)
def load_return_policy(path: Path) -> ReturnPolicy:
    """Read once per process and path, like the SLA and intake files: every return request
    opened freezes it into its input."""
    return ReturnPolicy.model_validate(json.loads(Path(path).read_text()))


class ReturnData(BaseModel):
    reason: str | None = Field(default=None, max_length=2000, description="Why it comes back; asked for if missing.")
    items: list[str] = Field(default_factory=list, max_length=50,
                             description="SKUs of the order's lines that come back; none: the whole order.")


class ReturnCreate(TicketCreate):
    case_data: ReturnData = Field(default_factory=ReturnData)

    @model_validator(mode="after")
    def _names_the_order(self) -> ReturnCreate:
        if not self.order_id:
            raise ValueError("order_id is required: a return request names the order it sends back")
        return self


class ReturnInput(TicketInput):
    case_data: ReturnData = Field(default_factory=ReturnData)
    returns: ReturnPolicy = Field(default_factory=ReturnPolicy)


class ReturnLabelRequest(BaseModel):
    """Input of ``create_return_label``: one label per case, however often it is retried."""

    ticket_id: str
    order_id: str
    skus: list[str]
    idempotency_key: str


class ReturnLabel(BaseModel):
    tracking_number: str
    carrier: str
    label_url: str


class Eligibility(BaseModel):
    """What comes back and for how much, or why it may not."""

    skus: list[str] = Field(default_factory=list)
    kept_back: list[str] = Field(default_factory=list, description="Lines of a whole-order return that may not "
                                 "come back (non-returnable), left out.")
    amount: Decimal = Decimal("0")
    currency: str = ""
    problems: list[str] = Field(default_factory=list)

    @property
    def eligible(self) -> bool:
        return not self.problems


class ReturnApproval(BaseModel):
    """What the returns team sees on an approval task."""

    order_id: str
    items: list[str] = Field(description="The SKUs coming back.")
    amount: Decimal = Field(description="What approving refunds, once the parcel is scanned.")
    currency: str
    reason: str


def check_eligibility(order: Order, wanted: list[str], policy: ReturnPolicy, now: datetime) -> Eligibility:
    """Which of `wanted` may come back under `policy`, and the refund. None wanted: every line
    that may come back (the others are kept back, and said so)."""
    lines = {line.sku: line for line in order.lines}
    kept_back: list[str] = []
    if wanted:
        skus = list(dict.fromkeys(wanted))
    else:
        skus = [sku for sku in lines if sku not in policy.non_returnable_skus]
        kept_back = [sku for sku in lines if sku in policy.non_returnable_skus]
    problems = []
    if not skus:
        problems.append(f"nothing on order {order.id} can be returned")
    if order.status not in RETURNABLE_STATUSES:
        problems.append(f"order {order.id} is {order.status.value}: only shipped or delivered orders come back")
    deadline = order.placed_at + timedelta(days=policy.window_days)
    if now > deadline:
        problems.append(f"order {order.id} was placed on {order.placed_at:%Y-%m-%d}; returns close after "
                        f"{policy.window_days} days ({deadline:%Y-%m-%d})")
    unknown = [sku for sku in skus if sku not in lines]
    if unknown:
        problems.append(f"order {order.id} has no {', '.join(unknown)}")
    final = [sku for sku in skus if sku in policy.non_returnable_skus]
    if final:
        problems.append(f"{', '.join(final)} cannot be returned")
    amount = sum((lines[s].unit_price * lines[s].quantity for s in skus if s in lines), Decimal("0"))
    return Eligibility(skus=skus, kept_back=kept_back, amount=min(amount, order.refundable_amount),
                       currency=order.currency, problems=problems)
