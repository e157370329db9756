"""The API process's credential lookups: one per TTL, however many requests."""

from __future__ import annotations

import asyncio

from smsgate.config import Settings
from smsgate.credentials import CredentialKind, hash_secret
from smsgate.gateway import Gateway
from smsgate.store.repo import Store
from tests.store.test_repo import advance


async def test_a_lookup_serves_concurrent_requests_and_lapses_after_its_ttl(
    store: Store,
) -> None:
    account = await store.create_account(name="c", region="KE", timezone="Africa/Nairobi")
    kind = CredentialKind.PARTNER_APIKEY
    await store.add_credential(
        account.id, kind=kind, identifier="777", secret_hash=hash_secret("key")
    )
    gateway = Gateway(store, Settings())
    ip = "203.0.113.1"
    looked_up = 0
    credentials_for = store.credentials_for

    async def counted(kind: str, identifier: str) -> list[tuple[object, str]]:
        nonlocal looked_up
        looked_up += 1
        return await credentials_for(kind, identifier)  # type: ignore[return-value]

    store.credentials_for = counted  # type: ignore[method-assign,assignment]
    found = await asyncio.gather(
        *(gateway.authenticate(kind, "777", "key", address=ip) for _ in range(50))
    )
    assert [a.id if a else None for a in found] == [account.id] * 50
    assert looked_up == 1
    assert (
        await gateway.authenticate(kind, "777", "wrong", address=ip) is None
    )  # checked, still cached
    assert looked_up == 1
    await store.revoke_credentials(account.id, kind)
    # Within the TTL this process still trusts what it read ...
    assert await gateway.authenticate(kind, "777", "key", address=ip) is not None
    advance(store, Gateway.CREDENTIALS_TTL_MS)
    # ... and after it, the revocation holds.
    assert await gateway.authenticate(kind, "777", "key", address=ip) is None
    assert looked_up == 2
