"""Money back through the ERP, exactly once.

The idempotency key comes from the decision (the task's, or the case's for a case that
refunds once), never from chance: a retried activity or a replayed workflow returns the
first refund instead of paying twice. A refund the ERP refuses is recorded with its reason,
and the step says so; what the case does then is the case's to decide.
"""

from __future__ import annotations

from decimal import Decimal

from temporalio import workflow

from workflows.context import issue_refund
from workflows.steps.base import CaseBase

with workflow.unsafe.imports_passed_through():
    from models.customer360 import Refund
    from models.systems import RefundRequest, SystemFailure
    from models.task import CompleteTask, TaskSnapshot


class Refunds(CaseBase):
    async def refund_once(self, *, order_id: str | None, amount: Decimal, reason: str, key: str, department: str,
                          decided_by: str, task_id: str | None = None) -> Refund | SystemFailure:
        """Refund `amount` of `order_id` under the idempotency `key` (one decision, one key,
        for ever: a key changed under a case in flight would pay twice). Returns the refund,
        or why it was not made (also on the timeline)."""
        s = self.snapshot
        where = {"task_id": task_id} if task_id else {}
        if not order_id:
            self.record("refund_failed", "the ticket names no order", **where)
            return SystemFailure(system="erp", error_type="InvalidRequest", message="the case names no order")
        result = await issue_refund(RefundRequest(
            ticket_id=s.ticket_id, customer_id=s.customer_id, order_id=order_id, amount=amount,
            reason=reason[:500], idempotency_key=key, department=department,
            decided_by=decided_by,
        ))
        if isinstance(result, SystemFailure):
            self.record("refund_failed", f"{result.error_type}: {result.message}", amount=str(amount),
                        order_id=order_id, **where)
            return result
        s.context.setdefault("refunds", []).append(result.model_dump(mode="json"))
        self.record("refund_created", f"{result.amount} {result.currency} on {order_id} ({result.id})",
                    refund_id=result.id, **where)
        return result

    async def refund(self, task: TaskSnapshot, decided: CompleteTask) -> bool:
        """Carry out the refund an agent decided with `task`. False: it could not be made."""
        decision = decided.refund
        assert decision is not None
        made = await self.refund_once(order_id=decision.order_id or self.snapshot.order_id, amount=decision.amount,
                                      reason=decision.reason, key=f"{task.task_id}:refund", department=task.queue,
                                      decided_by=decided.agent, task_id=task.task_id)
        return not isinstance(made, SystemFailure)
