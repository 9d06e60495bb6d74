"""The chaos suite: ticketflow under injected faults, killed processes and lost connections.
Each test is bounded in time (``pytest.mark.timeout``) and runs under ``make test``."""

from sandbox.testing import running_sandbox, sandbox  # noqa: F401
