"""smsgate's SMPP server on its own event loop and store, as a separate
process would run it, so blocking ESMEs (smpplib, the peer programs) and the
test body can talk to it over TCP."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from smsgate.config import Settings
from smsgate.core.model import Account
from smsgate.credentials import CredentialKind, hash_password
from smsgate.gateway import Gateway
from smsgate.smpp.server import SmppServer
from smsgate.store.records import NewCredential
from smsgate.store.repo import Store

T = TypeVar("T")

SYSTEM_ID, PASSWORD = "shop", "pa55word"


class ServerThread:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.store: Store
        self.gateway: Gateway
        self.server: SmppServer

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def __enter__(self) -> ServerThread:
        self._thread.start()

        async def start() -> None:
            self.store = await Store.open(self.settings.effective_database_url)
            self.gateway = Gateway(self.store, self.settings)
            self.server = SmppServer(self.gateway, self.settings)
            await self.server.start()

        self.run(start())
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            await self.server.stop(1.0)
            await self.store.close()

        self.run(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    @property
    def port(self) -> int:
        return self.server.port

    def account(
        self,
        name: str = "shop",
        *,
        system_id: str = SYSTEM_ID,
        password: str = PASSWORD,
        credit: int = 10**9,
        options: dict[str, object] | None = None,
    ) -> Account:
        """An account that binds with ``system_id`` / ``password``."""
        credential = NewCredential(CredentialKind.SMPP_PASSWORD, system_id, hash_password(password))
        return self.run(
            self.store.create_account(
                name=name,
                region="KE",
                timezone="Africa/Nairobi",
                credentials=[credential],
                credit=credit,
                options=options,
            )
        )
