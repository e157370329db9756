"""Issuing and checking API secrets.

API keys are 128-bit random values, so a single SHA-256 is the right hash:
slow password hashes exist to protect guessable secrets, and would only cost
every request milliseconds here. Keys are never stored or logged in clear;
comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from enum import StrEnum


class CredentialKind(StrEnum):
    PARTNER_APIKEY = "partner_apikey"


def new_api_key() -> str:
    return secrets.token_hex(16)


def new_partner_id() -> str:
    """Numeric, like the partner ids customers' code already stores as integers."""
    return str(secrets.randbelow(900_000) + 100_000)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)
