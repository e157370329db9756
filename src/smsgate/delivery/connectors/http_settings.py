"""How one upstream HTTP provider is configured: parsed from its URL.

``advanta+https://PARTNER_ID:APIKEY@sms.example.com/api/services?in_flight=4``
names the dialect the upstream speaks (the scheme's prefix), where it
listens, the account's credentials there, and the connection's limits. The
whole URL is stored sealed, like an SMPP URL, since it carries the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

from smsgate.delivery.connectors.url_options import (
    Options,
    name,
    non_negative,
    positive,
    read_options,
    whole,
)

DIALECTS = ("advanta", "eapi", "telesign")
"""Dialects smsgate can send through, as a client."""

MAX_BATCH = {"advanta": 1_000, "eapi": 30_000, "telesign": 1_000}
"""Messages one request may carry, as the dialect allows (sendbulk: 1,000;
send_batch: 30,000 rows; bulk_sms: 1,000 recipients)."""


@dataclass(frozen=True)
class HttpSettings:
    name: str
    dialect: str
    base_url: str  # scheme, host, port and path, without credentials
    username: str  # partnerID, EAPI username, Telesign customer id
    password: str  # apikey, EAPI password, Telesign API key
    in_flight: int = 4  # requests awaiting an answer, at most
    max_per_second: float = 0.0  # messages a second; 0: as fast as the upstream answers
    timeout: float = 10.0  # seconds for one request, connecting included
    batch: int = 1_000  # messages per request, at most (within the dialect's limit)
    resends: int = 2  # the same request (same Idempotency-Key) again after a lost answer
    backoff_seconds: float = 5.0  # first pause after a failure; doubles up to 5 minutes
    receipt_timeout_hours: float = 48.0

    @property
    def receipt_timeout_ms(self) -> int:
        return int(self.receipt_timeout_hours * 3_600_000)

    @classmethod
    def from_url(cls, url: str) -> HttpSettings:
        """``DIALECT+http(s)://user:key@host[:port]/path?options``

        Options: ``name``, ``in_flight``, ``tps``, ``timeout`` (seconds),
        ``batch``, ``resends``, ``backoff`` (seconds), ``receipt_timeout_hours``.
        """
        parts = urlsplit(url)
        dialect, _, transport = parts.scheme.partition("+")
        if transport not in ("http", "https") or not parts.hostname or not parts.username:
            raise ValueError(
                "expected DIALECT+https://user:key@host/path?options, for example"
                " advanta+https://12345:KEY@sms.example.com/api/services"
            )
        if dialect not in DIALECTS:
            raise ValueError(f"unknown dialect {dialect!r}; known: {', '.join(DIALECTS)}")
        try:
            port = parts.port
        except ValueError:
            raise ValueError("the port must be a number from 1 to 65535") from None
        values = read_options(parts.query, _OPTIONS)
        if values.get("batch", 1) > MAX_BATCH[dialect]:
            raise ValueError(f"batch: {dialect} takes at most {MAX_BATCH[dialect]:,} a request")
        netloc = parts.hostname if port is None else f"{parts.hostname}:{port}"
        base = urlunsplit((transport, netloc, parts.path.rstrip("/"), "", ""))
        return cls(
            name=values.pop("name", "upstream"),
            dialect=dialect,
            base_url=base,
            username=unquote(parts.username),
            password=unquote(parts.password or ""),
            **values,
        )


_OPTIONS: Options = {
    "name": ("name", name),
    "in_flight": ("in_flight", whole(1)),
    "tps": ("max_per_second", non_negative),
    "timeout": ("timeout", positive),
    "batch": ("batch", whole(1)),
    "resends": ("resends", whole(0)),
    "backoff": ("backoff_seconds", positive),
    "receipt_timeout_hours": ("receipt_timeout_hours", positive),
}
