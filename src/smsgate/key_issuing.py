"""Issuing an account a new secret for one dialect, shown once: what
``smsgate accounts keys`` and the console's key form both do.

The identifier stays (partnerID, EAPI username, Telesign customer id) where
the account has one, so client configuration changes only by its secret;
the old secret stops working within a second in every API process.
"""

from __future__ import annotations

from dataclasses import dataclass

from smsgate.core.model import Account
from smsgate.core.telesign_auth import new_api_key as new_telesign_key
from smsgate.core.telesign_auth import new_customer_id
from smsgate.credentials import (
    SMPP_SYSTEM_ID_MAX,
    CredentialKind,
    check_system_id,
    hash_password,
    hash_secret,
    new_api_key,
    new_partner_id,
    new_password,
    new_smpp_password,
)
from smsgate.secret_box import SecretBox
from smsgate.store.records import NewCredential
from smsgate.store.repo import Store


@dataclass
class Issued:
    """Credentials just issued, printed once."""

    partner_id: str | None = None
    apikey: str | None = None
    eapi: tuple[str, str] | None = None
    telesign: tuple[str, str] | None = None
    smpp: tuple[str, str] | None = None


class KeyKind:
    PARTNER = "partner"
    EAPI = "eapi"
    TELESIGN = "telesign"
    SMPP = "smpp"
    ALL = (PARTNER, EAPI, TELESIGN, SMPP)


def smpp_credential(system_id: str) -> tuple[tuple[str, str], NewCredential]:
    """A new SMPP bind password for ``system_id`` (ValueError if a bind
    cannot carry it): the pair to print and the credential to store."""
    password = new_smpp_password()
    check_system_id(system_id)
    return (system_id, password), NewCredential(
        CredentialKind.SMPP_PASSWORD, system_id, hash_password(password)
    )


async def rotate_key(
    store: Store, box: SecretBox, account: Account, kind: str, username: str | None = None
) -> Issued:
    """Replace the account's ``kind`` secret (or issue a first one).

    Raises ``DuplicateIdentifier`` (a chosen EAPI username or SMPP system_id
    is another account's; the old credential still works) and ``ValueError`` for an
    unknown ``kind``.
    """
    identifiers = dict(await store.identifiers(account.id))
    issued = Issued()
    if kind == KeyKind.PARTNER:
        issued.partner_id = identifiers.get(CredentialKind.PARTNER_APIKEY) or new_partner_id()
        issued.apikey = new_api_key()
        credential = NewCredential(
            CredentialKind.PARTNER_APIKEY, issued.partner_id, hash_secret(issued.apikey)
        )
    elif kind == KeyKind.EAPI:
        user = username or identifiers.get(CredentialKind.EAPI_PASSWORD) or account.name
        issued.eapi = (user, new_password())
        credential = NewCredential(
            CredentialKind.EAPI_PASSWORD, user, hash_password(issued.eapi[1])
        )
    elif kind == KeyKind.TELESIGN:
        key = new_telesign_key()
        issued.telesign = (identifiers.get(CredentialKind.TELESIGN_KEY) or new_customer_id(), key)
        credential = NewCredential(
            CredentialKind.TELESIGN_KEY, issued.telesign[0], hash_secret(key), box.encrypt(key)
        )
    elif kind == KeyKind.SMPP:
        system_id = (
            username
            or identifiers.get(CredentialKind.SMPP_PASSWORD)
            or account.name[:SMPP_SYSTEM_ID_MAX]
        )
        issued.smpp, credential = smpp_credential(system_id)
    else:
        raise ValueError(f"{kind!r}: expected partner, eapi, telesign or smpp")
    await store.replace_credential(account.id, credential)
    return issued
