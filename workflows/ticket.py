"""The general customer-service case: one workflow per ticket, id ``ticket-<id>``."""

from __future__ import annotations

from temporalio import workflow

from workflows.case import SUPERVISOR_QUEUE, CaseWorkflow

with workflow.unsafe.imports_passed_through():
    from models.task import TaskOutcome
    from models.ticket import TicketInput, TicketSnapshot, TicketStatus


def workflow_id_for(ticket_id: str) -> str:
    return f"ticket-{ticket_id}"


@workflow.defn
class TicketWorkflow(CaseWorkflow):
    """Open the ticket, hand it to an agent, carry out the agent's decision, and close it
    once the customer has been quiet for the configured period after resolution."""

    @workflow.run
    async def run(self, inp: TicketInput) -> TicketSnapshot:
        self.open(inp)
        await self.publish()
        queue, priority = inp.department, inp.priority

        while True:
            task = await self.human_task(queue=queue, priority=priority)
            outcome, agent = task.outcome, task.assignee or "agent"

            if outcome == TaskOutcome.escalate:
                queue, priority = SUPERVISOR_QUEUE, priority.raised()
                self.snapshot.priority = priority
                self.record("escalated", f"to {queue} at priority {priority.value}", by=agent)
                continue
            if outcome == TaskOutcome.transfer:
                queue = task.context.get("transfer_to", queue)
                self.record("transferred", f"to {queue}", by=agent)
                continue

            await self.notify_customer(task.reply or "", author=agent, key=task.task_id)
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

        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.snapshot
