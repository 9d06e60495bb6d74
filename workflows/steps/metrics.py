"""What cases count for the operations dashboard: cases opened and closed, tasks created,
claimed and completed, SLA warnings and breaches, the FAQ bot's decisions.

Counted through the workflow's metric meter, which Temporal keeps replay-safe: a case
replayed on another worker (a restart, an evicted cache) counts nothing twice. The worker
exports them with the Temporal SDK's own metrics (``TICKETFLOW_WORKER_METRICS_ADDRESS``);
each worker counts what it ran, and Prometheus sums the workers. Names and labels are listed
in ``NAMES`` for the dashboard and the README.
"""

from __future__ import annotations

from temporalio import workflow

PREFIX = "ticketflow_"
NAMES = {
    "cases_opened": "Cases opened, by case type and channel",
    "cases_closed": "Cases that reached resolved or closed, by case type and status",
    "tasks_created": "Agent tasks created, by case type, queue and kind",
    "tasks_claimed": "Agent tasks claimed or assigned, by queue",
    "tasks_completed": "Agent tasks completed, by queue and outcome",
    "sla_warnings": "SLA targets that reached their warning point, by target and department",
    "sla_breaches": "SLA targets breached, by target and department",
    "faq_decisions": "FAQ bot decisions on a customer's question, by decision",
}


def count(name: str, **labels: str) -> None:
    """Add one to the counter ``name`` (a key of ``NAMES``) with these labels."""
    meter = workflow.metric_meter()
    meter.create_counter(PREFIX + name, NAMES[name]).add(1, {k: str(v) for k, v in labels.items()})
