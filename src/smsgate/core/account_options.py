"""The options an account may have (its ``options`` in the database), as one
table: each row names the option, its label where it is shown, how a typed
value is read and what it means. The command line (``--option``) and the
console's account page both read and show options through it."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from smsgate.core.model import DEFAULT_MAX_PARTS, MAX_PARTS_CEILING


def _boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "yes", "true", "on"}:
        return True
    if value in {"0", "no", "false", "off"}:
        return False
    raise ValueError("expected yes or no")


def _positive_int(raw: str) -> int:
    if not (raw.strip().isascii() and raw.strip().isdigit()) or int(raw) <= 0:
        raise ValueError("expected a whole number above 0")
    return int(raw)


def _max_parts(raw: str) -> int:
    value = _positive_int(raw)
    if value > MAX_PARTS_CEILING:
        raise ValueError(f"expected 1..{MAX_PARTS_CEILING} (the concatenation header's counter)")
    return value


def _response_code_key(raw: str) -> str:
    if raw not in {"response-code", "respose-code"}:
        raise ValueError("expected response-code or respose-code")
    return raw


def _networks(raw: str) -> list[str]:
    """Comma-separated CIDR ranges, kept in their normalised spelling."""
    try:
        ranges = [
            str(ipaddress.ip_network(part.strip(), strict=False))
            for part in raw.split(",")
            if part.strip()
        ]
    except ValueError as exc:
        raise ValueError(f"expected CIDR ranges separated by commas ({exc})") from None
    if not ranges:
        raise ValueError("expected at least one CIDR range")
    return ranges


def _url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("expected an http(s) URL with a host")
    return raw


@dataclass(frozen=True)
class AccountOption:
    key: str
    label: str
    parse: Callable[[str], object]
    meaning: str


OPTIONS: tuple[AccountOption, ...] = (
    AccountOption(
        "daily_quota",
        "daily quota",
        _positive_int,
        "messages per day from local midnight"
        " (EAPI 27, partnerID/apikey 1005, Telesign 429 beyond)",
    ),
    AccountOption(
        "max_parts",
        "parts per message at most",
        _max_parts,
        f"SMS parts one text may take, 1..{MAX_PARTS_CEILING} (default {DEFAULT_MAX_PARTS})",
    ),
    AccountOption(
        "max_messages_per_second",
        "messages per second",
        _positive_int,
        "sending rate (SMSGATE_ACCOUNT_MESSAGES_PER_SECOND by default)",
    ),
    AccountOption(
        "message_burst",
        "message burst",
        _positive_int,
        "messages sent at once before the rate applies (SMSGATE_ACCOUNT_MESSAGE_BURST)",
    ),
    AccountOption(
        "max_requests_in_flight",
        "requests in flight",
        _positive_int,
        "sends in progress at once (SMSGATE_ACCOUNT_REQUESTS_IN_FLIGHT)",
    ),
    AccountOption(
        "repliable",
        "repliable by default",
        _boolean,
        "EAPI messages go from the reply number unless a sender is given",
    ),
    AccountOption(
        "mo_callback_url", "replies forwarded to", _url, "URL inbound replies are pushed to"
    ),
    AccountOption(
        "advanta_compat",
        "partnerID/apikey compatibility",
        _boolean,
        "turn on the two switches below",
    ),
    AccountOption(
        "advanta_response_code_key",
        "response code spelled",
        _response_code_key,
        "response-code or respose-code",
    ),
    AccountOption(
        "advanta_networkid_as_string",
        "networkid as a string",
        _boolean,
        'send networkid as "1" rather than 1',
    ),
    AccountOption(
        "smpp_allowed_addresses",
        "SMPP clients from",
        _networks,
        "address ranges SMPP binds are accepted from, e.g. 192.0.2.0/24,2001:db8::/32",
    ),
    AccountOption(
        "smpp_max_binds",
        "SMPP binds at most",
        _positive_int,
        "simultaneous SMPP binds (SMSGATE_SMPP_SERVER_MAX_BINDS by default)",
    ),
)
BY_KEY = {option.key: option for option in OPTIONS}
