"""Start the four sandbox systems, each a uvicorn server on its own thread.

    with start_sandbox() as sandbox:          # in this process; ports 0: the OS picks free ones
        sandbox.urls["carrier"]               # "http://127.0.0.1:41234"
        sandbox.set_faults("erp", fail_next=2)

    with start_sandbox_process() as sandbox:  # the same, in a child process of its own
        ...

``python -m sandbox`` starts them on the default ports (8101-8104) until Ctrl-C.
Everything binds to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from collections.abc import Mapping
from pathlib import Path
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp

from sandbox import carrier, erp, helpdesk, messaging
from sandbox.data import (
    DEFAULT_SEED,
    DEFAULT_WEBHOOK_SECRET,
    ERP_PASSWORD,
    ERP_USERNAME,
    SANDBOX_API_KEY,
    build_demo_data,
    default_now,
)

HOST = "127.0.0.1"
SERVICES = ("erp", "carrier", "helpdesk", "messaging")
DEFAULT_PORTS: dict[str, int] = {"erp": 8101, "carrier": 8102, "helpdesk": 8103, "messaging": 8104}
STARTUP_TIMEOUT_SECONDS = 15.0


@dataclass
class RunningServer:
    """One uvicorn server on a background thread."""

    name: str
    url: str
    server: uvicorn.Server
    thread: threading.Thread
    app: Any

    def request_stop(self) -> None:
        injector = getattr(getattr(self.app, "state", None), "injector", None)
        if injector is not None:
            injector.release_held()  # or uvicorn's graceful shutdown waits for them
        self.server.should_exit = True

    def stop(self, timeout: float = 10.0) -> None:
        self.request_stop()
        self.thread.join(timeout)


def serve_in_thread(app: ASGIApp, *, name: str, port: int = 0, host: str = HOST,
                    startup_timeout: float = STARTUP_TIMEOUT_SECONDS) -> RunningServer:
    """Serve ``app`` on ``host:port`` (0 = any free port); return once it accepts
    connections. Raises ``RuntimeError`` if it cannot start (e.g. the port is taken)."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                            lifespan="off", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)

    def run() -> None:
        try:
            server.run()
        except SystemExit:  # uvicorn's way of failing startup; uvicorn logged why, we report it below
            pass

    thread = threading.Thread(target=run, name=f"sandbox-{name}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"sandbox {name} could not start on {host}:{port} (port in use?)")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"sandbox {name} did not start within {startup_timeout}s")
        time.sleep(0.01)
    bound_port = server.servers[0].sockets[0].getsockname()[1]
    while True:
        try:
            socket.create_connection((host, bound_port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                server.should_exit = True
                raise RuntimeError(f"sandbox {name} on port {bound_port} accepts no connections") from None
            time.sleep(0.01)
    return RunningServer(name, f"http://{host}:{bound_port}", server, thread, app)


@dataclass
class Sandbox:
    """The running sandbox: base URLs, the credentials it accepts, admin helpers."""

    urls: dict[str, str]
    """Service roots; the ERP's SOAP endpoint is its root, its WSDL at ``?wsdl``."""
    seed: int
    now: datetime | None
    _stop: Callable[[], None]
    api_key: str = SANDBOX_API_KEY
    erp_username: str = ERP_USERNAME
    erp_password: str = ERP_PASSWORD
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET
    _admin: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10.0))

    def connector_settings(self) -> dict[str, str]:
        """The ``Settings`` fields that point all four connectors at this sandbox."""
        return {
            "orders_url": self.urls["erp"] + "/", "orders_username": self.erp_username,
            "orders_password": self.erp_password,
            "logistics_url": self.urls["carrier"], "logistics_api_key": self.api_key,
            "helpdesk_url": self.urls["helpdesk"], "helpdesk_api_key": self.api_key,
            "messaging_url": self.urls["messaging"], "messaging_api_key": self.api_key,
            "messaging_webhook_secret": self.webhook_secret,
        }

    def set_faults(self, service: str, **faults: Any) -> dict:
        """Replace ``service``'s fault settings (see ``sandbox.faults``)."""
        response = self._admin.post(f"{self.urls[service]}/_admin/faults", json=faults)
        response.raise_for_status()
        return response.json()

    def fault_status(self, service: str) -> dict:
        response = self._admin.get(f"{self.urls[service]}/_admin/faults")
        response.raise_for_status()
        return response.json()

    def reset(self, *services: str) -> None:
        """No faults and seeded data again, for ``services`` or all of them."""
        for name in services or tuple(self.urls):
            self._admin.post(f"{self.urls[name]}/_admin/reset").raise_for_status()

    def stop(self) -> None:
        self._stop()
        self._admin.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_sandbox(
    *,
    ports: Mapping[str, int] | None = None,
    seed: int = DEFAULT_SEED,
    now: datetime | None = None,
    webhook_url: str | None = None,
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
) -> Sandbox:
    """Start all four services; ``ports`` maps service name to port (missing or 0: a free
    port). ``now`` anchors the demo data's times (default: the current hour)."""
    ports = ports or {}
    unknown = set(ports) - set(SERVICES)
    if unknown:
        raise ValueError(f"unknown sandbox services {sorted(unknown)}; known: {', '.join(SERVICES)}")
    anchor = now or default_now()

    def data():
        return build_demo_data(seed, anchor)

    apps = {
        "erp": erp.create_app(data, seed=seed),
        "carrier": carrier.create_app(data, seed=seed),
        "helpdesk": helpdesk.create_app(data, seed=seed),
        "messaging": messaging.create_app(webhook_url=webhook_url, webhook_secret=webhook_secret, seed=seed),
    }
    servers: dict[str, RunningServer] = {}
    try:
        for name in SERVICES:
            servers[name] = serve_in_thread(apps[name], name=name, port=ports.get(name, 0))
    except BaseException:
        for running in servers.values():
            running.stop()
        raise
    def stop() -> None:
        for server in servers.values():
            server.request_stop()  # all at once, then wait for each
        for server in servers.values():
            server.stop()

    return Sandbox({name: s.url for name, s in servers.items()}, seed, anchor, stop, webhook_secret=webhook_secret)


def start_sandbox_process(
    *,
    seed: int = DEFAULT_SEED,
    webhook_url: str | None = None,
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
    startup_timeout: float = 60.0,
) -> Sandbox:
    """Start all four services on free ports in a child process (``python -m sandbox``).

    Tests use this: a sandbox served from inside the test process shares its interpreter
    lock with everything else the tests run there, and a busy test process makes the ERP
    look slow. In a process of its own it answers like a remote system would."""
    workdir = Path(tempfile.mkdtemp(prefix="ticketflow-sandbox-"))
    urls_file = workdir / "urls.json"
    args = [sys.executable, "-m", "sandbox", "--seed", str(seed), "--webhook-secret", webhook_secret,
            "--urls-file", str(urls_file), "--parent-pid", str(os.getpid()), *(arg for name in SERVICES for arg in (f"--{name}-port", "0"))]
    if webhook_url:
        args += ["--webhook-url", webhook_url]
    log = (workdir / "sandbox.log").open("wb")
    child = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             cwd=Path(__file__).resolve().parent.parent)

    def stop() -> None:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)

    deadline = time.monotonic() + startup_timeout
    while not urls_file.exists():
        if child.poll() is not None or time.monotonic() > deadline:
            stop()
            output = (workdir / "sandbox.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the sandbox process did not start (exit {child.returncode}):\n{output}")
        time.sleep(0.05)
    urls = json.loads(urls_file.read_text())
    return Sandbox(urls, seed, None, stop, webhook_secret=webhook_secret)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__.splitlines()[0])
    for name in SERVICES:
        parser.add_argument(f"--{name}-port", type=int, default=DEFAULT_PORTS[name], metavar="PORT")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--webhook-url", help="ticketflow's inbound chat webhook (loopback)")
    parser.add_argument("--webhook-secret", default=DEFAULT_WEBHOOK_SECRET)
    parser.add_argument("--urls-file", type=Path, metavar="FILE",
                        help="once every service accepts connections, write their URLs here as JSON "
                             "(useful with port 0, which lets the OS pick free ports)")
    parser.add_argument("--parent-pid", type=int, metavar="PID",
                        help="stop when this process ends (for a sandbox started by another program)")
    args = parser.parse_args(argv)

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    if args.parent_pid:
        def watch_parent() -> None:
            while not stop.wait(1.0):
                if os.getppid() != args.parent_pid:  # re-parented: the parent is gone
                    stop.set()
        threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()

    sandbox = start_sandbox(
        ports={name: getattr(args, f"{name}_port") for name in SERVICES},
        seed=args.seed, webhook_url=args.webhook_url, webhook_secret=args.webhook_secret,
    )
    try:
        print(f"sandbox running (seed {args.seed}); Ctrl-C stops it", flush=True)
        for name, url in sandbox.urls.items():
            print(f"  {name:<10} {url}", flush=True)
        print(f"  erp wsdl   {sandbox.urls['erp']}/?wsdl", flush=True)
        if args.urls_file:
            partial = args.urls_file.with_name(args.urls_file.name + ".partial")
            partial.write_text(json.dumps(sandbox.urls))
            os.replace(partial, args.urls_file)  # readers never see half a file
        print(f"  api key {sandbox.api_key!r}; erp basic auth {sandbox.erp_username!r} / "
              f"{sandbox.erp_password!r}", flush=True)
        stop.wait()
    finally:
        sandbox.stop()
        print("sandbox stopped", flush=True)
    return 0
