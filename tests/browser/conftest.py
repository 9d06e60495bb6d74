"""The console in a real browser: Debian's ``chromium`` driven by Playwright
(pytest-playwright), against ``ticketflow up`` run as a person runs it.

Nothing here downloads a browser: the tests use the ``chromium`` on PATH (``apt install
chromium fonts-noto-cjk``; ``.ci/run`` installs both when missing). Without it they skip,
saying so, except under CI, where they must run.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack_runner import Up

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM = shutil.which("chromium")
# Where the tests leave their screenshots (the README's come from here); a temporary folder
# unless CONSOLE_SCREENSHOT_DIR names one.
SCREENSHOT_DIR = os.environ.get("CONSOLE_SCREENSHOT_DIR")

# An always-open calendar and an urgent first response due 20 s after intake: a breach the
# dashboard test can wait for. The other targets are long enough never to fire during a run.
FAST_SLA = {
    "calendar": {"timezone": "UTC", "weekly_hours": {day: [{"start": "00:00", "end": "24:00"}] for day in (
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")}},
    "policies": [
        {"priority": "urgent", "target": {"first_response": "PT20S", "resolution": "PT8H"},
         "escalations": [{"action": "notify", "recipient": "supervisors"}]},
        {"priority": "high", "target": {"first_response": "PT4H", "resolution": "P1D"}},
        {"priority": "normal", "target": {"first_response": "PT8H", "resolution": "P2D"}},
        {"priority": "low", "target": {"first_response": "P1D", "resolution": "P5D"}},
    ],
}


def _is_browser_test(item) -> bool:  # noqa: ANN001
    return "tests/browser/" in str(item.fspath).replace(os.sep, "/")


def pytest_collection_modifyitems(config, items) -> None:  # noqa: ANN001
    # Playwright's synchronous API keeps an event loop running in the process once the browser
    # starts, and an asyncio test after that cannot run its own: browser tests go last
    # (`make test` runs them in a pytest process of their own anyway).
    items.sort(key=_is_browser_test)
    if CHROMIUM is not None or IN_CI:  # under CI a missing browser fails the tests (below)
        return
    skip = pytest.mark.skip(reason="Debian's chromium is not installed: `apt install chromium fonts-noto-cjk` "
                                   "to run the browser tests")
    for item in items:
        if _is_browser_test(item):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict:
    """pytest-playwright launches this, never a browser build of its own."""
    if CHROMIUM is None:
        pytest.fail("Debian's chromium is not installed: `apt install chromium fonts-noto-cjk`")
    return {"executable_path": CHROMIUM, "headless": True,
            "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run"]}


@pytest.fixture(scope="session")
def browser_context_args() -> dict:
    return {"viewport": {"width": 1280, "height": 720}, "locale": "en-US"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Up]:
    """`ticketflow up` with its demo data, its own ports and the fast SLA above."""
    data = tmp_path_factory.mktemp("console-stack")
    sla = data / "sla.json"
    sla.write_text(json.dumps(FAST_SLA))
    up = Up(data / "data", data / "up.log")
    up.env["TICKETFLOW_SLA_CONFIG_FILE"] = str(sla)
    try:
        up.start_blocking()
        yield up
    finally:
        up.kill()


@pytest.fixture(scope="module")
def passwords(stack: Up) -> dict[str, str]:
    return stack.passwords()


@pytest.fixture
def screenshots(tmp_path) -> Path:
    path = Path(SCREENSHOT_DIR) if SCREENSHOT_DIR else tmp_path
    path.mkdir(parents=True, exist_ok=True)
    return path
