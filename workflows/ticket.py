"""The general customer-service case: one workflow per ticket, id ``ticket-<id>``."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from workflows.case import FAQ_BOT, SUPERVISOR_QUEUE, CaseWorkflow

with workflow.unsafe.imports_passed_through():
    from models.ticket import CaseStep, StepName
    from models.faq import FaqDecision
    from models.task import TaskOutcome
    from models.ticket import TicketCreate, TicketInput, TicketSnapshot, TicketStatus
    from sla.policy import SlaTargetKind
    from workflows.registry import CaseType, register

TICKET_ID_PREFIX = "ticket"
HANDLE_TICKET = "handle_ticket"


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
        if inp.carried is not None:  # carry on where the run before stood
            step: CaseStep | None = await self.resume()
        else:
            self.open(inp)
            await self.publish()
            await self.gather_context()
            self.triage()
            self.start_sla()
            await self.publish()
            if await self._bot_resolves(inp):
                await self.finish()
                return self.snapshot
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

        await self.finish()
        return self.snapshot

    async def _agent_step(self, step: CaseStep) -> CaseStep:
        """An agent handles the ticket; returns the step their decision leads to."""
        inp, queue = self.input, step.queue
        if step.task_id is not None and step.task_id in self.tasks:  # carried across runs
            task = await self.wait_for_task(self.tasks[step.task_id], route=False)
        else:
            task = await self.human_task(queue=queue, priority=self.snapshot.priority, context=self.task_context())
        outcome, agent = task.outcome, task.assignee or "agent"
        self.offer_queued([task.queue])  # the agent has capacity again

        if outcome == TaskOutcome.escalate:
            queue = SUPERVISOR_QUEUE
            self.snapshot.priority = self.snapshot.priority.raised()
            self.record("escalated", f"to {queue} at priority {self.snapshot.priority.value}", by=agent)
            return CaseStep(name=StepName.agent, queue=queue)
        if outcome == TaskOutcome.transfer:
            queue = task.context.get("transfer_to", queue)
            self.record("transferred", f"to {queue}", by=agent)
            return CaseStep(name=StepName.agent, queue=queue)

        decided = self.decisions.pop(task.task_id)
        if decided.refund is not None and not await self.refund(task, decided):
            # The promised refund did not happen: the reply would be untrue. Back to an agent.
            await self.publish()
            return CaseStep(name=StepName.agent, queue=queue)

        await self.notify_customer(task.reply or "", author=agent, key=task.task_id)
        self.sla_met(SlaTargetKind.first_response)
        if outcome == TaskOutcome.ask_customer:
            self.set_status(TicketStatus.waiting_customer, f"{agent} asked the customer")
            await self.publish()
            return self._waiting(StepName.waiting_customer, queue, inp.policy.customer_reply_timeout)
        self.snapshot.resolution = f"resolved by {agent}"
        self.set_status(TicketStatus.resolved, f"by {agent}")
        await self.publish()
        return self._waiting(StepName.closing, queue, inp.policy.auto_close_after)

    def _waiting(self, name: StepName, queue: str, period: timedelta) -> CaseStep:
        return CaseStep(name=name, queue=queue, until=workflow.now() + period)

    async def _waiting_step(self, step: CaseStep) -> CaseStep:
        """An agent asked the customer: their answer goes back to an agent; silence resolves."""
        assert step.until is not None
        if await self.wait_for_customer(step.until - workflow.now()):
            return CaseStep(name=StepName.agent, queue=step.queue)  # the customer answered
        timeout = self.input.policy.customer_reply_timeout
        self.snapshot.resolution = "no reply from the customer"
        self.set_status(TicketStatus.resolved, f"no reply within {timeout}")
        await self.publish()
        return self._waiting(StepName.closing, step.queue, self.input.policy.auto_close_after)

    async def _closing_step(self, step: CaseStep) -> CaseStep | None:
        """Resolved: closed after a quiet period; a customer message reopens it."""
        assert step.until is not None
        if await self.close_when_quiet(self.input.policy.auto_close_after, remaining=step.until - workflow.now()):
            return None
        return CaseStep(name=StepName.agent, queue=step.queue)

    async def _bot_resolves(self, inp: TicketInput) -> bool:
        """True when the FAQ bot's answer settled the ticket (helped, then quiet until closed)."""
        faq = await self.ask_faq_bot(f"{inp.subject}\n{inp.body}")
        if faq is None or faq.decision != FaqDecision.answer or not faq.answer:
            return False
        await self.notify_customer(faq.answer, author=FAQ_BOT, key="faq")
        self.set_status(TicketStatus.bot_answered, f"FAQ entry {faq.best.entry_id if faq.best else '?'}")
        await self.publish()
        verdict = await self.wait_for_feedback(inp.policy.bot_answer_timeout)
        self.record("faq_feedback", verdict)
        if verdict != "helpful":
            return False  # not helpful, a follow-up, or silence: an agent takes over
        self.snapshot.resolution = "answered by the FAQ bot"
        self.set_status(TicketStatus.resolved, "the customer confirmed the FAQ answer helped")
        await self.publish()
        return await self.close_when_quiet(inp.policy.auto_close_after)

    def triage(self) -> None:
        """A general ticket about an order whose parcel is late or lost belongs to logistics."""
        s = self.snapshot
        if s.department != "general" or not s.order_id:
            return
        picture = s.context.get("customer360", {})
        tracking = {o.get("tracking_number") for o in picture.get("orders", []) if o.get("id") == s.order_id}
        for shipment in picture.get("shipments", []):
            if shipment.get("tracking_number") in tracking and shipment.get("is_delayed"):
                s.department = "logistics"
                self.record("triaged", f"order {s.order_id}: parcel {shipment.get('status')}, "
                                       f"{shipment.get('delay_hours')}h late -> logistics")
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
