"""The SMPP 3.4 server customers bind to as ESMEs.

One asyncio server; each connection is a ``CustomerLink``
(``smpp/customer_link.py``). The server holds what is shared between
connections: the gateway, the settings, the per-account bind counts, the
registry of bound receivers (those that may be sent deliver_sm) with the
hooks that hand them to whatever returns receipts and replies, and one timer
that checks every connection's deadlines.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

from smsgate.config import Settings
from smsgate.gateway import Gateway
from smsgate.smpp.customer_returns import Returns

if TYPE_CHECKING:
    from smsgate.smpp.customer_link import CustomerLink

log = logging.getLogger(__name__)

_TICKS_PER_DEADLINE = 4  # the timer runs this often within the shortest deadline


class SmppServer:
    """Listens for binds; ``on_bound`` / ``on_unbound`` callbacks see every
    receiver or transceiver as it binds and as it goes."""

    def __init__(self, gateway: Gateway, settings: Settings) -> None:
        self.gateway = gateway
        self.settings = settings
        # Receipts and replies owed to bound customers (smpp/customer_returns.py).
        self.returns = Returns(gateway.store)
        self.on_bound: list[Callable[[CustomerLink], None]] = [self.returns.attach]
        self.on_unbound: list[Callable[[CustomerLink], None]] = [self.returns.detach]
        self._returns_stopping = asyncio.Event()
        self._returns_task: asyncio.Task[None] | None = None
        self._links: set[CustomerLink] = set()
        self._binds: dict[int, set[CustomerLink]] = {}
        self._receivers: dict[int, set[CustomerLink]] = {}
        self._server: asyncio.Server | None = None
        self._ticker: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        from smsgate.smpp.customer_link import CustomerLink

        settings = self.settings
        self._server = await asyncio.get_running_loop().create_server(
            lambda: CustomerLink(self),
            settings.smpp_server_host,
            settings.smpp_server_port,
            ssl=self._tls(),
            backlog=256,
        )
        self._ticker = asyncio.create_task(self._tick())
        self._returns_task = asyncio.create_task(self.returns.run(self._returns_stopping))
        log.info("smpp server listening on %s", ", ".join(self.addresses))

    @property
    def addresses(self) -> list[str]:
        if self._server is None:
            return []
        return [f"{s.getsockname()[0]}:{s.getsockname()[1]}" for s in self._server.sockets]

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self, grace: float = 2.0) -> None:
        """Stop listening, unbind every customer, wait for their answers."""
        if self._ticker is not None:
            self._ticker.cancel()
        if self._server is not None:
            self._server.close()
        links = list(self._links)
        if links:
            await asyncio.gather(*(link.shut(grace) for link in links))
        self._returns_stopping.set()
        if self._returns_task is not None:
            await self._returns_task  # hands back what closed links still carried
        if self._server is not None:
            await self._server.wait_closed()

    def _tls(self) -> ssl.SSLContext | None:
        cert, key = self.settings.smpp_server_tls_cert, self.settings.smpp_server_tls_key
        if not cert:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key or None)
        return context

    async def _tick(self) -> None:
        settings = self.settings
        shortest = min(
            settings.smpp_server_bind_timeout,
            settings.smpp_server_enquire_link_seconds,
            settings.smpp_server_response_timeout,
        )
        period = shortest / _TICKS_PER_DEADLINE
        while True:
            await asyncio.sleep(period)
            for link in list(self._links):
                link.check_deadlines()

    # ------------------------------------------------------------ registry

    def opened(self, link: CustomerLink) -> None:
        self._links.add(link)

    def closed(self, link: CustomerLink) -> None:
        self._links.discard(link)
        account_id = link.account_id
        if account_id is None:
            return
        self._binds.get(account_id, set()).discard(link)
        receivers = self._receivers.get(account_id)
        if receivers is not None and link in receivers:
            receivers.discard(link)
            for callback in self.on_unbound:
                callback(link)

    def bind_count(self, account_id: int) -> int:
        return len(self._binds.get(account_id, ()))

    def bound(self, link: CustomerLink) -> None:
        assert link.account_id is not None
        self._binds.setdefault(link.account_id, set()).add(link)
        if link.receives:
            self._receivers.setdefault(link.account_id, set()).add(link)
            for callback in self.on_bound:
                callback(link)

    def receivers(self, account_id: int) -> list[CustomerLink]:
        """The account's links that may be sent deliver_sm now."""
        return [link for link in self._receivers.get(account_id, ()) if link.is_open]
