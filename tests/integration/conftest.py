"""Real systems for the integration tests: the sandbox services on loopback, the real Temporal
dev server (``dev_env``) and a worker running the real ``SystemActivities``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.systems import SystemActivities, build_system_activities
from policies import MODEL_PATH, POLICY_PATH, Authorizer
from sandbox.run import Sandbox
from sandbox.testing import running_sandbox, sandbox, unused_port  # noqa: F401
from settings import Settings

# Short, so a hanging system costs the tests seconds, not the default ten; not so short that
# a sandbox ERP answering slowly on a loaded test process (it shares its GIL) looks down.
CONNECTOR_TIMEOUT = 2.5
# The people who may refund, kept beside the activity unit tests.
PEOPLE = Path(__file__).resolve().parents[1] / "activities" / "people.csv"


def sandbox_settings(sb: Sandbox, **overrides: Any) -> Settings:
    """Settings a deployment would have for the sandbox; an override of ``None`` leaves a
    system unconfigured."""
    values: dict[str, Any] = dict(
        orders_url=sb.urls["erp"], orders_username=sb.erp_username, orders_password=SecretStr(sb.erp_password),
        logistics_url=sb.urls["carrier"], logistics_api_key=SecretStr(sb.api_key),
        helpdesk_url=sb.urls["helpdesk"], helpdesk_api_key=SecretStr(sb.api_key),
        messaging_url=sb.urls["messaging"], messaging_api_key=SecretStr(sb.api_key),
        connector_timeout=CONNECTOR_TIMEOUT,
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture(scope="session")
def refund_policy_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("policy") / "policy.csv"
    path.write_text(POLICY_PATH.read_text() + PEOPLE.read_text())
    return path


@pytest.fixture
async def systems_worker(
    dev_env: WorkflowEnvironment, task_queue: str, sandbox: Sandbox, refund_policy_path: Path,
) -> AsyncIterator[Callable[..., Any]]:
    """``await systems_worker(workflows, helpdesk_url=None)``: a worker on ``task_queue`` with
    the given workflows and the real activities, configured for the sandbox (plus
    overrides); stopped after the test."""
    async with AsyncExitStack() as stack:
        async def start(workflows: list[type], **overrides: Any) -> SystemActivities:
            acts = build_system_activities(sandbox_settings(sandbox, **overrides),
                                           authorizer=Authorizer.from_files(MODEL_PATH, refund_policy_path))
            stack.callback(acts.close)
            executor = stack.enter_context(ThreadPoolExecutor(max_workers=16, thread_name_prefix="activity"))
            await stack.enter_async_context(Worker(
                dev_env.client, task_queue=task_queue, workflows=workflows, activities=acts.activities(),
                activity_executor=executor, max_concurrent_activities=16,
            ))
            return acts

        yield start
