import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from sandbox.run import start_sandbox

ROOT = Path(__file__).parents[2]


def test_taken_port_is_reported_and_nothing_is_left_running(running_sandbox):
    taken = int(running_sandbox.urls["helpdesk"].rpartition(":")[2])
    with pytest.raises(RuntimeError, match="helpdesk could not start"):
        start_sandbox(ports={"helpdesk": taken})


def test_unknown_service_name_is_refused():
    with pytest.raises(ValueError, match="crm"):
        start_sandbox(ports={"crm": 0})


def test_stopped_sandbox_refuses_connections():
    sandbox = start_sandbox()
    url = sandbox.urls["carrier"]
    assert httpx.get(url + "/_admin/faults").status_code == 200
    sandbox.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/_admin/faults")


def test_python_m_sandbox_serves_until_interrupted():
    ports = ["--erp-port", "0", "--carrier-port", "0", "--helpdesk-port", "0", "--messaging-port", "0"]
    proc = subprocess.Popen([sys.executable, "-m", "sandbox", *ports], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        lines = [proc.stdout.readline() for _ in range(5)]
        urls = dict(line.split() for line in lines[1:5])
        assert set(urls) == {"erp", "carrier", "helpdesk", "messaging"}
        assert httpx.get(urls["carrier"] + "/_admin/faults").status_code == 200
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "sandbox stopped" in out
