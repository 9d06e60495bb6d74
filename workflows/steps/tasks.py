"""Human tasks: put work in an agents' queue, route it, and wait for the agent's decision.

:meth:`HumanTasks.work_task` is the step a case calls: it creates the task, routes it, waits
until an agent completes it, and returns the completed task. Escalating and transferring
are part of the step: the task is followed by a new one in the supervisors' queue (priority
raised) or in the queue the agent chose, and the step returns only with a decision the case
acts on. What agents do to a task arrives as updates (``task_updates.py``); every change of
a task goes through :meth:`HumanTasks.transition`.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from workflows.steps import metrics
from workflows.steps.base import CaseBase

with workflow.unsafe.imports_passed_through():
    from models.auth import AccessDecision
    from models.enums import Priority
    from models.routing import OfferRequest, OfferResult, RouteDecision, RouteRequest
    from models.task import SUPPORT_OUTCOMES, CompleteTask, TaskOutcome, TaskSnapshot, TaskStatus
    from models.ticket import TicketStatus
    from routing.models import TaskRequirements
    from sla.policy import CustomerTier

# Routing decides from the read model; if it is down, agents still claim by hand.
ROUTING = dict(
    start_to_close_timeout=timedelta(seconds=10),
    schedule_to_close_timeout=timedelta(minutes=2),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=20)),
)
SUPERVISOR_QUEUE = "supervisors"
HANDLE_TICKET = "handle_ticket"


class HumanTasks(CaseBase):
    def __init__(self) -> None:
        super().__init__()
        self.decisions: dict[str, CompleteTask] = {}  # completions the case has yet to act on
        self._task_count = 0

    async def work_task(
        self,
        *,
        queue: str,
        kind: str = HANDLE_TICKET,
        priority: Priority | None = None,
        context: BaseModel | dict[str, Any] | None = None,
        allowed_outcomes: list[str] | None = None,
        refund_on: dict[str, Decimal] | None = None,
        task_id: str | None = None,
    ) -> TaskSnapshot:
        """An agent decides: returns the completed task, whose ``outcome`` and ``reply`` say
        what they decided (and ``self.decisions[task.task_id]`` the whole completion).

        `priority` defaults to the case's. `context` is what the agent sees beside the case.
        `refund_on` names outcomes that move money and the amount: the API checks the agent's
        refund right and limit before it accepts one. `task_id`: a task carried over from
        the run before, to wait on rather than create. An escalation or a transfer is
        followed here by a task in the next queue."""
        while True:
            if task_id is not None and task_id in self.tasks:
                task = await self.wait_for_task(self.tasks[task_id], route=False)
            else:
                task = await self.human_task(queue=queue, kind=kind, priority=priority or self.snapshot.priority,
                                             context=context, allowed_outcomes=allowed_outcomes, refund_on=refund_on)
            self.capacity_freed(task)
            by = task.assignee or "agent"
            if task.outcome == TaskOutcome.escalate:
                queue = SUPERVISOR_QUEUE
                self.snapshot.priority = priority = self.snapshot.priority.raised()
                self.record("escalated", f"to {queue} at priority {self.snapshot.priority.value}", by=by)
            elif task.outcome == TaskOutcome.transfer:
                decided = self.decisions.get(task.task_id)
                queue = decided.queue if decided is not None and decided.queue else queue
                self.record("transferred", f"to {queue}", by=by)
            else:
                return task
            self.decisions.pop(task.task_id, None)
            task_id = None
            if self.step is not None:  # a run that continues as new starts the next task afresh
                self.step = self.step.model_copy(update={"queue": queue, "task_id": None})
                await self.continue_as_new_if_long()

    async def human_task(
        self,
        *,
        queue: str,
        priority: Priority,
        kind: str = HANDLE_TICKET,
        context: BaseModel | dict[str, Any] | None = None,
        allowed_outcomes: list[str] | None = None,
        refund_on: dict[str, Decimal] | None = None,
    ) -> TaskSnapshot:
        """One task in `queue`, waited on until an agent completes it, whatever the outcome
        (:meth:`work_task` is the step; this is its single task)."""
        s = self.snapshot
        self._task_count += 1
        extra = context.model_dump(mode="json") if isinstance(context, BaseModel) else dict(context or {})
        if refund_on:
            extra["refund_on"] = {outcome: str(amount) for outcome, amount in refund_on.items()}
        task = TaskSnapshot(
            task_id=f"{s.ticket_id}-t{self._task_count}",
            ticket_id=s.ticket_id,
            workflow_id=s.workflow_id,
            case_type=s.case_type,
            kind=kind,
            queue=queue,
            priority=priority,
            created_at=workflow.now(),
            allowed_outcomes=allowed_outcomes or list(SUPPORT_OUTCOMES),
            context={"subject": s.subject, "order_id": s.order_id, **extra},
            skills=list(self.input.skills),
            language=self.input.language,
            customer_tier=self.customer_tier.value,
            due_at=self.sla.due_at(),
        )
        self.tasks[task.task_id] = task
        self.set_status(TicketStatus.awaiting_agent)
        self.record("task_created", f"{kind} in queue {queue}", task_id=task.task_id, priority=priority.value)
        metrics.count("tasks_created", case_type=s.case_type, queue=queue, kind=kind)
        await self.publish_task(task)
        await self.publish()
        return await self.wait_for_task(task, route=self.input.policy.auto_assign)

    async def transition(self, task: TaskSnapshot, kind: str, detail: str, *, case_status: TicketStatus | None = None,
                         data: dict[str, Any] | None = None, authorized: list[AccessDecision] | None = None,
                         publish: bool = True, **changes: Any) -> TaskSnapshot:
        """Apply `changes` to `task`, move the case to `case_status` if given, record `kind`
        on the timeline (and the `authorized` decisions behind it), show both in the read
        model (the case only if `publish`), and wake the steps that wait on the task."""
        before = task.status
        self.change_task(task, **changes)
        if task.status != before and task.status == TaskStatus.claimed:
            metrics.count("tasks_claimed", queue=task.queue)
        elif task.status != before and task.status == TaskStatus.completed:
            metrics.count("tasks_completed", queue=task.queue, outcome=task.outcome or "")
        if case_status is not None:
            self.set_status(case_status)
        self.record(kind, detail, task_id=task.task_id, **(data or {}))
        for decision in authorized or []:
            self.record_decision(decision, task.task_id)
        await self.publish_task(task)
        if publish:
            await self.publish()
        self._task_events += 1
        return task

    async def wait_for_task(self, task: TaskSnapshot, *, route: bool) -> TaskSnapshot:
        """Wait until an agent completes `task` (routing it first if `route`); releases a
        claim nobody works on. A long history continues as new from here."""
        policy = self.input.policy
        while task.status != TaskStatus.completed:
            if self.step is not None:
                self.step = self.step.model_copy(update={"task_id": task.task_id})
            if task.status == TaskStatus.open:
                if route:
                    await self._route(task)
                route = policy.auto_assign
                if task.status == TaskStatus.open:
                    seen = self._task_events  # an escalation may move it to another queue
                    await workflow.wait_condition(
                        lambda: task.status != TaskStatus.open or self._task_events != seen
                        or self.history_is_long()
                    )
                    await self.continue_as_new_if_long()
                continue
            # Claimed: any action on the task (a note, an update) counts as work on it.
            seen = self._task_events
            try:
                await workflow.wait_condition(
                    lambda: task.status != TaskStatus.claimed or self._task_events != seen
                    or self.history_is_long(),
                    timeout=policy.stale_claim_after,
                )
            except TimeoutError:
                holder = task.assignee
                await self.transition(task, "task_released", f"claim by {holder} went stale",
                                      case_status=TicketStatus.awaiting_agent, data={"agent": holder},
                                      status=TaskStatus.open, assignee=None, claimed_at=None,
                                      routing=f"released: {holder} left it untouched for {policy.stale_claim_after}")
                self.offer_queued([task.queue])
            await self.continue_as_new_if_long()
        return task

    async def _route(self, task: TaskSnapshot) -> None:
        """Ask the router for an agent. Nobody fitting leaves the task queued; it is offered
        again when someone frees up. A router outage is recorded, not fatal: agents can
        still claim from the queue."""
        req = RouteRequest(
            ticket_id=task.ticket_id, workflow_id=task.workflow_id,
            requirements=TaskRequirements(
                task_id=task.task_id, queue=task.queue, skills=frozenset(task.skills), language=task.language,
                priority=task.priority, tier=CustomerTier(task.customer_tier), queued_at=task.created_at,
            ),
        )
        try:
            decision: RouteDecision = await workflow.execute_activity(
                "route_task", req, result_type=RouteDecision, **ROUTING
            )
        except ActivityError as err:
            self.record("routing_failed", str(err.cause or err), task_id=task.task_id)
            return
        if task.status != TaskStatus.open:  # claimed by hand while the router thought
            await self.publish_task(task)
            return
        if decision.agent_id is None:
            await self.transition(task, "task_queued", decision.reason, data={"code": decision.code}, publish=False,
                                  routing=decision.reason)
            return
        await self.transition(task, "task_assigned", f"to {decision.agent_id}: {decision.reason}",
                              case_status=TicketStatus.in_progress,
                              data={"agent": decision.agent_id, "code": decision.code},
                              status=TaskStatus.claimed, assignee=decision.agent_id, claimed_at=workflow.now(),
                              routing=decision.reason)

    def capacity_freed(self, task: TaskSnapshot) -> None:
        """The agent who completed `task` can take another: offer them what waits."""
        self.offer_queued([task.queue])

    def offer_queued(self, queues: list[str]) -> None:
        """Capacity may have freed up in `queues`: let the router hand out waiting tasks.

        Runs in the background: offering touches other cases, and this one (its reply to the
        customer, say) must not wait on them. ``finish`` collects it."""
        if not self.input.policy.auto_assign:
            return

        async def offer() -> None:
            try:
                await workflow.execute_activity("offer_queued", OfferRequest(queues=queues),
                                                result_type=OfferResult, **ROUTING)
            except ActivityError as err:
                self.record("routing_failed", f"offering queued tasks: {err.cause or err}")

        self._background.append(asyncio.create_task(offer()))
