import pytest

from connectors import registry
from connectors.carrier_rest import RestLogisticsProvider
from connectors.erp_soap import SoapOrderSystem
from connectors.interfaces import LogisticsProvider, MessagingChannel, OrderSystem, TicketSystem
from connectors.registry import (
    ConnectorConfig,
    build_logistics_provider,
    build_messaging_channel,
    build_order_system,
    build_ticket_system,
    implementations,
    register,
)


def config(name: str) -> ConnectorConfig:
    return ConnectorConfig(implementation=name, base_url="http://127.0.0.1:9", api_key="k", username="u", password="p")


def test_default_implementations_satisfy_their_protocols():
    built = [build_order_system(config("soap")), build_logistics_provider(config("rest")),
             build_ticket_system(config("rest")), build_messaging_channel(config("rest"))]
    for client, protocol in zip(built, (OrderSystem, LogisticsProvider, TicketSystem, MessagingChannel), strict=True):
        assert isinstance(client, protocol)
        client.close()
    assert isinstance(built[0], SoapOrderSystem)


def test_unknown_name_says_which_exist():
    with pytest.raises(ValueError, match="no orders connector named 'sap'; known: soap"):
        build_order_system(config("sap"))


def test_a_new_system_is_one_class_and_one_registration():
    class StubCarrier(RestLogisticsProvider):
        system = "stub-carrier"

    register("logistics", "stub", StubCarrier)
    try:
        assert implementations("logistics") == ["rest", "stub"]
        client = build_logistics_provider(config("stub"))
        assert type(client) is StubCarrier
        client.close()
    finally:
        registry._IMPLEMENTATIONS.pop(("logistics", "stub"))


def test_secrets_do_not_show_in_reprs():
    assert "p" not in repr(config("soap").password) and "k" not in repr(config("soap").api_key)
