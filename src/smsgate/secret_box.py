"""Encryption of secrets the gateway must be able to read back.

Most credentials are stored as hashes, but an HMAC scheme such as Telesign's
needs the api key itself to recompute signatures, so that key is stored
encrypted instead: a copy of the database (a backup, a replica, a support dump)
is then useless without the separate master key.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from smsgate.private_files import private_directory

if TYPE_CHECKING:
    from smsgate.config import Settings

KEY_BYTES = 32
KEY_FILE_NAME = "secret.key"
_NONCE_BYTES = 12
_TAG_BYTES = 16
_TOKEN_PREFIX = "v1:"


class SecretError(Exception):
    """A master key or stored token is unusable; messages never include secret material."""


class SecretBox:
    """AES-256-GCM with a random nonce per value.

    GCM authenticates as well as encrypts, so a token edited in the database
    or encrypted under another key is refused instead of yielding garbage.
    Tokens carry a version prefix so the format can change without guessing
    what an old row holds.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise SecretError(f"the secret key must be {KEY_BYTES} bytes, got {len(key)}")
        self._aead = AESGCM(key)
        self._tag_key = hmac.new(key, b"smsgate tags", hashlib.sha256).digest()

    def tag(self, purpose: str) -> str:
        """A secret no one can derive without the master key, the same in every
        process: how a URL path can be unguessable without being stored."""
        return hmac.new(self._tag_key, purpose.encode("utf-8"), hashlib.sha256).hexdigest()[:32]

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), None)
        return _TOKEN_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, token: str) -> str:
        if not token.startswith(_TOKEN_PREFIX):
            raise SecretError("not a secret token of a known version")
        try:
            raw = base64.b64decode(token[len(_TOKEN_PREFIX) :], altchars=b"-_", validate=True)
        except ValueError as exc:
            raise SecretError("secret token is not valid base64") from exc
        if len(raw) < _NONCE_BYTES + _TAG_BYTES:
            raise SecretError("secret token is truncated")
        try:
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], None)
        except InvalidTag as exc:
            raise SecretError("secret token was altered or made with another key") from exc
        return plain.decode("utf-8")

    @classmethod
    def for_settings(cls, settings: Settings) -> SecretBox:
        """The box every process of one installation shares (see ``load``)."""
        return cls.load(settings.secret_key, settings.data_dir)

    @classmethod
    def load(cls, secret_key: str | None, data_dir: Path) -> SecretBox:
        """The box for this deployment's master key.

        A key in ``SMSGATE_SECRET_KEY`` (base64 of 32 bytes; empty counts as
        unset, like every other setting) wins. Without one, the key lives in
        ``data_dir/secret.key``, created on first use, so a single machine
        works with no set-up and all its processes share the file. Processes
        on several machines do not share a data directory: each would create
        its own key and be unable to read what the others encrypted, so such
        deployments must give every process the same ``SMSGATE_SECRET_KEY``
        (the content of an existing ``secret.key`` is a valid value, which
        keeps already stored secrets readable when scaling out).
        """
        if secret_key:
            return cls(_decode_key(secret_key, source="SMSGATE_SECRET_KEY"))
        path = data_dir / KEY_FILE_NAME
        if not path.exists():
            _create_key_file(path)
        return cls(_decode_key(path.read_text(encoding="ascii"), source=str(path)))


def _decode_key(text: str, *, source: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except ValueError as exc:
        raise SecretError(f"{source}: expected base64 of {KEY_BYTES} random bytes") from exc
    if len(key) != KEY_BYTES:
        raise SecretError(
            f"{source}: expected base64 of {KEY_BYTES} random bytes, got {len(key)} bytes"
            " (generate one with: openssl rand -base64 32)"
        )
    return key


def _create_key_file(path: Path) -> None:
    """Publish a new key without ever exposing a partly written or replaced file.

    The key is written to a private temporary file and then hard-linked into
    place: unlike a rename, linking fails when the name exists, so when several
    processes start at once exactly one key wins and the others read it, rather
    than a later process silently replacing a key an earlier one already used.
    """
    private_directory(path.parent)
    encoded = base64.b64encode(os.urandom(KEY_BYTES)) + b"\n"
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as temp:
            temp.write(encoded)
            temp.flush()
            os.fsync(temp.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temp_name, path)
    finally:
        os.unlink(temp_name)
    # Secrets encrypted under a key whose directory entry is lost in a crash are lost too.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
