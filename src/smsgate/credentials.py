"""Issuing and checking API secrets.

API keys are 128-bit random values, so a single SHA-256 is the right hash:
slow password hashes exist to protect guessable secrets, and would only cost
every request milliseconds here. Passwords (the EAPI dialect's, chosen by
people) are guessable, so they get scrypt; a verified password is remembered
in memory, keyed by a hash that needs the password itself, so a busy client
pays the scrypt cost once per process, not once per request (API keys are
remembered the same way, so a working client costs no more under a guessing
attack than without one). Secrets are never
stored or logged in clear; comparisons are constant-time.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict
from enum import StrEnum


class CredentialKind(StrEnum):
    PARTNER_APIKEY = "partner_apikey"
    EAPI_PASSWORD = "eapi_password"
    # Telesign-style: customer id + base64 API key, hashed for Basic and
    # sealed (encrypted) for checking and making HMAC signatures.
    TELESIGN_KEY = "telesign_key"
    # SMPP 3.4 bind: system_id and a password of at most 8 characters, which
    # is guessable, so it is hashed like the EAPI password.
    SMPP_PASSWORD = "smpp_password"


SMPP_SYSTEM_ID_MAX = 15  # the field is 16 octets with its NUL (SMPP 3.4 section 4.1)
SMPP_PASSWORD_MAX = 8  # 9 octets with its NUL
_PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_SCRYPT_PREFIX = "scrypt$"


def new_api_key() -> str:
    return secrets.token_hex(16)


def new_password() -> str:
    """Typeable and strong: 16 characters from an unambiguous alphabet (~92 bits)."""
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(16))


def new_smpp_password() -> str:
    """As long as SMPP 3.4 lets a password be (8 characters, ~46 bits): binds
    are limited by the failure guard, so guessing it takes years."""
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(SMPP_PASSWORD_MAX))


def check_system_id(system_id: str) -> str:
    """``system_id`` if a bind can carry it (printable ASCII, 1..15), else ValueError."""
    if not 0 < len(system_id) <= SMPP_SYSTEM_ID_MAX or not all("!" <= c <= "~" for c in system_id):
        raise ValueError(f"an SMPP system_id is 1..{SMPP_SYSTEM_ID_MAX} printable ASCII characters")
    return system_id


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


def uses_scrypt(stored: str) -> bool:
    """Whether checking a secret against ``stored`` costs a scrypt (tens of ms)."""
    return stored.startswith(_SCRYPT_PREFIX)


@functools.cache
def stand_in_hash(kind: CredentialKind) -> str:
    """A hash of no one's secret, of the kind ``kind`` stores: an unknown
    identifier's secret is checked against it, so that it costs what a known
    one's does and the reply's timing does not tell them apart."""
    secret = new_api_key()
    return hash_password(secret) if kind in _PASSWORD_KINDS else hash_secret(secret)


_PASSWORD_KINDS = frozenset({CredentialKind.EAPI_PASSWORD, CredentialKind.SMPP_PASSWORD})


def recently_verified(secret: str, stored: str) -> bool:
    """Whether this process has already seen ``secret`` verify against ``stored``.

    Only a digest that needs the secret itself is kept, never the secret, so
    the cache can only vouch for a secret that was right; that is what lets a
    client keep working (cheaply) while its identifier is locked by someone
    guessing at it.
    """
    proof = _proof(secret, stored)
    with _VERIFIED_LOCK:  # hash threads and the event loop share the cache
        if proof in _VERIFIED:
            _VERIFIED.move_to_end(proof)
            return True
    return False


def secret_verifies(secret: str, stored: str) -> bool:
    """Check a secret against whichever kind of hash was stored for it."""
    if recently_verified(secret, stored):
        return True
    if uses_scrypt(stored):
        salt, digest = (base64.b64decode(part) for part in stored[len(_SCRYPT_PREFIX) :].split("$"))
        matches = hmac.compare_digest(hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT), digest)
    else:
        matches = secret_matches(secret, stored)
    if matches:
        with _VERIFIED_LOCK:
            _VERIFIED[_proof(secret, stored)] = True
            if len(_VERIFIED) > _VERIFIED_MAX:
                _VERIFIED.popitem(last=False)
    return matches


def _proof(secret: str, stored: str) -> bytes:
    return hashlib.sha256(f"{stored}\0{secret}".encode()).digest()


_VERIFIED: OrderedDict[bytes, bool] = OrderedDict()
_VERIFIED_MAX = 16384
_VERIFIED_LOCK = threading.Lock()
