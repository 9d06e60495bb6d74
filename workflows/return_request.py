"""The return request: a customer sends items of an order back, and gets their money once the
carrier has the parcel.

1. Fetch the order from the ERP and check it against the return policy (data, in
   `policies/returns.json`): the order is shipped or delivered, within the window, and the
   items are on it and returnable. Not eligible: the customer is told why; the case closes.
2. No reason given: ask the customer, and wait (`returns.reason_timeout`).
3. An approval task in the `returns` queue: approve, reject, or ask the customer something.
   Approving moves money, so the API checks the approver's refund right and limit for the
   amount, as it does for a refund on a support ticket.
4. Approved: the carrier makes a return label; the customer gets its tracking number.
5. The case asks the carrier every `returns.scan_poll_every` whether the parcel was scanned
   (durable timers, so a restart loses nothing), up to `returns.scan_wait_limit`.
6. Scanned: the ERP refunds the returned lines, exactly once (the key is the case's). The
   customer is told at every step.

An ERP that cannot be reached when the case opens puts the case in front of an agent with
the gap named; a label or refund the systems refuse after their retries goes back to an
agent too, never silently dropped.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from workflows.case import CaseWorkflow
from workflows.context import create_return_label, lookup_orders, track_shipment

with workflow.unsafe.imports_passed_through():
    from models.customer360 import Order, ShipmentStatus
    from models.enums import Priority
    from models.returns import (
        Eligibility,
        ReturnCreate,
        ReturnInput,
        ReturnApproval,
        ReturnLabelRequest,
        check_eligibility,
        load_return_policy,
    )
    from models.systems import SystemFailure
    from models.task import TaskSnapshot
    from models.ticket import TicketSnapshot, TicketStatus
    from workflows.registry import CaseType, register

CASE_TYPE = "return-request"
APPROVE_RETURN = "approve_return"
FIX_RETURN = "fix_return"
SCANNED = (ShipmentStatus.in_transit, ShipmentStatus.out_for_delivery, ShipmentStatus.delivered)
RETURNS_DESK = "returns-desk"
APPROVAL_OUTCOMES = ("approve", "reject", "ask_customer")
LABEL_REMINDER = "return-label-reminder"  # workflow.patched id: the reminder came after release
OFFER_AFTER_TASK = "return-offers-freed-capacity"  # workflow.patched id: so did offering queued work


@workflow.defn
class ReturnRequestWorkflow(CaseWorkflow):
    CASE_TYPE = CASE_TYPE

    @workflow.run
    async def run(self, inp: ReturnInput) -> TicketSnapshot:
        return await self.run_case(inp)

    async def steps(self, inp: ReturnInput) -> None:
        self.returns = inp.returns
        self.sla.start()
        if not inp.order_id:  # a chat that named no order: the API's own route requires one
            await self._close("no_order", "Tell us which order to send back: write again with its number "
                                          "(for example ORD-1001).")
            return
        result = await lookup_orders(inp.customer_id, inp.order_id)
        if isinstance(result, SystemFailure):
            self.record("context_gap", f"{result.system}: {result.error_type}: {result.message}")
            await self._agent_handles_it(f"the ERP could not say what order {inp.order_id} holds "
                                         f"({result.error_type}); settle the return by hand")
        elif (order := next((o for o in result.orders if o.id == inp.order_id), None)) is None:
            await self._close("unknown_order", f"We could not find order {inp.order_id} on your account.")
        else:
            await self._return(inp, order)

    async def _return(self, inp: ReturnInput, order: Order) -> None:
        check = check_eligibility(order, inp.case_data.items, inp.returns, workflow.now())
        self.snapshot.context["return"] = check.model_dump(mode="json")
        self.record("return_checked", "eligible" if check.eligible else "; ".join(check.problems),
                    amount=str(check.amount), items=check.skus)
        if not check.eligible:
            await self._close("not_eligible", "We cannot take this return: " + "; ".join(check.problems) + ".")
            return
        reason = inp.case_data.reason or await self.ask_customer(
            f"Why are you sending back {', '.join(check.skus)}?", inp.returns.reason_timeout, key="reason",
            author=RETURNS_DESK)
        if reason is None:
            await self._close("no_reason", "We closed your return request as we did not hear back from you.")
            return
        self.record("return_reason", reason)
        await self._approve_and_refund(order, check, reason)

    async def _approve_and_refund(self, order: Order, check: Eligibility, reason: str) -> None:
        approval = ReturnApproval(order_id=order.id, items=check.skus, amount=check.amount, currency=check.currency,
                                  reason=reason)
        while True:
            task = await self.work_task(queue=self.returns.queue, priority=Priority.normal, kind=APPROVE_RETURN,
                                        allowed_outcomes=list(APPROVAL_OUTCOMES), context=approval,
                                        refund_on={"approve": check.amount})
            approver = task.assignee or RETURNS_DESK
            self.decisions.pop(task.task_id, None)
            if task.outcome == "reject":
                await self._close("rejected", task.reply or "We cannot take this return.", author=approver)
                return
            if task.outcome == "ask_customer":
                answer = await self.ask_customer(task.reply or "Could you tell us more?",
                                                 self.returns.reason_timeout, key=task.task_id, author=approver)
                if answer is None:
                    await self._close("no_reply", "We closed your return request as we did not hear back.")
                    return
                continue
            break
        self.set_status(TicketStatus.in_progress, f"return approved by {task.assignee}")
        label = await create_return_label(ReturnLabelRequest(
            ticket_id=self.snapshot.ticket_id, order_id=order.id, skus=check.skus,
            idempotency_key=f"{self.snapshot.ticket_id}:label"))
        if isinstance(label, SystemFailure):
            self.record("label_failed", f"{label.error_type}: {label.message}")
            await self._agent_handles_it(f"the carrier made no return label ({label.error_type}); "
                                         "send one by hand, then refund")
            return
        self.snapshot.context["return_label"] = label.model_dump(mode="json")
        self.record("label_created", f"{label.carrier} {label.tracking_number}")
        await self.notify_customer(
            f"Your return is approved. Print the label at {label.label_url} and hand the parcel to "
            f"{label.carrier}; tracking number {label.tracking_number}. We refund {check.amount} "
            f"{check.currency} once it is scanned.", author=approver, key="label")
        self.set_status(TicketStatus.waiting_customer, "waiting for the parcel to be scanned")
        await self.publish()
        if not await self._parcel_scanned(label.tracking_number):
            await self._close("never_sent", "We closed your return: the carrier never scanned the parcel. "
                                            "Write to us if you still want to send it.")
            return
        refund = await self.refund_once(order_id=order.id, amount=check.amount, reason=f"return: {reason}",
                                        key=f"{self.snapshot.ticket_id}:refund", department=self.returns.queue,
                                        decided_by=task.assignee or "")
        if isinstance(refund, SystemFailure):
            await self._agent_handles_it(f"the refund of {check.amount} {check.currency} failed "
                                         f"({refund.error_type}); refund by hand")
            return
        await self._close("refunded", f"We received your parcel and refunded {refund.amount} {refund.currency}.")

    def capacity_freed(self, task: TaskSnapshot) -> None:
        """Return requests released before this offered no queued work when an approver
        finished; their histories replay without the offer."""
        if workflow.patched(OFFER_AFTER_TASK):
            super().capacity_freed(task)

    async def _parcel_scanned(self, tracking_number: str) -> bool:
        waited = timedelta(0)
        reminded = False
        while waited < self.returns.scan_wait_limit:
            shipment = await track_shipment(tracking_number)
            if not isinstance(shipment, SystemFailure) and shipment.status in SCANNED:
                self.record("parcel_scanned", f"{tracking_number}: {shipment.status.value}")
                return True
            if not reminded and waited >= self.returns.remind_after:
                reminded = await self._remind(tracking_number)
            await workflow.sleep(self.returns.scan_poll_every)
            waited += self.returns.scan_poll_every
        return False

    async def _remind(self, tracking_number: str) -> bool:
        """Remind the customer, once, to send the parcel. Added after return requests were
        released: a case whose history passed this point without a reminder replays without
        one (`workflow.patched` is False there), and goes on to its end on this code."""
        if not workflow.patched(LABEL_REMINDER):
            return True  # the old code sent none; nor does its replay
        await self.notify_customer(f"A reminder: your return label for parcel {tracking_number} is ready. Hand "
                                   "the parcel to the carrier so we can refund you.", author=RETURNS_DESK,
                                   key="label-reminder")
        return True

    async def _agent_handles_it(self, why: str) -> TaskSnapshot:
        self.record("handed_to_agent", why)
        task = await self.work_task(queue=self.returns.queue, priority=Priority.high, kind=FIX_RETURN,
                                    allowed_outcomes=["resolve"], context={"problem": why})
        self.decisions.pop(task.task_id, None)
        await self._close("settled_by_agent", task.reply or "Your return has been settled.", author=task.assignee)
        return task

    async def _close(self, outcome: str, message: str, *, author: str | None = None) -> None:
        """Tell the customer how the return ended, and close the case with that outcome."""
        await self.notify_customer(message, author=author or RETURNS_DESK, key=f"close-{outcome}")
        await self.close(outcome)


RETURN_REQUEST = register(CaseType(
    name=CASE_TYPE,
    title="Return request",
    description="A customer sends items of an order back: checked against the return policy, approved by "
    "the returns team, labelled by the carrier, refunded once through the ERP when the parcel is scanned.",
    workflow=ReturnRequestWorkflow,
    create_model=ReturnCreate,
    input_model=ReturnInput,
    id_prefix="return",
    default_department="returns",
    task_outcomes={APPROVE_RETURN: APPROVAL_OUTCOMES, FIX_RETURN: ("resolve",)},
    intake=lambda settings: {"returns": load_return_policy(settings.returns_policy_file)},
))
