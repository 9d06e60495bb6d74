"""For the auditor's toolkit tests: the recorded histories as archive records, and today's
support ticket changed in two ways (a rule that changes what a command carries, and a change
that drops a command)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from temporalio import workflow

from workflows.ticket import TicketWorkflow

HISTORIES = Path(__file__).resolve().parent / "histories"

with workflow.unsafe.imports_passed_through():
    from models.task import CompleteTask, TaskSnapshot
    from models.ticket import TicketInput, TicketSnapshot


def records() -> list:
    """The recorded histories (tests/histories) as an archive holds them, one ticket each."""
    from temporalio.client import WorkflowHistory

    from audit.archive import record_for

    out = []
    for path in sorted(HISTORIES.glob("*.json")):
        history = WorkflowHistory.from_json(f"ticket-{path.stem}", json.loads(path.read_text()))
        out.append(record_for(ticket_id=path.stem, case_type="support-ticket", workflow_type="TicketWorkflow",
                              runs=[(history.run_id, history)]))
    return out


@workflow.defn(name="TicketWorkflow")
class RestockingFeeTicket(TicketWorkflow):
    """A new refund rule: keep a 10% restocking fee."""

    @workflow.init
    def __init__(self, inp: TicketInput) -> None:
        super().__init__(inp)

    @workflow.run
    async def run(self, inp: TicketInput) -> TicketSnapshot:
        return await self.run_case(inp)

    async def refund(self, task: TaskSnapshot, decided: CompleteTask) -> bool:
        assert decided.refund is not None
        kept = (decided.refund.amount * Decimal("0.9")).quantize(Decimal("0.01"))
        return await super().refund(task, decided.model_copy(update={
            "refund": decided.refund.model_copy(update={"amount": kept})}))


@workflow.defn(name="TicketWorkflow")
class NoRefundsTicket(TicketWorkflow):
    """Changed without a patch: an agent's refund is no longer made (a command goes missing)."""

    @workflow.init
    def __init__(self, inp: TicketInput) -> None:
        super().__init__(inp)

    @workflow.run
    async def run(self, inp: TicketInput) -> TicketSnapshot:
        return await self.run_case(inp)

    async def refund(self, task: TaskSnapshot, decided: CompleteTask) -> bool:
        self.record("refund_failed", "refunds are switched off")
        return False
