"""The FAQ bot's activities: answer a customer's question from the knowledge base, and
publish a new index version after the knowledge base changed.

Both run on their own task queue (``TICKETFLOW_FAQ_TASK_QUEUE``), polled by workers that
hold the embedding model, so that hosts which only run ticket workflows never load it. The
model loads once per worker process, in the background as the worker starts.

Answers use the index version the query pins (a ticket keeps the version it started with),
else the current one, read from the database at most every two seconds: a version the API
publishes is in use on every worker host within seconds, without a restart.
"""

from __future__ import annotations

import logging
from concurrent.futures import Executor

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from faq.encoder import FaqModelError, limit_model_threads, load_encoder
from faq.index import FaqIndexError
from faq.knowledge_base import PublishedIndexes, publish, record_publish_error
from models.db import Database
from models.faq import FaqDecision, FaqPublication, FaqPublishRequest, FaqQuery, FaqResult, FaqTicketQuery
from models.faq_template import is_template, render
from settings import Settings

log = logging.getLogger(__name__)

# Error types a caller can match.
FAQ_MODEL_MISSING = "FaqModelMissing"
FAQ_INDEX_UNREADABLE = "FaqIndexUnreadable"


class FaqActivities:
    def __init__(self, db: Database, *, indexes: PublishedIndexes | None = None, model_threads: int = 1) -> None:
        self.db = db
        self.indexes = indexes or PublishedIndexes(db)
        self.model_threads = model_threads

    def load_model(self) -> None:
        """Load the embedding model now rather than on the first question (logs its progress)."""
        limit_model_threads(self.model_threads)  # first: a model loaded later takes it too
        try:
            load_encoder()
        except FaqModelError as exc:
            log.error("the FAQ bot cannot answer on this worker: %s", exc)

    @activity.defn(name="answer_faq")
    def answer_faq(self, query: FaqTicketQuery) -> FaqResult:
        """The best entry, its calibrated confidence, the alternatives and the decision.

        An empty knowledge base, or an index without calibration, escalates every question.
        A pinned version that is no longer stored is answered by the current one; the
        result names the version that answered. A templated answer is rendered with the
        ticket's facts (``query.context``); one that needs a fact the ticket lacks is not
        sent: the result escalates, keeps the template as the agent's suggestion, and says
        which fields were missing.
        """
        try:
            result = self.indexes.answer(query)
        except FaqModelError as exc:
            raise ApplicationError(str(exc), type=FAQ_MODEL_MISSING, non_retryable=True) from exc
        except FaqIndexError as exc:
            raise ApplicationError(str(exc), type=FAQ_INDEX_UNREADABLE, non_retryable=True) from exc
        return personalised(result, query)

    @activity.defn(name="publish_faq_index")
    def publish_faq_index(self, request: FaqPublishRequest) -> FaqPublication:
        """Build, calibrate and publish an index of the knowledge base's newest revision
        (at least ``request.kb_revision``); nothing to do if that is published already."""
        try:
            return publish(self.db, indexes=self.indexes)
        except FaqModelError as exc:
            self._record_error(request.kb_revision, str(exc))
            raise ApplicationError(str(exc), type=FAQ_MODEL_MISSING, non_retryable=True) from exc
        except Exception as exc:
            self._record_error(request.kb_revision, f"{type(exc).__name__}: {exc}")
            raise

    def _record_error(self, revision: int, message: str) -> None:
        """Show the failure in GET /faq/index until a later publish succeeds."""
        try:
            self.db.call(record_publish_error, revision, message)
        except Exception:  # noqa: BLE001 - the original failure is the one to report
            log.exception("could not record the FAQ publishing failure: %s", message)


def personalised(result: FaqResult, query: FaqQuery) -> FaqResult:
    """`result` with its templated answer rendered for the ticket, or escalated if it cannot be.

    Rendering happens here, in the activity, so the text a customer got is in the workflow's
    history and a replay never renders again. A query without facts (an older ticket, or
    one whose case gathered nothing) renders no template."""
    if result.answer is None or not is_template(result.answer):
        return result
    rendered = render(result.answer, query.context if isinstance(query, FaqTicketQuery) else None)
    if rendered.text is not None:
        return result.model_copy(update={"answer": rendered.text})
    return result.model_copy(update={
        "decision": FaqDecision.escalate, "missing_fields": rendered.missing_fields,
        "escalation_reason": rendered.reason,
    })


def build_faq_worker(
    client: Client,
    settings: Settings,
    db: Database,
    executor: Executor,
    task_queue: str | None = None,
    *,
    load_model: bool = True,
) -> Worker:
    """A worker polling the FAQ task queue (``task_queue``, default the setting
    ``faq_task_queue``). With ``load_model`` the embedding model starts loading on the
    executor right away, so the first question does not wait for it."""
    activities = FaqActivities(db, model_threads=settings.faq_model_threads)
    if load_model:
        executor.submit(activities.load_model)
    queue = task_queue or settings.faq_task_queue
    log.info("FAQ worker polling task queue %s", queue)
    return Worker(
        client,
        task_queue=queue,
        activities=[activities.answer_faq, activities.publish_faq_index],
        activity_executor=executor,
        max_concurrent_activities=settings.activity_threads,
    )
