"""Building an upstream HTTP connector from its stored URL, and finding one
by the secret path its provider pushes receipts to."""

from __future__ import annotations

from smsgate.delivery.connectors.advanta_client import AdvantaClient
from smsgate.delivery.connectors.http_settings import HttpSettings
from smsgate.delivery.connectors.upstream import DialectClient, HttpConnector
from smsgate.secret_box import SecretBox

RECEIVER_PATH = "/upstream"
"""Where providers push to: ``/upstream/<the connection's secret>``."""


def dialect_client(settings: HttpSettings) -> DialectClient:
    if settings.dialect == "advanta":
        return AdvantaClient(settings)
    raise ValueError(f"no client for the {settings.dialect} dialect")


def http_connector(settings: HttpSettings) -> HttpConnector:
    return HttpConnector(settings, dialect_client(settings))


def receiver_secret(secrets: SecretBox, connector: str) -> str:
    """The connection's push path secret: unguessable, never stored, the same
    in every API process sharing the master key."""
    return secrets.tag(f"upstream receipts for {connector}")


def receiver_path(secrets: SecretBox, connector: str) -> str:
    return f"{RECEIVER_PATH}/{receiver_secret(secrets, connector)}"
