"""`ticketflow sandbox`, run the way the README says, serves the four systems until Ctrl-C."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def _free_ports(count: int) -> int:
    """The first of `count` consecutive ports nobody listens on."""
    for _ in range(100):
        base = random.randint(20_000, 60_000)
        try:
            for port in range(base, base + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError("no free ports")


def test_ticketflow_sandbox_serves_until_ctrl_c():
    base = _free_ports(4)
    env = {**os.environ, "TICKETFLOW_SANDBOX_PORT": str(base)}
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "sandbox"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        first = proc.stdout.readline()  # blocks until it is up, or ends at once if it failed
        assert first.startswith("sandbox running"), first + proc.stdout.read()
        assert httpx.get(f"http://127.0.0.1:{base + 1}/health", timeout=5).status_code < 500  # the carrier
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0 and "sandbox stopped" in out and "Traceback" not in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
