"""pytest fixtures for tests that need the sandbox systems. Import them into a conftest::

    from sandbox.testing import running_sandbox, sandbox, unused_port  # noqa: F401

``running_sandbox`` is one sandbox per session on free ports, in a child process of its own
(so a busy test process does not slow its answers); ``sandbox`` is the same one, reset to
seeded data and no faults after each test.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from sandbox.run import Sandbox, start_sandbox_process


@pytest.fixture(scope="session")
def running_sandbox() -> Iterator[Sandbox]:
    with start_sandbox_process() as started:
        yield started


@pytest.fixture
def sandbox(running_sandbox: Sandbox) -> Iterator[Sandbox]:
    yield running_sandbox
    running_sandbox.reset()


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
