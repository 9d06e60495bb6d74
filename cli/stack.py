"""`ticketflow up`: the whole stack on one machine.

Temporal runs as a child process (the real dev server, persisting to a SQLite file in the
data directory); the sandbox systems, a worker and the API share this process. Ctrl-C stops
the API, then the worker, then the sandbox and Temporal. Nothing is lost: workflows live in
Temporal's file and carry on at the next `up`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import subprocess

import httpx
import uvicorn
from pydantic import SecretStr

from api.main import SHUTDOWN_GRACE_SECONDS, create_app
from cli.embedded import start_dev_server, stop_process
from migrations import upgrade
from models.auth import Role
from models.db import Database
from settings import Settings
from worker import MetricsAddressError, connect, metrics_runtime, run_worker

log = logging.getLogger("ticketflow.up")

DEMO_USERS = [
    ("admin", Role.admin, "*"),
    ("sam", Role.supervisor, "*"),
    ("ana", Role.agent, "logistics"),
    ("ben", Role.agent, "general"),
    ("audra", Role.auditor, "*"),
    ("CUST-0001", Role.customer, "*"),
]

# Routing profiles of the demo agents; they start offline (PUT /agents/me/presence to go online).
DEMO_AGENTS = [
    ("ana", ["logistics"], ["carriers", "refunds"], True),
    ("ben", ["general"], ["accounts"], False),
    ("sam", ["supervisors", "logistics", "general"], ["refunds"], True),
]

DEMO_TICKETS = [
    dict(external_ref="demo-late-parcel", customer_id="CUST-0001", order_id="ORD-1001", department="logistics",
         subject="My delivery is late", body="My parcel for order ORD-1001 was due days ago. Where is it?"),
    dict(external_ref="demo-lost-parcel", customer_id="CUST-0002", order_id="ORD-1002", department="logistics",
         priority="high", subject="Parcel lost?", body="Tracking has not moved for a week. I want a refund."),
    dict(external_ref="demo-address", customer_id="CUST-0003", department="general",
         subject="Change my address", body="How do I change the delivery address on my account?"),
]


class _Server(uvicorn.Server):
    """uvicorn re-raises Ctrl-C once it has stopped; here the stack owns the signals so the
    worker and Temporal can shut down in order after the API."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def _sandbox_settings(settings: Settings, urls: dict[str, str], sandbox) -> Settings:  # noqa: ANN001
    """Point every unset connector at the sandbox. (`model_copy` does not validate, so the
    secrets are wrapped here as the settings would have wrapped them.)"""
    key = SecretStr(sandbox.api_key)
    updates = {}
    if not settings.orders_url:
        updates.update(orders_url=urls["erp"] + "/", orders_username=sandbox.erp_username,
                       orders_password=SecretStr(sandbox.erp_password))
    if not settings.logistics_url:
        updates.update(logistics_url=urls["carrier"], logistics_api_key=key)
        if settings.returns_policy_file == Settings.model_fields["returns_policy_file"].default:
            # The sandbox carrier's parcels are scanned on request: look every 10 s, not 6 h.
            updates.update(returns_policy_file=settings.returns_policy_file.with_name("returns-sandbox.json"))
    if not settings.helpdesk_url:
        updates.update(helpdesk_url=urls["helpdesk"], helpdesk_api_key=key)
    if not settings.messaging_url:
        updates.update(messaging_url=urls["messaging"], messaging_api_key=key,
                       messaging_webhook_secret=SecretStr(sandbox.webhook_secret))
    return settings.model_copy(update=updates)


def _demo_tokens(settings: Settings, db: Database) -> dict[str, str]:
    """Demo tokens are made once and kept in the data directory (local use only)."""
    from api.auth import create_token

    path = settings.data_dir / "demo-tokens.json"
    if path.exists():
        return json.loads(path.read_text())
    tokens = {user: db.call(create_token, user=user, role=role, department=dept) for user, role, dept in DEMO_USERS}
    path.write_text(json.dumps(tokens, indent=2))
    path.chmod(0o600)
    return tokens


# The people of the demo who sign in with a password (POST /auth/session): an agent and a supervisor.
DEMO_SIGN_INS = {"ana": "agent, logistics", "sam": "supervisor, every department"}


def _demo_passwords(settings: Settings, db: Database) -> dict[str, str]:
    """Passwords for the demo agent and supervisor, made once and kept in the data directory
    (local use only), like the demo tokens."""
    import secrets

    from policies import people

    path = settings.data_dir / "demo-passwords.json"
    if path.exists():
        return json.loads(path.read_text())
    passwords = {user: secrets.token_urlsafe(12) for user in DEMO_SIGN_INS}
    for user, password in passwords.items():
        db.call(people.set_password, "up", user, password)
    path.write_text(json.dumps(passwords, indent=2))
    path.chmod(0o600)
    return passwords


def _demo_setup(db: Database) -> None:
    """A knowledge base for the FAQ bot and routing profiles for the demo agents, once."""
    from faq.knowledge_base import seed_demo_kb

    publication = seed_demo_kb(db)
    if publication is not None:
        log.info("demo FAQ knowledge base: %s (index %s)", publication.status, publication.index_version)
    for name, queues, skills, senior in DEMO_AGENTS:
        db.call(_ensure_agent, name, queues, skills, senior)


def _ensure_agent(session, name: str, queues: list[str], skills: list[str], senior: bool) -> None:  # noqa: ANN001
    from models.agent import Agent
    from models.db import utcnow

    if session.get(Agent, name) is None:
        session.add(Agent(id=name, queues=queues, skills=skills, languages=["en", "de"], capacity=5, senior=senior,
                          presence="offline", updated_at=utcnow()))


async def _demo_tickets(base_url: str, token: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {token}"}) as http:
        for ticket in DEMO_TICKETS:
            r = await http.post("/tickets", json=ticket)
            if r.status_code not in (200, 201):
                log.warning("demo ticket %s: %s %s", ticket["external_ref"], r.status_code, r.text)


def _payload_keys(settings: Settings) -> str:
    """One machine, one key file: made on the first start, kept in the data directory."""
    from encryption.keys import ensure_key_file, key_file_path

    if not settings.payload_encryption:
        return "stored in Temporal unencrypted (TICKETFLOW_PAYLOAD_ENCRYPTION=false)"
    if settings.payload_keys is not None:
        return "encrypted with the keys of TICKETFLOW_PAYLOAD_KEYS"
    path = key_file_path(settings)
    created = ensure_key_file(path)
    return f"encrypted with the keys in {path}" + (" (created now: back it up)" if created else "")


def _audit_key(settings: Settings) -> str:
    """The key that signs audit archives: made on the first start, kept in the data directory."""
    from audit.signing import ensure_signing_key, signing_key_path

    path = signing_key_path(settings)
    created = ensure_signing_key(path)
    return f"signed with {path}" + (" (created now: back it up)" if created else "")


# Where `up`'s worker serves its metrics unless TICKETFLOW_WORKER_METRICS_ADDRESS says.
UP_WORKER_METRICS = "127.0.0.1:9464"
# How long a stopping worker may take to finish its running activities.
WORKER_STOP_SECONDS = 30


def _banner(settings: Settings, api_url: str, embedded: bool, sandbox, key_note: str,  # noqa: ANN001
            audit_note: str) -> None:
    print(f"\nticketflow is up\n  console  {api_url}/console  (agents' inbox; supervisors' dashboard at "
          f"{api_url}/console/dashboard)\n  API      {api_url}  (OpenAPI docs at {api_url}/docs)", flush=True)
    if embedded:
        print(f"  Temporal 127.0.0.1:{settings.temporal_port}  (Web UI at http://127.0.0.1:{settings.temporal_ui_port})",
              flush=True)
    if sandbox is not None:
        print("  sandbox  " + "  ".join(f"{k}={v}" for k, v in sandbox.urls.items()), flush=True)
    print(f"  payloads {key_note}", flush=True)
    print(f"  archives {audit_note}  (ticketflow audit)", flush=True)
    api = f"{api_url}/metrics (API)" if settings.metrics_enabled else "API metrics off"
    worker = (f"http://{settings.worker_metrics_address}/metrics (worker)" if settings.worker_metrics_address
              else "worker metrics off (see the log)")
    print(f"  metrics  {api}, {worker}", flush=True)


async def _demo(settings: Settings, db: Database, api_url: str, stopping) -> None:  # noqa: ANN001
    """Demo people, knowledge base and tickets, once; each step skipped once a stop began."""
    await asyncio.to_thread(_demo_setup, db)
    if stopping():
        return
    tokens = await asyncio.to_thread(_demo_tokens, settings, db)
    if stopping():
        return
    try:
        await _demo_tickets(api_url, tokens["admin"])
    except httpx.HTTPError:
        if stopping():  # the API stopped under us: the tickets are opened at the next start
            return
        raise
    print(f"  demo tokens (also in {settings.data_dir / 'demo-tokens.json'}):", flush=True)
    for user, token in tokens.items():
        print(f"    {user:<10} {token}", flush=True)
    passwords = await asyncio.to_thread(_demo_passwords, settings, db)
    print(f"  demo sign-in at {api_url}/console (also in {settings.data_dir / 'demo-passwords.json'}):", flush=True)
    for user, password in passwords.items():
        print(f"    {user:<10} {password:<20} {DEMO_SIGN_INS.get(user, '')}", flush=True)


async def run_stack(settings: Settings, *, demo: bool, with_sandbox: bool) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    temporal_proc: subprocess.Popen | None = None
    sandbox = None
    try:
        if settings.temporal_address is None:
            log.info("starting embedded Temporal (data in %s)", settings.data_dir / "temporal.db")
            temporal_proc = await asyncio.to_thread(
                start_dev_server, settings.data_dir, port=settings.temporal_port, ui_port=settings.temporal_ui_port,
                namespace=settings.temporal_namespace,
            )
        if with_sandbox:
            from sandbox.run import DEFAULT_PORTS, DEFAULT_WEBHOOK_SECRET, start_sandbox

            # The sandbox's messaging platform delivers simulated customer messages
            # (POST /simulate/inbound) to this API's chat webhook, as a real one would.
            api_loopback = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::", "") else settings.api_host
            if ":" in api_loopback:  # an IPv6 address, e.g. ::1
                api_loopback = f"[{api_loopback}]"
            sandbox = await asyncio.to_thread(
                start_sandbox, ports={name: settings.sandbox_port + i for i, name in enumerate(DEFAULT_PORTS)},
                webhook_url=f"http://{api_loopback}:{settings.api_port}/webhooks/chat",
                webhook_secret=(settings.messaging_webhook_secret.get_secret_value()
                                if settings.messaging_webhook_secret else DEFAULT_WEBHOOK_SECRET),
            )
            settings = _sandbox_settings(settings, sandbox.urls, sandbox)

        await asyncio.to_thread(upgrade, settings.effective_database_url)
        db = Database(settings.effective_database_url)
        key_note = _payload_keys(settings)
        audit_note = _audit_key(settings)
        if settings.worker_metrics_address is None:
            settings = settings.model_copy(update={"worker_metrics_address": UP_WORKER_METRICS})
        try:
            runtime = metrics_runtime(settings.worker_metrics_address)
        except MetricsAddressError as exc:  # optional here: the stack runs without them
            log.warning("%s", exc)
            runtime, settings = None, settings.model_copy(update={"worker_metrics_address": None})
        # The worker shares this client, so its runtime serves the worker's metrics.
        client = await connect(settings, runtime=runtime)
        api_url = f"http://{settings.api_host}:{settings.api_port}"

        server = _Server(uvicorn.Config(create_app(settings, db=db, temporal=client), host=settings.api_host,
                                               port=settings.api_port, log_level="warning",
                                               timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS))
        stop_worker = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, lambda: setattr(server, "should_exit", True))
        worker_task = asyncio.create_task(run_worker(settings, client, stop_worker, faq=settings.faq_enabled))
        api_task = asyncio.create_task(server.serve())
        try:
            while not server.started:
                if api_task.done():
                    await api_task
                    return 1
                await asyncio.sleep(0.05)
            _banner(settings, api_url, temporal_proc is not None, sandbox, key_note, audit_note)
            if demo and not server.should_exit:
                await _demo(settings, db, api_url, stopping=lambda: server.should_exit)
            if not server.should_exit:
                print("Ctrl-C stops everything; state is kept for the next start.\n", flush=True)
            await asyncio.wait({worker_task, api_task}, return_when=asyncio.FIRST_COMPLETED)
            return 0
        finally:
            # Whatever ended the run (Ctrl-C at any moment, a failed step): the API and the
            # worker stop while Temporal is still there to say goodbye to.
            server.should_exit = True
            stop_worker.set()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(api_task, SHUTDOWN_GRACE_SECONDS + 5)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(worker_task, WORKER_STOP_SECONDS)
            await db.aclose()
    finally:
        if sandbox is not None:
            sandbox.stop()
        if temporal_proc is not None:
            # The dev server got the same Ctrl-C; make sure it has finished writing.
            with contextlib.suppress(Exception):
                temporal_proc.send_signal(signal.SIGTERM)
            stop_process(temporal_proc)
        log.info("stopped")
