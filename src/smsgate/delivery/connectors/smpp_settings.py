"""How one SMPP connection is configured: parsed from its ``smpp://`` URL.

Every option has a default that works against a well-behaved SMSC; the
ones that matter for the truth of receipts are the id formats (how the SMSC
writes message ids in submit_sm_resp, in the receipt text and in the
receipted_message_id TLV), the validity (how long after submission a receipt
may still name a message) and the receipt timeout. A value that cannot be
read is refused with the option's name, never half-applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from smsgate.core.carrier_ids import IdFormat
from smsgate.delivery.connectors.url_options import (
    Options,
    flag,
    name,
    non_negative,
    positive,
    read_options,
    whole,
)

BIND_MODES = ("transceiver", "transmitter_receiver")


@dataclass(frozen=True)
class SmppSettings:
    name: str
    host: str
    port: int
    system_id: str
    password: str
    system_type: str = ""
    bind_mode: str = "transceiver"  # or "transmitter_receiver"
    window: int = 10  # unanswered submit_sm at the SMSC, at most
    uncommitted: int = 1_000  # messages whose outcome is not committed yet, at most
    max_per_second: float = 0.0  # 0: as fast as the window and the SMSC allow
    enquire_link_seconds: float = 30.0
    response_timeout: float = 10.0
    reconnect_min_seconds: float = 0.5
    reconnect_max_seconds: float = 30.0
    sar: bool = False  # long messages with SAR TLVs instead of a UDH
    submit_id: IdFormat = IdFormat.STRING
    receipt_id: IdFormat | None = None  # the receipt text's id:, default as submit_id
    receipt_tlv_id: IdFormat | None = None  # receipted_message_id, default as submit_id
    validity_hours: float = 168.0
    receipt_timeout_hours: float = 48.0

    @property
    def text_id_format(self) -> IdFormat:
        return self.receipt_id or self.submit_id

    @property
    def tlv_id_format(self) -> IdFormat:
        return self.receipt_tlv_id or self.submit_id

    @property
    def validity_ms(self) -> int:
        return int(self.validity_hours * 3_600_000)

    @property
    def receipt_timeout_ms(self) -> int:
        return int(self.receipt_timeout_hours * 3_600_000)

    @classmethod
    def from_url(cls, url: str) -> SmppSettings:
        """``smpp://system_id:password@host:port?name=smsc1&window=10&submit_id=hex``

        Options: ``name``, ``bind`` (transceiver, transmitter_receiver),
        ``system_type``, ``window``, ``uncommitted``, ``tps``, ``enquire_link``
        (seconds), ``response_timeout`` (seconds), ``sar`` (0/1), ``submit_id``,
        ``receipt_id``, ``receipt_tlv_id`` (string, decimal, hex),
        ``validity_hours``, ``receipt_timeout_hours``.
        """
        parts = urlsplit(url)
        if parts.scheme != "smpp" or not parts.hostname or not parts.username:
            raise ValueError("expected smpp://system_id:password@host:port?options")
        try:
            port = parts.port or 2775
        except ValueError:
            raise ValueError("the port must be a number from 1 to 65535") from None
        values = read_options(parts.query, _OPTIONS)
        system_id, password = unquote(parts.username), unquote(parts.password or "")
        if len(system_id) > 15 or len(password) > 8:
            raise ValueError("SMPP 3.4 allows a system_id of 15 and a password of 8 characters")
        return cls(
            name=values.pop("name", "smpp"),
            host=parts.hostname,
            port=port,
            system_id=system_id,
            password=password,
            **values,
        )


def _id_format(raw: str) -> IdFormat:
    try:
        return IdFormat(raw.lower())
    except ValueError:
        raise ValueError(
            f"expected one of {', '.join(f.value for f in IdFormat)}, not {raw!r}"
        ) from None


def _bind(raw: str) -> str:
    if raw not in BIND_MODES:
        raise ValueError(f"expected one of {', '.join(BIND_MODES)}, not {raw!r}")
    return raw


def _text(raw: str) -> str:
    if len(raw) > 12 or not raw.isascii():
        raise ValueError("expected at most 12 ASCII characters")
    return raw


_OPTIONS: Options = {
    "name": ("name", name),
    "bind": ("bind_mode", _bind),
    "system_type": ("system_type", _text),
    "window": ("window", whole(1)),
    "uncommitted": ("uncommitted", whole(1)),
    "tps": ("max_per_second", non_negative),
    "enquire_link": ("enquire_link_seconds", positive),
    "response_timeout": ("response_timeout", positive),
    "sar": ("sar", flag),
    "submit_id": ("submit_id", _id_format),
    "receipt_id": ("receipt_id", _id_format),
    "receipt_tlv_id": ("receipt_tlv_id", _id_format),
    "validity_hours": ("validity_hours", positive),
    "receipt_timeout_hours": ("receipt_timeout_hours", positive),
}
