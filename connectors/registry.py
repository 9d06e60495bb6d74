"""Which connector class a deployment uses, by name.

Settings name an implementation per domain (``orders: soap``, ``logistics: rest``) plus
its URL, credentials and timeout; the worker's composition root calls ``build_*`` once at
start-up. Supporting a new system is one class with a ``from_config`` classmethod and one
line in ``_IMPLEMENTATIONS`` (or a ``register`` call from a plugin).

Implementations are named as import strings and imported on first use, so a worker that
never talks SOAP never imports zeep.
"""

from __future__ import annotations

import importlib
from typing import Any, Literal, cast

from pydantic import BaseModel, Field, SecretStr

from connectors.interfaces import LogisticsProvider, MessagingChannel, OrderSystem, TicketSystem

Domain = Literal["orders", "logistics", "tickets", "messaging"]


class ConnectorConfig(BaseModel):
    """How to reach one external system. Comes from settings, never from workflow input."""

    implementation: str = Field(description='Registered name, e.g. "soap" or "rest".')
    base_url: str = Field(description="Service root (for SOAP: the endpoint address).")
    timeout_seconds: float = Field(default=10.0, gt=0)
    api_key: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None


_IMPLEMENTATIONS: dict[tuple[str, str], str | type] = {
    ("orders", "soap"): "connectors.erp_soap:SoapOrderSystem",
    ("logistics", "rest"): "connectors.carrier_rest:RestLogisticsProvider",
    ("tickets", "rest"): "connectors.helpdesk_rest:RestTicketSystem",
    ("messaging", "rest"): "connectors.messaging_rest:RestMessagingChannel",
}


def register(domain: Domain, name: str, target: str | type) -> None:
    """Make ``name`` usable in settings for ``domain``; ``target`` is a class or
    ``"module:Class"``."""
    _IMPLEMENTATIONS[(domain, name)] = target


def implementations(domain: Domain) -> list[str]:
    return sorted(name for d, name in _IMPLEMENTATIONS if d == domain)


def _build(domain: Domain, config: ConnectorConfig) -> Any:
    try:
        target = _IMPLEMENTATIONS[(domain, config.implementation)]
    except KeyError:
        raise ValueError(
            f"no {domain} connector named {config.implementation!r}; known: {', '.join(implementations(domain))}"
        ) from None
    if isinstance(target, str):
        module_name, _, class_name = target.partition(":")
        target = getattr(importlib.import_module(module_name), class_name)
    return target.from_config(config)


def build_order_system(config: ConnectorConfig) -> OrderSystem:
    return cast(OrderSystem, _build("orders", config))


def build_logistics_provider(config: ConnectorConfig) -> LogisticsProvider:
    return cast(LogisticsProvider, _build("logistics", config))


def build_ticket_system(config: ConnectorConfig) -> TicketSystem:
    return cast(TicketSystem, _build("tickets", config))


def build_messaging_channel(config: ConnectorConfig) -> MessagingChannel:
    return cast(MessagingChannel, _build("messaging", config))
