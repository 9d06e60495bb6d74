"""The general customer-service case: one workflow per ticket, id ``ticket-<id>``."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from workflows.case import HANDLE_TICKET, CaseWorkflow

with workflow.unsafe.imports_passed_through():
    from models.ticket import CaseStep, StepName
    from models.task import TaskOutcome
    from models.ticket import TicketCreate, TicketInput, TicketSnapshot, TicketStatus
    from sla.policy import SlaTargetKind
    from workflows.registry import CaseType, register

TICKET_ID_PREFIX = "ticket"


def workflow_id_for(ticket_id: str) -> str:
    return f"{TICKET_ID_PREFIX}-{ticket_id}"


@workflow.defn
class TicketWorkflow(CaseWorkflow):
    """Gather the customer's context, let the FAQ bot answer what it confidently can, hand
    the rest to an agent, carry out the agent's decision, and close the ticket once the
    customer has been quiet for the configured period after resolution."""

    CASE_TYPE = "support-ticket"

    @workflow.init
    def __init__(self, inp: TicketInput) -> None:
        super().__init__()
        if inp.carried is not None:  # a long ticket continued as a new run: take over its state
            self.restore(inp, inp.carried)

    @workflow.run
    async def run(self, inp: TicketInput) -> TicketSnapshot:
        return await self.run_case(inp)

    async def steps(self, inp: TicketInput) -> None:
        if inp.carried is not None:  # a run that continues the ticket: carry on from its step
            step: CaseStep | None = self.step
        else:
            await self.gather_context()
            self.triage()
            self.sla.start()
            await self.publish()
            if await self.bot_answers(f"{inp.subject}\n{inp.body}"):
                return
            step = CaseStep(name=StepName.agent, queue=self.snapshot.department)  # after triage
        while step is not None:
            self.step = step
            if step.name == StepName.agent:
                await self.continue_as_new_if_long()
                step = await self._agent_step(step)
            elif step.name == StepName.waiting_customer:
                step = await self._waiting_step(step)
            else:
                step = await self._closing_step(step)

    async def _agent_step(self, step: CaseStep) -> CaseStep:
        """An agent handles the ticket (escalating or transferring it on the way, if they
        choose); returns the step their decision leads to."""
        task = await self.work_task(queue=step.queue, context=self.task_context(), task_id=step.task_id)
        queue = self.step.queue if self.step is not None else step.queue  # where escalations left it
        agent = task.assignee or "agent"
        decided = self.decisions.pop(task.task_id)
        if decided.refund is not None and not await self.refund(task, decided):
            # The promised refund did not happen: the reply would be untrue. Back to an agent.
            await self.publish()
            return CaseStep(name=StepName.agent, queue=queue)

        await self.notify_customer(task.reply or "", author=agent, key=task.task_id)
        self.sla.met(SlaTargetKind.first_response)
        if task.outcome == TaskOutcome.ask_customer:
            self.set_status(TicketStatus.waiting_customer, f"{agent} asked the customer")
            await self.publish()
            return self._waiting(StepName.waiting_customer, queue, self.input.policy.customer_reply_timeout)
        await self.resolve(f"resolved by {agent}", f"by {agent}")
        return self._waiting(StepName.closing, queue, self.input.policy.auto_close_after)

    def _waiting(self, name: StepName, queue: str, period: timedelta) -> CaseStep:
        return CaseStep(name=name, queue=queue, until=workflow.now() + period)

    async def _waiting_step(self, step: CaseStep) -> CaseStep:
        """An agent asked the customer: their answer goes back to an agent; silence resolves."""
        assert step.until is not None
        if await self.wait_for_customer(step.until - workflow.now()):
            return CaseStep(name=StepName.agent, queue=step.queue)  # the customer answered
        timeout = self.input.policy.customer_reply_timeout
        await self.resolve("no reply from the customer", f"no reply within {timeout}")
        return self._waiting(StepName.closing, step.queue, self.input.policy.auto_close_after)

    async def _closing_step(self, step: CaseStep) -> CaseStep | None:
        """Resolved: closed after a quiet period; a customer message reopens it."""
        assert step.until is not None
        if await self.close_when_quiet(self.input.policy.auto_close_after, remaining=step.until - workflow.now()):
            return None
        return CaseStep(name=StepName.agent, queue=step.queue)

    def triage(self) -> None:
        """A general ticket about an order whose parcel is late or lost belongs to logistics."""
        s = self.snapshot
        if s.department != "general" or not s.order_id or self.customer360 is None:
            return
        picture = self.customer360
        tracking = {o.tracking_number for o in picture.orders if o.id == s.order_id and o.tracking_number}
        for shipment in picture.shipments:
            if shipment.tracking_number in tracking and shipment.is_delayed:
                s.department = "logistics"
                self.record("triaged", f"order {s.order_id}: parcel {shipment.status.value}, "
                                       f"{shipment.delay_hours}h late -> logistics")
                return

    def task_context(self) -> dict:
        """What the agent sees on the task: the customer 360 and the bot's suggestions."""
        ctx = self.snapshot.context
        return {key: ctx[key] for key in ("customer360", "faq") if key in ctx}


SUPPORT_TICKET = register(CaseType(
    name=TicketWorkflow.CASE_TYPE,
    title="Support ticket",
    description="A customer's question or problem: the customer's orders, parcels and earlier tickets are "
    "gathered, the FAQ bot answers what it confidently can, an agent handles the rest.",
    workflow=TicketWorkflow,
    create_model=TicketCreate,
    input_model=TicketInput,
    id_prefix=TICKET_ID_PREFIX,
    default_department="general",
    task_outcomes={HANDLE_TICKET: tuple(TaskOutcome)},
))
