from sandbox.testing import running_sandbox, sandbox, unused_port  # noqa: F401
