"""`ticketflow up` run as a person runs it, for the tests that start, stop and kill it (and
bench/console.py, which measures it)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 180  # the first start creates the databases and loads the FAQ model
STOP_TIMEOUT = 60
READY = "Ctrl-C stops everything"  # the last line `up` prints once all is running


def free_ports(n: int) -> int:
    """The first of `n` consecutive loopback ports nothing listens on."""
    for _ in range(200):
        base = random.randint(20_000, 40_000)
        socks = []
        try:
            for port in range(base, base + n):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError(f"no {n} consecutive free ports")


class Up:
    """One `ticketflow up` process with its own data directory and ports."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        base = free_ports(8)
        self.api_port, temporal, ui, self.sandbox_port = base, base + 1, base + 2, base + 4
        self.data_dir, self.log = data_dir, log
        self.worker_metrics = f"127.0.0.1:{base + 3}"
        env = {k: v for k, v in os.environ.items()
               if k not in ("TICKETFLOW_DATABASE_URL", "TICKETFLOW_TEMPORAL_ADDRESS", "TICKETFLOW_PAYLOAD_KEYS",
                            "TICKETFLOW_PAYLOAD_KEY_FILE")}
        # As a newcomer runs it: payloads encrypted, with the key `up` makes on its first start.
        self.env = {**env, "TICKETFLOW_PAYLOAD_ENCRYPTION": "true", "TICKETFLOW_DATA_DIR": str(data_dir), "TICKETFLOW_API_PORT": str(self.api_port),
                    "TICKETFLOW_TEMPORAL_PORT": str(temporal), "TICKETFLOW_TEMPORAL_UI_PORT": str(ui),
                    "TICKETFLOW_SANDBOX_PORT": str(self.sandbox_port), "HF_HUB_OFFLINE": "1",
                    "TICKETFLOW_WORKER_METRICS_ADDRESS": self.worker_metrics,
                    # the FAQ model's ONNX export is made once for the whole suite, not per stack
                    "TICKETFLOW_FAQ_MODEL_CACHE_DIR": env.get("TICKETFLOW_FAQ_MODEL_CACHE_DIR",
                                                              str(ROOT / "var" / "faq-models"))}
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def _launch(self) -> tuple[int, float]:
        offset = self.log.stat().st_size if self.log.exists() else 0
        # its own process group, as in a terminal: Ctrl-C reaches `up` and the Temporal server
        self.proc = subprocess.Popen([sys.executable, "-m", "cli.main", "up"], cwd=ROOT, env=self.env,
                                     stdout=self.log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
        return offset, time.monotonic() + START_TIMEOUT

    def _ready(self, offset: int, deadline: float) -> bool:
        assert self.proc is not None
        if READY in self.log.read_text()[offset:]:
            return True
        assert self.proc.poll() is None, f"`ticketflow up` exited with {self.proc.returncode}:\n{self.output()}"
        assert time.monotonic() < deadline, f"`ticketflow up` did not come up:\n{self.output()}"
        return False

    async def start(self) -> None:
        started = self._launch()
        while not self._ready(*started):
            await asyncio.sleep(0.2)

    def start_blocking(self) -> None:
        """`start` for code that runs no event loop of its own (the browser tests)."""
        started = self._launch()
        while not self._ready(*started):
            time.sleep(0.2)

    async def interrupt(self) -> int:
        """Ctrl-C, as a terminal sends it; the exit code."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGINT)
        deadline = time.monotonic() + STOP_TIMEOUT
        while self.proc.poll() is None:
            assert time.monotonic() < deadline, f"`ticketflow up` ignored Ctrl-C:\n{self.output()}"
            await asyncio.sleep(0.2)
        return self.proc.returncode

    async def stop(self) -> str:
        """Ctrl-C, then SIGKILL to the group if it has not stopped within STOP_TIMEOUT s
        (for a run that must end either way, a benchmark's); what happened."""
        if self.proc is None or self.proc.poll() is not None:
            return "had already exited"
        try:
            code = await self.interrupt()
        except AssertionError:
            self.kill()
            return "ignored Ctrl-C: killed"
        self.kill()  # anything of the group left behind
        return f"stopped by Ctrl-C (exit code {code})"

    def kill(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):  # nothing left of the group
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def output(self) -> str:
        return self.log.read_text()[-6000:] if self.log.exists() else ""

    def tokens(self) -> dict[str, str]:
        return json.loads((self.data_dir / "demo-tokens.json").read_text())

    def passwords(self) -> dict[str, str]:
        """The demo sign-ins `up` printed."""
        return json.loads((self.data_dir / "demo-passwords.json").read_text())
