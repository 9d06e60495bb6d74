"""The customer 360: what the ERP, the carrier and the older helpdesk know of the customer."""

from __future__ import annotations

from temporalio import workflow

from workflows.context import gather_customer_360
from workflows.steps.base import CaseBase

with workflow.unsafe.imports_passed_through():
    from models.customer360 import Customer360


class Gather(CaseBase):
    async def gather_context(self) -> Customer360 | None:
        """Orders, shipments and earlier tickets, fetched concurrently. A system that is down
        leaves a recorded gap; the case goes on with what the others said. The picture is
        kept typed on the case (``self.customer360``) and shown in its context."""
        if not self.input.policy.gather_context:
            return None
        s = self.snapshot
        picture = await gather_customer_360(s.customer_id, s.order_id)
        self.customer360 = picture
        s.context["customer360"] = picture.model_dump(mode="json")
        if picture.customer is not None:
            self.tier_from_systems = picture.customer.tier
        found = (f"{len(picture.orders)} orders, {len(picture.shipments)} shipments, "
                 f"{len(picture.external_tickets)} earlier tickets")
        self.record("context_gathered", found, gaps=len(picture.gaps))
        for gap in picture.gaps:
            self.record("context_gap", f"{gap.system}: {gap.reason}", system=gap.system, error_type=gap.error_type)
        return picture
