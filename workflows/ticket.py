"""The general customer-service case: one workflow per ticket, id ``ticket-<id>``."""

from __future__ import annotations

from temporalio import workflow

from workflows.case import FAQ_BOT, SUPERVISOR_QUEUE, CaseWorkflow

with workflow.unsafe.imports_passed_through():
    from models.faq import FaqDecision
    from models.task import TaskOutcome
    from models.ticket import TicketInput, TicketSnapshot, TicketStatus
    from sla.policy import SlaTargetKind


def workflow_id_for(ticket_id: str) -> str:
    return f"ticket-{ticket_id}"


@workflow.defn
class TicketWorkflow(CaseWorkflow):
    """Gather the customer's context, let the FAQ bot answer what it confidently can, hand
    the rest to an agent, carry out the agent's decision, and close the ticket once the
    customer has been quiet for the configured period after resolution."""

    @workflow.run
    async def run(self, inp: TicketInput) -> TicketSnapshot:
        self.open(inp)
        await self.publish()
        await self.gather_context()
        self.triage()
        self.start_sla()
        await self.publish()

        if await self._bot_resolves(inp):
            await self.finish()
            return self.snapshot

        queue = self.snapshot.department  # after triage
        while True:
            task = await self.human_task(queue=queue, priority=self.snapshot.priority, context=self.task_context())
            outcome, agent = task.outcome, task.assignee or "agent"
            self.offer_queued([task.queue])  # the agent has capacity again

            if outcome == TaskOutcome.escalate:
                queue = SUPERVISOR_QUEUE
                self.snapshot.priority = self.snapshot.priority.raised()
                self.record("escalated", f"to {queue} at priority {self.snapshot.priority.value}", by=agent)
                continue
            if outcome == TaskOutcome.transfer:
                queue = task.context.get("transfer_to", queue)
                self.record("transferred", f"to {queue}", by=agent)
                continue

            decided = self.decisions[task.task_id]
            if decided.refund is not None and not await self.refund(task, decided):
                # The promised refund did not happen: the reply would be untrue. Back to an agent.
                await self.publish()
                continue

            await self.notify_customer(task.reply or "", author=agent, key=task.task_id)
            self.sla_met(SlaTargetKind.first_response)
            if outcome == TaskOutcome.ask_customer:
                self.set_status(TicketStatus.waiting_customer, f"{agent} asked the customer")
                await self.publish()
                if await self.wait_for_customer(inp.policy.customer_reply_timeout):
                    continue  # the customer answered: back to an agent
                self.snapshot.resolution = "no reply from the customer"
                self.set_status(TicketStatus.resolved, f"no reply within {inp.policy.customer_reply_timeout}")
            else:
                self.snapshot.resolution = f"resolved by {agent}"
                self.set_status(TicketStatus.resolved, f"by {agent}")
            await self.publish()

            if await self.close_when_quiet(inp.policy.auto_close_after):
                break

        await self.finish()
        return self.snapshot

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
