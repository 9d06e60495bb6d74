import pytest

from connectors.registry import (
    ConnectorConfig,
    build_logistics_provider,
    build_messaging_channel,
    build_order_system,
    build_ticket_system,
)
from sandbox.run import Sandbox
from sandbox.testing import running_sandbox, sandbox, unused_port  # noqa: F401


IMPLEMENTATION = {"erp": "soap", "carrier": "rest", "helpdesk": "rest", "messaging": "rest"}


@pytest.fixture
def connector(sandbox: Sandbox):
    """``connector("carrier", timeout_seconds=0.5)``: a client for one sandbox service, built
    the way the worker builds it, closed after the test."""
    built = []

    def make(service: str, **overrides):
        credentials = ({"username": sandbox.erp_username, "password": sandbox.erp_password} if service == "erp"
                       else {"api_key": sandbox.api_key})
        config = ConnectorConfig(**{
            "implementation": IMPLEMENTATION[service],
            "base_url": sandbox.urls[service],
            "timeout_seconds": 2.0,
            **credentials,
            **overrides,
        })
        builder = {"erp": build_order_system, "carrier": build_logistics_provider,
                   "helpdesk": build_ticket_system, "messaging": build_messaging_channel}[service]
        client = builder(config)
        built.append(client)
        return client

    yield make
    for client in built:
        client.close()
