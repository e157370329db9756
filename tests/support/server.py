"""Running the real gateway (HTTP API + workers) on a socket in a background thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

import uvicorn

from smsgate.api.http_protocol import DialectHttpProtocol
from smsgate.config import Settings
from smsgate.core.pricing import to_units
from smsgate.core.telesign_auth import new_api_key as new_telesign_key
from smsgate.core.telesign_auth import new_customer_id
from smsgate.credentials import (
    CredentialKind,
    hash_password,
    hash_secret,
    new_api_key,
    new_partner_id,
)
from smsgate.runtime import Runtime
from smsgate.secret_box import SecretBox
from smsgate.store.repo import Store
from tests.support.waiting import wait_until

T = TypeVar("T")


class GatewayServer:
    def __init__(self, settings: Settings, *, workers: bool = True) -> None:
        self.settings = settings
        self.workers = workers
        self.loop = asyncio.new_event_loop()
        self.runtime: Runtime | None = None
        self._server: uvicorn.Server | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.base_url = ""

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        except BaseException as exc:  # surfaced to the test thread by start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self.runtime = await Runtime.open(self.settings)
        config = uvicorn.Config(
            self.runtime.app(with_workers=self.workers),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="on",
            http=DialectHttpProtocol,  # as runtime serves it
        )
        self._server = uvicorn.Server(config)
        serving = asyncio.create_task(self._server.serve())
        # uvicorn signals readiness only through this flag.
        while not self._server.started and not serving.done():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        if serving.done():
            serving.result()
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        self._ready.set()
        try:
            await serving
        finally:
            await self.runtime.close()

    def start(self) -> GatewayServer:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("gateway did not start")
        if self._error:
            raise self._error
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(30)

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the gateway's own loop (its store, its connections)."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(30)

    @property
    def rt(self) -> Runtime:
        assert self.runtime is not None
        return self.runtime

    def create_account(
        self,
        *,
        credit: str = "100",
        senders: tuple[str, ...] = ("SMSGATE",),
        callback_url: str | None = None,
        name: str | None = None,
        **options: Any,
    ) -> TestAccount:
        return self.call(
            provision_account(
                self.rt.store,
                self.rt.secrets,
                credit=credit,
                senders=senders,
                callback_url=callback_url,
                name=name,
                **options,
            )
        )

    def wait_until(
        self, predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition"
    ) -> None:
        wait_until(predicate, timeout, what)


class TestAccount:
    __test__ = False

    def __init__(
        self,
        account_id: int,
        partner_id: str,
        apikey: str,
        customer_id: str,
        telesign_key: str,
    ) -> None:
        self.id = account_id
        self.partner_id = partner_id
        self.apikey = apikey
        self.customer_id = customer_id
        self.telesign_key = telesign_key

    @property
    def creds(self) -> dict[str, str]:
        return {"partnerID": self.partner_id, "apikey": self.apikey}

    @property
    def eapi_creds(self) -> dict[str, str]:
        return {"username": f"user{self.partner_id}", "password": f"pw-{self.apikey}"}


async def provision_account(
    store: Store,
    secrets: SecretBox,
    *,
    credit: str = "100",
    senders: tuple[str, ...] = ("SMSGATE",),
    callback_url: str | None = None,
    name: str | None = None,
    **options: Any,
) -> TestAccount:
    """An account with a credential for each dialect and some credit."""
    partner_id, apikey = new_partner_id(), new_api_key()
    customer_id, telesign_key = new_customer_id(), new_telesign_key()
    account = await store.create_account(
        name=name or f"acct-{partner_id}",
        region="KE",
        timezone="Africa/Nairobi",
        senders=senders,
        dlr_callback_url=callback_url,
        **options,
    )
    await store.add_credential(
        account.id,
        kind=CredentialKind.PARTNER_APIKEY,
        identifier=partner_id,
        secret_hash=hash_secret(apikey),
    )
    await store.add_credential(
        account.id,
        kind=CredentialKind.EAPI_PASSWORD,
        identifier=f"user{partner_id}",
        secret_hash=hash_password(f"pw-{apikey}"),
    )
    await store.add_credential(
        account.id,
        kind=CredentialKind.TELESIGN_KEY,
        identifier=customer_id,
        secret_hash=hash_secret(telesign_key),
        sealed_secret=secrets.encrypt(telesign_key),
    )
    if to_units(credit):
        await store.add_credit(account.id, to_units(credit), "test credit")
    return TestAccount(account.id, partner_id, apikey, customer_id, telesign_key)
