"""The one place ticketflow reads its configuration from the environment.

Every setting is an environment variable with the ``TICKETFLOW_`` prefix (or a line in a
``.env`` file). Workflow code never imports this module: values a workflow needs travel in
its input, so a replay months later sees exactly what the original run saw.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TICKETFLOW_", env_file=".env", extra="ignore")

    temporal_address: str | None = Field(
        default=None,
        description="host:port of a Temporal frontend. Unset: `ticketflow up` starts the embedded dev server.",
    )
    temporal_namespace: str = Field(default="default", description="Temporal namespace for all workflows.")
    task_queue: str = Field(default="ticketflow", description="Task queue of the ticket workflows and their activities.")
    data_dir: Path = Field(default=ROOT / "var", description="Where the embedded Temporal and SQLite files live.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the read model, e.g. postgresql+psycopg://user@host/db. "
        "Unset: a SQLite file in the data directory.",
    )
    api_host: str = Field(default="127.0.0.1", description="Address the HTTP API binds to.")
    api_port: int = Field(default=8000, description="Port of the HTTP API.")
    temporal_port: int = Field(default=7233, description="Port of the embedded Temporal dev server.")
    temporal_ui_port: int = Field(default=8233, description="Port of the embedded Temporal Web UI.")
    sandbox_port: int = Field(
        default=8101, description="First of four ports `ticketflow up` gives the sandbox ERP, carrier, helpdesk, messaging."
    )
    session_idle_timeout: timedelta = Field(
        default=timedelta(minutes=30), ge=timedelta(minutes=2),
        description="A console session ends after this long without a request (ISO 8601 duration or seconds; "
        "at least 2 minutes).",
    )
    session_max_age: timedelta = Field(
        default=timedelta(hours=12), ge=timedelta(minutes=2),
        description="A console session ends this long after sign-in, however busy (ISO 8601 duration or seconds).",
    )
    session_cookie_secure: bool = Field(
        default=False,
        description="Send the console's session cookie over HTTPS only: set it wherever the API is served behind TLS.",
    )
    metrics_enabled: bool = Field(
        default=True, description="Serve the API's Prometheus metrics at `/metrics` (requests by route; no ticket data).",
    )
    worker_metrics_address: str | None = Field(
        default=None, pattern=r"^(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]+):[0-9]{1,5}$",
        description="host:port where a worker serves Prometheus metrics: cases, tasks, SLA warnings and breaches, "
        "FAQ decisions, connector calls, and the Temporal SDK's own. Unset: none (`ticketflow up`: 127.0.0.1:9464).",
    )
    auto_close_after: timedelta = Field(
        default=timedelta(days=3),
        description="Quiet period after which a resolved ticket closes (ISO 8601 duration or seconds).",
    )
    customer_reply_timeout: timedelta = Field(
        default=timedelta(days=7),
        description="How long a ticket waits for the customer before it is resolved as unanswered.",
    )
    stale_claim_after: timedelta = Field(
        default=timedelta(minutes=30),
        description="A claimed task nobody touches for this long goes back to its queue and is rerouted.",
    )
    auto_assign: bool = Field(default=True, description="Route new tasks to agents automatically (else agents claim).")
    faq_enabled: bool = Field(default=True, description="Let the FAQ bot answer new tickets it is confident about.")
    faq_task_queue: str = Field(default="ticketflow-faq", description="Task queue of the FAQ workers (they load the model).")
    faq_model_threads: int = Field(
        default=1, ge=1,
        description="CPU threads each FAQ model call uses. Concurrent questions already run on the activity "
        "threads; more per call makes idle model threads spin on every core.",
    )
    faq_quantize: Literal["int8", "torch-int8", "none"] = Field(
        default="int8",
        description="How the FAQ model runs for indexes built from now on: `int8` (int8 weights on ONNX Runtime, "
        "about a fifth of float32's time per question, BANKING77 top-1 within 0.002), `torch-int8` (int8 weights on torch, "
        "the earlier default) or `none` (float32 on torch). Each index is queried with the variant that built it.",
    )
    faq_model_cache_dir: Path | None = Field(
        default=None,
        description="Where the FAQ model's ONNX export is kept between runs (made on first use, about 10 s). "
        "Unset: `faq-models` under the data directory.",
    )
    faq_target_precision: float = Field(
        default=0.9, gt=0.0, le=1.0,
        description="Precision the FAQ bot's automatic answers aim at; each index publish chooses its thresholds for it.",
    )
    faq_out_of_scope_recall: float = Field(
        default=0.95, ge=0.0, lt=1.0,
        description="Share of questions the knowledge base does not cover (simulated at each publish) that must go "
        "to an agent; 0 turns the check off.",
    )
    bot_answer_timeout: timedelta = Field(
        default=timedelta(days=2), description="How long a bot answer waits for the customer's verdict before an agent looks."
    )
    intake_rules_file: Path = Field(
        default=ROOT / "policies" / "intake.json",
        description="Rules that route a chat message to a case type (JSON); unmatched messages open support tickets.",
    )
    returns_policy_file: Path = Field(
        default=ROOT / "policies" / "returns.json",
        description="What may be returned and how long a return request waits at each step (JSON).",
    )
    sla_config_file: Path = Field(
        default=ROOT / "policies" / "sla.json", description="Business calendar and SLA policies (JSON)."
    )
    activity_threads: int = Field(default=16, description="Thread pool size for blocking activities per worker.")
    policy_refresh_seconds: float = Field(
        default=1.0, ge=0,
        description="How often each API process asks the database whether the access policy changed "
        "(a grant, revoke or import is in force everywhere within this plus a reload).",
    )
    change_feed_retention: timedelta = Field(
        default=timedelta(days=7),
        description="How far back GET /events can replay missed changes; older ones are deleted every hour.",
    )

    payload_encryption: bool = Field(
        default=True,
        description="Encrypt every payload and failure message ticketflow hands Temporal (AES-256-GCM).",
    )
    payload_keys: SecretStr | None = Field(
        default=None,
        description="Payload keys as `id:base64key,...`, newest last (it encrypts; all decrypt). Unset: the key file.",
    )
    payload_key_file: Path | None = Field(
        default=None,
        description="JSON key file (`ticketflow keys rotate` writes it). Unset: payload-keys.json in the data directory.",
    )
    archive_dir: Path | None = Field(
        default=None,
        description="Where the hourly housekeeping keeps closed tickets' signed histories, before Temporal's "
        "retention drops them. Unset: archive/ in the data directory.",
    )
    archive_closed_tickets: bool = Field(
        default=True, description="Archive closed tickets' histories in the hourly housekeeping.")
    archive_lookback: timedelta = Field(
        default=timedelta(days=30), description="The housekeeping archives tickets closed within this; keep it "
        "at least the Temporal namespace's retention.")
    audit_key_file: Path | None = Field(
        default=None,
        description="Ed25519 private key (PEM) that signs audit archives. Unset: audit-signing-key.pem in the data "
        "directory (`ticketflow up` creates it).",
    )
    codec_cors_origins: list[str] = Field(
        default=["http://localhost:8233", "http://127.0.0.1:8233"],
        description="Origins of Temporal Web UIs allowed to call the codec endpoint from the browser.",
    )

    # External systems. A system whose URL is unset is not consulted at all.
    orders_system: str = Field(default="soap", description="Order system implementation (registered connector name).")
    orders_url: str | None = Field(default=None, description="Endpoint of the order system (the ERP's SOAP address).")
    orders_username: str | None = Field(default=None, description="User for the order system.")
    orders_password: SecretStr | None = Field(default=None, description="Password for the order system.")
    logistics_system: str = Field(default="rest", description="Logistics provider implementation.")
    logistics_url: str | None = Field(default=None, description="Base URL of the carrier tracking API.")
    logistics_api_key: SecretStr | None = Field(default=None, description="API key for the carrier tracking API.")
    helpdesk_system: str = Field(default="rest", description="External helpdesk implementation.")
    helpdesk_url: str | None = Field(default=None, description="Base URL of the external helpdesk API.")
    helpdesk_api_key: SecretStr | None = Field(default=None, description="API key for the external helpdesk.")
    messaging_system: str = Field(default="rest", description="Messaging channel implementation.")
    messaging_url: str | None = Field(default=None, description="Base URL of the messaging platform (outbound replies).")
    messaging_api_key: SecretStr | None = Field(default=None, description="API key for the messaging platform.")
    messaging_webhook_secret: SecretStr | None = Field(
        default=None, description="Shared secret that signs inbound chat webhooks. Unset: the webhook is disabled."
    )
    connector_timeout: float = Field(default=10.0, description="Seconds one call to an external system may take.")

    @property
    def faq_model_cache(self) -> Path:
        return self.faq_model_cache_dir or self.data_dir / "faq-models"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'ticketflow.db'}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
