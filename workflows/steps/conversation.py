"""The customer's side of the conversation: their messages, and the waits for them.

Messages arrive as the ``customer_message`` signal (a redelivered one is dropped by its id).
The steps here own the status changes that go with waiting: :meth:`Conversation.ask_customer`
puts the case in ``waiting_customer`` (the SLA clock pauses) and back in ``in_progress``
when the answer comes; :meth:`Conversation.close_when_quiet` closes a resolved case or
reopens it.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from workflows.steps.notify import Notify

with workflow.unsafe.imports_passed_through():
    from models.ticket import ConversationEntry, CustomerMessage, TicketInput, TicketStatus


class Conversation(Notify):
    def __init__(self) -> None:
        super().__init__()
        self._seen_message_ids: dict[str, None] = {}  # ordered: the latest are carried across runs
        self._unanswered_messages = 0

    def opened(self, inp: TicketInput) -> None:
        super().opened(inp)
        if inp.opening_message_id:  # the channel may deliver the opening message again
            self._seen_message_ids[inp.opening_message_id] = None

    def customer_answered(self) -> None:
        self._unanswered_messages = 0

    @workflow.signal
    async def customer_message(self, msg: CustomerMessage) -> None:
        # Signals can arrive before run() has opened the case (signal-with-start, replays).
        await workflow.wait_condition(lambda: self.state is not None)
        if msg.message_id in self._seen_message_ids:  # the channel delivered it twice
            return
        self._seen_message_ids[msg.message_id] = None
        s = self.snapshot
        s.conversation.append(
            ConversationEntry(id=msg.message_id, direction="in", author=s.customer_id, text=msg.text,
                              at=msg.sent_at or workflow.now())
        )
        self._unanswered_messages += 1
        self.record("customer_message", msg.text[:120], message_id=msg.message_id)
        await self.publish()

    async def wait_for_customer(self, timeout: timedelta) -> bool:
        """Wait durably for a new customer message. True if one came, False on timeout.
        A long history continues as new from here (the wait's end carried across)."""
        until = workflow.now() + timeout
        while True:
            try:
                await workflow.wait_condition(lambda: self._unanswered_messages > 0 or self.history_is_long(),
                                              timeout=until - workflow.now())
            except TimeoutError:
                return False
            if self._unanswered_messages > 0:
                self._unanswered_messages = 0
                return True
            if self.step is not None:
                self.step = self.step.model_copy(update={"until": until})
            await self.continue_as_new_if_long()

    def last_customer_message(self) -> str:
        return next((e.text for e in reversed(self.snapshot.conversation) if e.direction == "in"), "")

    async def ask_customer(self, text: str, timeout: timedelta, *, key: str, author: str) -> str | None:
        """Ask the customer `text` and wait for their answer: its text, or None if none came
        within `timeout`. The case waits on the customer meanwhile (its SLA clock paused)."""
        self._unanswered_messages = 0  # what the customer wrote before being asked is not the answer
        await self.notify_customer(text, author=author, key=f"ask-{key}")
        self.set_status(TicketStatus.waiting_customer, "asked the customer")
        await self.publish()
        if not await self.wait_for_customer(timeout):
            self.record("customer_silent", f"no answer within {timeout}")
            return None
        self.set_status(TicketStatus.in_progress, "the customer answered")
        return self.last_customer_message()

    async def close_when_quiet(self, quiet_period: timedelta, *, remaining: timedelta | None = None) -> bool:
        """After resolution: close once the customer stays quiet for `quiet_period` (or the
        `remaining` part of it, for a run that continues an earlier one's wait).
        Returns False (and reopens the case) if the customer writes first."""
        if not self._bounded:  # histories recorded before: messages until now were dropped here
            self._unanswered_messages = 0
        if await self.wait_for_customer(quiet_period if remaining is None else remaining):
            self.set_status(TicketStatus.awaiting_agent, "customer wrote after resolution")
            self.record("reopened")
            return False
        self.set_status(TicketStatus.closed, f"quiet for {quiet_period}")
        await self.publish()
        return True
