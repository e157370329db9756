"""Where an upstream provider pushes its reports: a secret path per connection.

Kept apart from the connectors themselves so the command line can print a
path without loading an HTTP client.
"""

from __future__ import annotations

from smsgate.secret_box import SecretBox

RECEIVER_PATH = "/upstream"
"""Where providers push to: ``/upstream/<the connection's secret>``."""


def receiver_secret(secrets: SecretBox, connector: str) -> str:
    """The connection's push path secret: unguessable, never stored, the same
    in every API process sharing the master key."""
    return secrets.tag(f"upstream receipts for {connector}")


def receiver_path(secrets: SecretBox, connector: str) -> str:
    return f"{RECEIVER_PATH}/{receiver_secret(secrets, connector)}"
