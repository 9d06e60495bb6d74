"""Bounded histories: a long case continues as a new run, and the new run takes it over.

A run continues as new once its history holds ``TicketPolicy.continue_as_new_after_events``
events (or Temporal suggests it sooner), at a point where the case knows its step
(``self.step``): waiting on a task, or on the customer. The new run gets the case's state,
its open tasks, the decisions not yet carried out, the SLA clock and the step with its
deadline (:class:`CaseCarry`); it keeps the latest conversation entries and timeline events,
and everything older stays in the read model and in the earlier runs' histories.

This part knows the state of every other part, because it is the one that moves it.
"""

from __future__ import annotations

from temporalio import workflow

from workflows.steps.base import CaseBase

with workflow.unsafe.imports_passed_through():
    from models.task import TaskStatus
    from models.ticket import CaseCarry, CaseStep, TicketInput

# What a new run keeps: this many of the latest conversation entries and timeline events,
# and this many customer message ids to drop redeliveries.
CARRIED_ENTRIES = 20
CARRIED_MESSAGE_IDS = 200


class Handover(CaseBase):
    def __init__(self) -> None:
        super().__init__()
        self._runs = 0

    def history_is_long(self) -> bool:
        """Time to continue as new: the run's history reached its bound, or Temporal
        suggests it. Only runs that know their step (``self.step``) can."""
        if not self._bounded or self.step is None or self._handing_over:
            return False
        info = workflow.info()
        return (info.get_current_history_length() >= self.input.policy.continue_as_new_after_events
                or info.is_continue_as_new_suggested())

    async def continue_as_new_if_long(self) -> None:
        """Continue as a new run from ``self.step`` if the history is long; else return.

        Background steps stop and handlers in progress finish first; handlers that run
        during the hand-over change the state without projecting it, and the new run
        projects what they changed."""
        if not self.history_is_long():
            return
        assert self.step is not None
        self._handing_over = True
        await self.sla.stop()
        for step in self._background:
            await step
        events = workflow.info().get_current_history_length()
        self.record("continued_as_new", f"run {self._runs + 2} continues the ticket after {events} events in run "
                                        f"{self._runs + 1}", step=self.step.name.value, events=events)
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self.input.model_copy(update={"carried": self._carry(self.step)}))

    def _carry(self, step: CaseStep) -> CaseCarry:
        s = self.snapshot
        window = s.model_copy(update={
            "conversation": s.conversation[-CARRIED_ENTRIES:],
            "timeline": s.timeline[-CARRIED_ENTRIES:],
            "conversation_offset": s.conversation_offset + max(0, len(s.conversation) - CARRIED_ENTRIES),
            "timeline_offset": s.timeline_offset + max(0, len(s.timeline) - CARRIED_ENTRIES),
        })
        # Entries not yet projected stay in the window.
        if window.conversation_offset > self._published_conversation:
            window.conversation = s.conversation[self._published_conversation - s.conversation_offset:]
            window.conversation_offset = self._published_conversation
        if window.timeline_offset > self._published_timeline:
            window.timeline = s.timeline[self._published_timeline - s.timeline_offset:]
            window.timeline_offset = self._published_timeline
        # open tasks, tasks changed during the hand-over, and the step's own task: it may
        # have been completed just now, its decision not yet carried out
        tasks = [t for t in self.tasks.values()
                 if t.status in (TaskStatus.open, TaskStatus.claimed) or t.task_id in self._unpublished_tasks
                 or t.task_id == step.task_id]
        decisions = getattr(self, "decisions", {})
        return CaseCarry(
            step=step, snapshot=window, tasks=tasks,
            unpublished_tasks=list(self._unpublished_tasks),
            decisions=[decisions[t.task_id] for t in tasks if t.task_id in decisions],
            task_count=getattr(self, "_task_count", 0),
            seen_message_ids=list(getattr(self, "_seen_message_ids", {}))[-CARRIED_MESSAGE_IDS:],
            unanswered_messages=getattr(self, "_unanswered_messages", 0), sla=self.sla.clock,
            tier_from_systems=self.tier_from_systems,
            published_conversation=self._published_conversation, published_timeline=self._published_timeline,
            published_revision=self._published_revision, published_context=self._published_context,
            runs=self._runs + 1,
        )

    def restore(self, inp: TicketInput, carry: CaseCarry) -> None:
        """Take over the state of the run before. Call it from the workflow's
        ``@workflow.init``: an update for a carried task can arrive before ``run`` starts."""
        self.input = inp.model_copy(update={"carried": None})  # so the next hand-over does not nest it
        self._bounded = True
        self.state = carry.snapshot
        self.tasks = {t.task_id: t for t in carry.tasks}
        self.decisions = {d.task_id: d for d in carry.decisions}
        self._task_count = carry.task_count
        self._seen_message_ids = dict.fromkeys(carry.seen_message_ids)
        self._unanswered_messages = carry.unanswered_messages
        self.tier_from_systems = carry.tier_from_systems
        self._published_conversation, self._published_timeline = carry.published_conversation, carry.published_timeline
        self._published_revision, self._published_context = carry.published_revision, carry.published_context
        self._unpublished_tasks = dict.fromkeys(carry.unpublished_tasks)
        self._runs = carry.runs
        self.step = carry.step
        self.sla.clock = carry.sla

    async def resume(self) -> CaseStep:
        """Carry on after :meth:`restore`: restart the SLA watcher, project what the run
        before left unprojected; returns the step to carry on with."""
        assert self.step is not None, "restore() runs first"
        self.sla.resume(self.sla.clock)
        for task_id in list(self._unpublished_tasks):
            del self._unpublished_tasks[task_id]
            await self.publish_task(self.tasks[task_id])
        if self.snapshot.revision != self._published_revision:
            await self.publish()
        return self.step
