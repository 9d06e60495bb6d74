"""The FAQ bot: ask it, and let it answer the customer when it is sure.

Its decision, confidence, entry and index version go into the history and the case's
timeline; its suggestions go into the case's context, where the agent's task shows them.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from workflows.steps import metrics
from workflows.steps.conversation import Conversation

with workflow.unsafe.imports_passed_through():
    from models.case import FaqContext, FaqSuggestion
    from models.faq import FaqDecision, FaqResult, FaqTicketQuery
    from models.faq_template import FaqAnswerContext
    from models.ticket import CustomerFeedback, TicketStatus

# The FAQ bot is a suggestion, never a blocker: a slow or absent FAQ worker hands the
# case to an agent after a few tries.
FAQ = dict(
    start_to_close_timeout=timedelta(seconds=30),
    schedule_to_close_timeout=timedelta(minutes=2),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3,
                             non_retryable_error_types=["InvalidRequest"]),
)
FAQ_BOT = "faq-bot"


class FaqBot(Conversation):
    def __init__(self) -> None:
        super().__init__()
        self._feedback: CustomerFeedback | None = None

    async def ask_faq_bot(self, text: str) -> FaqResult | None:
        """What the FAQ bot makes of `text`; None when the policy turns it off or it is down."""
        if not self.input.policy.faq_enabled:
            return None
        query = FaqTicketQuery(text=text[:5000], language=self.input.language.split("-")[0],
                               context=self.answer_context())
        try:
            result: FaqResult = await workflow.execute_activity(
                "answer_faq", query, result_type=FaqResult, task_queue=self.input.policy.faq_task_queue, **FAQ
            )
        except ActivityError as err:
            self.record("faq_unavailable", str(err.cause or err))
            metrics.count("faq_decisions", decision="unavailable")
            return None
        metrics.count("faq_decisions", decision=result.decision.value)
        best = result.best
        why = f"; {result.escalation_reason}" if result.escalation_reason else ""
        self.record(
            "faq_answer" if result.decision == FaqDecision.answer else "faq_no_answer",
            (f"{best.entry_id}: confidence {result.confidence if result.confidence is not None else 'n/a'}"
             f" vs threshold {result.threshold}{why}") if best else "no matching entry",
            entry_id=best.entry_id if best else None, confidence=result.confidence, threshold=result.threshold,
            index_version=result.index_version, decision=result.decision.value,
            **({"reason": result.escalation_reason, "missing_fields": result.missing_fields} if why else {}),
        )
        self.snapshot.context["faq"] = FaqContext(
            index_version=result.index_version,
            decision=result.decision.value,
            confidence=result.confidence,
            suggestions=[FaqSuggestion(entry_id=m.entry_id, question=m.question, score=round(m.score, 4),
                                       semantic_score=round(m.semantic_score, 4),
                                       lexical_score=round(m.lexical_score, 4))
                         for m in ([best] if best else []) + list(result.alternatives)],
            answer=result.answer,
            reason=result.escalation_reason,
        ).model_dump(mode="json")
        return result

    def answer_context(self) -> FaqAnswerContext | None:
        """The facts a templated answer may use: the gathered customer 360 of the ticket's
        order. None when the case gathered nothing; a template then does not answer."""
        if self.customer360 is None:
            return None
        return FaqAnswerContext.from_customer360(self.customer360, self.snapshot.order_id)

    async def bot_answers(self, text: str) -> bool:
        """Let the bot answer `text` if it is sure. True when that settled the case: the
        customer said the answer helped, and stayed quiet until the case closed. False: the
        bot was not sure, or the customer was not helped (said so, wrote again, or said
        nothing); an agent takes over."""
        faq = await self.ask_faq_bot(text)
        if faq is None or faq.decision != FaqDecision.answer or not faq.answer:
            return False
        # From here on the customer may answer: a verdict or a message that arrives while the
        # answer is sent or the status shown counts (the reset used to come after, and lost it).
        self._feedback, self._unanswered_messages = None, 0
        await self.notify_customer(faq.answer, author=FAQ_BOT, key="faq")
        self.set_status(TicketStatus.bot_answered, f"FAQ entry {faq.best.entry_id if faq.best else '?'}")
        await self.publish()
        verdict = await self.wait_for_feedback(self.input.policy.bot_answer_timeout)
        self.record("faq_feedback", verdict)
        if verdict != "helpful":
            return False
        await self.resolve("answered by the FAQ bot", "the customer confirmed the FAQ answer helped")
        return await self.close_when_quiet(self.input.policy.auto_close_after)

    @workflow.signal
    def customer_feedback(self, feedback: CustomerFeedback) -> None:
        self._feedback = feedback

    async def wait_for_feedback(self, timeout: timedelta) -> str:
        """After an automatic answer: "helpful", "not_helpful", "follow_up" (the customer
        wrote again) or "timeout"; what arrived since the answer went out counts."""
        try:
            await workflow.wait_condition(
                lambda: self._feedback is not None or self._unanswered_messages > 0, timeout=timeout
            )
        except TimeoutError:
            return "timeout"
        if self._feedback is not None:
            return "helpful" if self._feedback.helpful else "not_helpful"
        self._unanswered_messages = 0
        return "follow_up"
