import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from cli.embedded import temporal_test_server


@pytest.fixture
async def fresh_time_env():
    """A time-skipping server of the test's own: skipped time is global to a server, so a
    workflow left waiting by one test must not see (or stall) another test's clock."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=temporal_test_server()
    )
    yield env
    await env.shutdown()
