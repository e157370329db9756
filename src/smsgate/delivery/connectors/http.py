"""Building an upstream HTTP connector from its stored URL."""

from __future__ import annotations

from smsgate.delivery.connectors.advanta_client import AdvantaClient
from smsgate.delivery.connectors.eapi_client import EapiClient
from smsgate.delivery.connectors.http_settings import HttpSettings
from smsgate.delivery.connectors.telesign_client import TelesignClient
from smsgate.delivery.connectors.upstream import DialectClient, HttpConnector


def dialect_client(settings: HttpSettings) -> DialectClient:
    if settings.dialect == "advanta":
        return AdvantaClient(settings)
    if settings.dialect == "eapi":
        return EapiClient(settings)
    if settings.dialect == "telesign":
        return TelesignClient(settings)
    raise ValueError(f"no client for the {settings.dialect} dialect")


def http_connector(settings: HttpSettings) -> HttpConnector:
    return HttpConnector(settings, dialect_client(settings))
