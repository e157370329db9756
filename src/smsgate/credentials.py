"""Issuing and checking API secrets.

API keys are 128-bit random values, so a single SHA-256 is the right hash:
slow password hashes exist to protect guessable secrets, and would only cost
every request milliseconds here. Passwords (the EAPI dialect's, chosen by
people) are guessable, so they get scrypt; a verified password is remembered
in memory, keyed by a hash that needs the password itself, so a busy client
pays the scrypt cost once per process, not once per request. Secrets are never
stored or logged in clear; comparisons are constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections import OrderedDict
from enum import StrEnum


class CredentialKind(StrEnum):
    PARTNER_APIKEY = "partner_apikey"
    EAPI_PASSWORD = "eapi_password"
    # Telesign-style: customer id + base64 API key, hashed for Basic and
    # sealed (encrypted) for checking and making HMAC signatures.
    TELESIGN_KEY = "telesign_key"


_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_SCRYPT_PREFIX = "scrypt$"


def new_api_key() -> str:
    return secrets.token_hex(16)


def new_password() -> str:
    """Typeable and strong: 16 characters from an unambiguous alphabet (~92 bits)."""
    alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(16))


def new_partner_id() -> str:
    """Numeric, like the partner ids customers' code already stores as integers."""
    return str(secrets.randbelow(900_000) + 100_000)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return _SCRYPT_PREFIX + "$".join(base64.b64encode(part).decode() for part in (salt, digest))


def secret_verifies(secret: str, stored: str) -> bool:
    """Check a secret against whichever kind of hash was stored for it."""
    if not stored.startswith(_SCRYPT_PREFIX):
        return secret_matches(secret, stored)
    # Only this digest is kept, never the password; it cannot be made without it.
    proof = hashlib.sha256(f"{stored}\0{secret}".encode()).digest()
    if proof in _VERIFIED:
        _VERIFIED.move_to_end(proof)
        return True
    salt, digest = (base64.b64decode(part) for part in stored[len(_SCRYPT_PREFIX) :].split("$"))
    if not hmac.compare_digest(hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT), digest):
        return False
    _VERIFIED[proof] = True
    if len(_VERIFIED) > _VERIFIED_MAX:
        _VERIFIED.popitem(last=False)
    return True


_VERIFIED: OrderedDict[bytes, bool] = OrderedDict()
_VERIFIED_MAX = 4096
