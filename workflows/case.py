"""The case every kind of case is made from.

:class:`CaseWorkflow` puts the parts of ``workflows/steps`` together. A process designer
writes a new kind of case as a subclass that declares ``CASE_TYPE`` and composes the parts
in ``steps``; its ``run`` hands over to :meth:`CaseWorkflow.run_case`, which opens the case,
shows it in the read model, runs the steps, and finishes (background work collected, every
handler done) whatever path the steps took. ``tests/case_probe.py`` holds whole case types
of a dozen lines; the README's "Writing a new kind of case" walks through one.

The parts, each a small module of ``workflows/steps``:

- human tasks (``work_task``; agents act on them through updates, with validators, so a
  refused action writes nothing to history);
- the conversation (``notify_customer``, ``ask_customer``, ``wait_for_customer``,
  ``close_when_quiet``);
- the SLA supervisor (``self.sla``: ``start``, ``met``; status changes move its clock);
- ``gather_context`` (the customer 360), ``ask_faq_bot`` / ``bot_answers``, ``refund_once``;
- status changes that own their SLA effects: ``set_status``, ``resolve``, ``close``;
- continue-as-new for long cases, from the step the case stands in (``self.step``).

Everything here is deterministic: time comes from ``workflow.now()``, ids from counters,
and activities are named, not imported, so no driver is loaded into the sandbox.
"""

from __future__ import annotations

from temporalio import workflow

from workflows.steps.base import BOUNDED_HISTORY_PATCH, PROJECTION, CaseBase
from workflows.steps.faq import FAQ, FAQ_BOT, FaqBot
from workflows.steps.gather import Gather
from workflows.steps.handover import CARRIED_ENTRIES, CARRIED_MESSAGE_IDS, Handover
from workflows.steps.notify import DELIVERY
from workflows.steps.refund import Refunds
from workflows.steps.task_updates import (
    SENSITIVE_ACTIONS,
    TaskConflict,
    TaskNotFound,
    TaskUpdates,
    Unauthorized,
    require_decision,
)
from workflows.steps.tasks import HANDLE_TICKET, ROUTING, SUPERVISOR_QUEUE

with workflow.unsafe.imports_passed_through():
    from models.ticket import TicketInput, TicketSnapshot

__all__ = [
    "BOUNDED_HISTORY_PATCH", "CARRIED_ENTRIES", "CARRIED_MESSAGE_IDS", "DELIVERY", "FAQ", "FAQ_BOT",
    "HANDLE_TICKET", "PROJECTION", "ROUTING", "SENSITIVE_ACTIONS", "SUPERVISOR_QUEUE",
    "CaseBase", "CaseWorkflow", "TaskConflict", "TaskNotFound", "Unauthorized", "require_decision",
]


class CaseWorkflow(TaskUpdates, FaqBot, Gather, Refunds, Handover):
    """State, handlers and steps shared by every kind of case."""

    async def run_case(self, inp: TicketInput) -> TicketSnapshot:
        """The run every case shares: open the case and show it (or, for a run that continues
        an earlier one, take over where it stood), run :meth:`steps`, then finish. Returns
        the case as it ended."""
        if inp.carried is not None:
            await self.resume()
        else:
            self.open(inp)
            await self.publish()
        await self.steps(inp)
        await self.finish()
        return self.snapshot

    async def steps(self, inp: TicketInput) -> None:
        """What this kind of case does between opening and finishing. A case type overrides it."""
        raise NotImplementedError(f"{type(self).__name__} composes its steps in steps()")
