"""Telesign-style request authentication, checked the way Telesign checks it.

Customers point the unmodified official ``telesign`` SDK at the gateway, so the
string-to-sign below must match the SDK's byte for byte: any reformatting here
(header order, where blank lines go, how the body is rendered) rejects every
request the SDK makes. The functions are pure so the HTTP layer decides where
keys come from and where used nonces are remembered.

Failures carry Telesign's own negative error codes because client code written
against Telesign branches on them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import IntEnum
from typing import Literal

HMAC_AUTH_METHOD = "HMAC-SHA256"
NONCE_MIN_LENGTH = 16
NONCE_MAX_LENGTH = 64


class AuthCode(IntEnum):
    INVALID_CUSTOMER_ID = -30000
    ACCOUNT_SUSPENDED = -30001
    MISSING_AUTHORIZATION = -30004
    MALFORMED_AUTHORIZATION = -30005
    INVALID_SIGNATURE = -30006
    MISSING_DATE = -30007
    INVALID_AUTH_METHOD = -30008
    INVALID_DATE = -30009
    DATE_OUT_OF_TOLERANCE = -30010
    INVALID_NONCE = -30011
    NONCE_REUSED = -30012
    INVALID_API_KEY = -30015


DESCRIPTIONS: Mapping[int, str] = {
    AuthCode.INVALID_CUSTOMER_ID: "Invalid Customer ID.",
    AuthCode.ACCOUNT_SUSPENDED: "Customer account is suspended.",
    AuthCode.MISSING_AUTHORIZATION: "Missing required 'Authorization' header.",
    AuthCode.MALFORMED_AUTHORIZATION: "'Authorization' header is not in the correct format.",
    AuthCode.INVALID_SIGNATURE: "Invalid Signature.",
    AuthCode.MISSING_DATE: "Missing required 'Date' or 'x-ts-date' header.",
    AuthCode.INVALID_AUTH_METHOD: "Invalid 'x-ts-auth-method' header; expected HMAC-SHA256.",
    AuthCode.INVALID_DATE: "Invalid 'Date' or 'x-ts-date' header; must be RFC 822 format.",
    AuthCode.DATE_OUT_OF_TOLERANCE: "Request date is outside the allowed time window.",
    AuthCode.INVALID_NONCE: (
        f"Invalid 'x-ts-nonce' header; must be {NONCE_MIN_LENGTH} to {NONCE_MAX_LENGTH} characters."
    ),
    AuthCode.NONCE_REUSED: "Nonce has already been used.",
    AuthCode.INVALID_API_KEY: "Invalid API Key.",
}


class AuthFailure(Exception):
    """A rejected request; ``code`` goes into the response's ``errors`` list verbatim."""

    def __init__(self, code: int, description: str | None = None) -> None:
        self.code = code
        self.description = description if description is not None else DESCRIPTIONS[code]
        super().__init__(f"{code}: {self.description}")


@dataclass(frozen=True)
class Credentials:
    """What the ``Authorization`` header claims, before anything is checked.

    ``secret`` is the api key (Basic) or the signature (TSA); it is kept out of
    ``repr`` so an accidentally logged object does not leak a key.
    """

    scheme: Literal["Basic", "TSA"]
    customer_id: str
    secret: str = field(repr=False)


def parse_authorization(header: str | None) -> Credentials:
    """Split the header into scheme, customer id and secret.

    The header is attacker-controlled text, so every decoding problem becomes
    an ``AuthFailure`` rather than escaping as a 500.
    """
    if header is None or not header.strip():
        raise AuthFailure(AuthCode.MISSING_AUTHORIZATION)
    parts = header.strip().split(None, 1)
    if len(parts) != 2:
        raise AuthFailure(AuthCode.MALFORMED_AUTHORIZATION)
    scheme, payload = parts[0].lower(), parts[1].strip()
    if scheme == "basic":
        try:
            payload = base64.b64decode(payload, validate=True).decode("utf-8")
        except ValueError as exc:
            raise AuthFailure(AuthCode.MALFORMED_AUTHORIZATION) from exc
        customer_id, colon, secret = payload.partition(":")
        normalized: Literal["Basic", "TSA"] = "Basic"
    elif scheme == "tsa":
        customer_id, colon, secret = payload.partition(":")
        normalized = "TSA"
    else:
        raise AuthFailure(AuthCode.MALFORMED_AUTHORIZATION)
    if not colon or not customer_id or not secret:
        raise AuthFailure(AuthCode.MALFORMED_AUTHORIZATION)
    return Credentials(scheme=normalized, customer_id=customer_id, secret=secret)


def string_to_sign(
    *,
    method: str,
    content_type: str,
    date: str,
    auth_method: str,
    nonce: str,
    body: str,
    path: str,
    ts_date: str | None = None,
) -> str:
    """The canonical text both sides MAC; ``ts_date`` is None when no ``x-ts-date`` was sent."""
    lines = [method, content_type, date, f"x-ts-auth-method:{auth_method}"]
    if ts_date is not None:
        lines.append(f"x-ts-date:{ts_date}")
    lines.append(f"x-ts-nonce:{nonce}")
    if content_type and body:
        lines.append(body)
    lines.append(path)
    return "\n".join(lines)


def verify_tsa(
    credentials: Credentials,
    *,
    api_key_b64: str,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
    tolerance: timedelta = timedelta(minutes=15),
) -> str:
    """Check an HMAC-signed request and return its nonce.

    Replay protection needs shared state (the nonces seen within the date
    window), so it is left to the caller, which must reject a returned nonce it
    has already recorded for this customer with ``AuthCode.NONCE_REUSED``.

    ``now`` must be timezone-aware. A body that is not UTF-8 cannot be what a
    client signed (the string-to-sign is UTF-8 text), so it fails as a bad
    signature rather than being decoded lossily, which would let two bodies
    share one signature.
    """
    if credentials.scheme != "TSA":
        raise ValueError("verify_tsa needs TSA credentials")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    lowered = {name.lower(): value for name, value in headers.items()}

    date = lowered.get("date")
    ts_date = lowered.get("x-ts-date")
    effective = next((v for v in (ts_date, date) if v is not None and v.strip()), None)
    if effective is None:
        raise AuthFailure(AuthCode.MISSING_DATE)
    sent_at = _parse_http_date(effective)
    if abs(sent_at - now) > tolerance:
        raise AuthFailure(AuthCode.DATE_OUT_OF_TOLERANCE)

    auth_method = lowered.get("x-ts-auth-method")
    if auth_method is None or auth_method.upper() != HMAC_AUTH_METHOD:
        raise AuthFailure(AuthCode.INVALID_AUTH_METHOD)

    nonce = lowered.get("x-ts-nonce")
    if nonce is None or not NONCE_MIN_LENGTH <= len(nonce) <= NONCE_MAX_LENGTH:
        raise AuthFailure(AuthCode.INVALID_NONCE)

    try:
        text_body = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AuthFailure(AuthCode.INVALID_SIGNATURE) from exc
    message = string_to_sign(
        method=method,
        content_type=lowered.get("content-type", ""),
        date=date or "",
        auth_method=auth_method,
        nonce=nonce,
        body=text_body,
        path=path,
        ts_date=ts_date,
    )
    expected = _b64_hmac(api_key_b64, message.encode("utf-8"))
    if not hmac.compare_digest(expected, credentials.secret.encode("utf-8")):
        raise AuthFailure(AuthCode.INVALID_SIGNATURE)
    return nonce


def sign_callback(body: bytes, *, customer_id: str, api_key_b64: str) -> str:
    """The ``Authorization`` value for a delivery report.

    Telesign signs callbacks over the raw body alone (no date or nonce), and
    customers verify them with the SDK's helper, so the format cannot be
    strengthened here without breaking them.
    """
    return f"TSA {customer_id}:{_b64_hmac(api_key_b64, body).decode('ascii')}"


def new_customer_id() -> str:
    """Shaped like Telesign's ids so customers' validation of stored ids keeps passing."""
    return str(uuid.uuid4()).upper()


def new_api_key() -> str:
    """64 random bytes, base64: the size and encoding of Telesign keys."""
    return base64.b64encode(secrets.token_bytes(64)).decode("ascii")


def _b64_hmac(api_key_b64: str, message: bytes) -> bytes:
    digest = hmac.new(base64.b64decode(api_key_b64), message, hashlib.sha256).digest()
    return base64.b64encode(digest)


def _parse_http_date(text: str) -> datetime:
    """RFC 822/1123 date; a zone of ``-0000`` (no zone information) is read as UTC."""
    try:
        parsed = parsedate_to_datetime(text)
    except (ValueError, OverflowError) as exc:
        raise AuthFailure(AuthCode.INVALID_DATE) from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
