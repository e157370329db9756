"""Wiring one smsgate process together from its settings.

``serve`` runs the HTTP API and, by default, the workers in the same event
loop (the embedded mode a laptop needs); ``worker`` runs only the workers.
Either way the same ``Runtime`` builds the parts, so the two modes cannot
drift apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from typing import Any

import uvicorn
from starlette.applications import Starlette

from smsgate.aio import wait_for_event
from smsgate.api.app import create_app
from smsgate.api.connections import ACCEPT_BATCH, ConnectionGuard, connection_limit
from smsgate.api.dialects import advanta, eapi, telesign
from smsgate.config import Settings
from smsgate.core.states import UpstreamCondition
from smsgate.delivery.connectors.base import Connector
from smsgate.delivery.connectors.http import http_connector
from smsgate.delivery.connectors.http_settings import HttpSettings
from smsgate.delivery.connectors.sandbox import SandboxConnector
from smsgate.delivery.connectors.smpp import SmppConnector, SmppSettings
from smsgate.delivery.connectors.upstream import HttpConnector
from smsgate.delivery.dispatcher import Dispatcher
from smsgate.delivery.ownership import ConnectorOwnership
from smsgate.delivery.receipt_timeouts import ReceiptTimeouts
from smsgate.delivery.routing import Route, Router
from smsgate.delivery.upstream_polling import UpstreamQueries
from smsgate.gateway import Gateway
from smsgate.notify.callbacks import CallbackFormat, Notifier
from smsgate.observe import metrics
from smsgate.observe.endpoints import observe_routes
from smsgate.processes import WakePipe
from smsgate.secret_box import SecretBox
from smsgate.smpp.server import SmppServer
from smsgate.store.repo import Store

log = logging.getLogger(__name__)

LISTEN_QUEUE = 2048


class Runtime:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        secrets: SecretBox,
        router: Router,
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.secrets = secrets
        self.router = router
        self.dispatcher = Dispatcher(
            store,
            router,
            owner=settings.worker_id,
            batch_size=settings.dispatch_batch_size,
            lease_ms=int(settings.lease_seconds * 1000),
            idle_poll=settings.dispatch_idle_poll,
            retry_base_ms=int(settings.retry_base_seconds * 1000),
            max_attempts=settings.max_attempts,
            upstream_hold_ms=int(settings.upstream_hold_seconds * 1000),
        )
        callback_formats: dict[str, CallbackFormat] = {
            advanta.DIALECT: advanta.CALLBACKS,
            eapi.DIALECT: eapi.CALLBACKS,
            telesign.DIALECT: telesign.SignedCallbacks(store, self.secrets).format(),
        }
        self.notifier = Notifier(
            store,
            callback_formats,
            time_scale=settings.callback_time_scale,
            timeout=settings.callback_timeout,
            batch_size=settings.callback_batch_size,
        )
        self.gateway = Gateway(
            store,
            settings,
            on_queued=on_queued or self.dispatcher.wake,
            connectors=[c.name for c in router.connectors],
        )

    @classmethod
    async def open(cls, settings: Settings, on_queued: Callable[[], None] | None = None) -> Runtime:
        """``on_queued``: what a queued message wakes, by default this process's dispatcher."""
        store = await Store.open(
            settings.effective_database_url, sqlite_synchronous=settings.sqlite_synchronous
        )
        secrets = SecretBox.for_settings(settings)
        metrics.account_label.limit = settings.metrics_max_accounts
        router = await load_router(store, settings, secrets)
        return cls(settings, store, secrets, router, on_queued)

    async def close(self) -> None:
        await self.store.close()

    @contextlib.asynccontextmanager
    async def workers(self) -> AsyncIterator[None]:
        """Run dispatcher, receipt recorder, notifier and connector leases until
        the block exits.

        On exit (SIGTERM): stop claiming, let the batches in hand finish on the
        wire and pending receipts be stored, unbind, then give up the leases
        so another worker binds those connections at once.
        """
        stopping, unbound = asyncio.Event(), asyncio.Event()
        recorder = self.dispatcher.recorder
        private = [c for c in self.router.connectors if not c.shared]
        upstreams = [c for c in private if isinstance(c, HttpConnector)]
        for connector in private:
            await connector.start(recorder, recorder.inbound)
            if isinstance(connector, SandboxConnector):
                connector.resume(await self.store.awaiting_receipts(connector.name))
        started_at = self.store.clock()
        ownership = ConnectorOwnership(
            self.store,
            [c for c in self.router.connectors if c.shared],
            owner=self.settings.worker_id,
            lease_ms=int(self.settings.connector_lease_seconds * 1000),
            receipts=recorder,
            inbound=recorder.inbound,
            also_reported=upstreams,
        )
        await ownership.renew()  # bind what is free before the first claim
        leases = asyncio.create_task(ownership.run(unbound), name="connector-leases")
        timeouts = ReceiptTimeouts(self.store, self.router.connectors)
        tasks = [
            asyncio.create_task(self.dispatcher.run(stopping), name="dispatcher"),
            asyncio.create_task(self.notifier.run(stopping), name="notifier"),
            asyncio.create_task(timeouts.run(stopping), name="receipt-timeouts"),
        ]
        queries = UpstreamQueries(self.store, upstreams, recorder)
        if queries.needed:
            tasks.append(asyncio.create_task(queries.run(stopping), name="upstream-queries"))
        rematching = asyncio.create_task(recorder.run(stopping), name="receipts-rematch")
        heartbeat = asyncio.create_task(self._heartbeat(stopping, started_at), name="heartbeat")
        try:
            yield
        finally:
            stopping.set()
            self.dispatcher.wake()  # out of its idle poll now, not at its end
            await asyncio.gather(*tasks, rematching, heartbeat, return_exceptions=True)
            for connector in self.router.connectors:
                await connector.stop()
            await recorder.idle()  # what came in while unbinding
            unbound.set()
            await asyncio.gather(leases, return_exceptions=True)
            await ownership.release()
            with contextlib.suppress(Exception):
                await self.store.forget_worker(self.settings.worker_id)

    async def _heartbeat(self, stopping: asyncio.Event, started_at: int) -> None:
        """Report this worker in every ``heartbeat_seconds`` (what /readyz reads)."""
        # The first report waits a moment, so it can already say the dispatcher claims.
        pause = min(1.0, self.settings.heartbeat_seconds)
        while not await wait_for_event(stopping, pause):
            try:
                await self.store.heartbeat(self.settings.worker_id, "worker", started_at)
            except Exception as exc:
                log.warning("worker heartbeat not stored: %s", exc)
            pause = self.settings.heartbeat_seconds

    def app(self, *, with_workers: bool) -> Starlette:
        @contextlib.asynccontextmanager
        async def lifespan(_app: Starlette) -> AsyncIterator[None]:
            settle_garbage_collector()
            if with_workers:
                async with self.workers():
                    yield
            else:
                yield

        sandboxes = [c for c in self.router.connectors if isinstance(c, SandboxConnector)]
        return create_app(self.gateway, self.secrets, lifespan, sandboxes)  # type: ignore[return-value]

    def observe_app(self) -> Starlette:
        """A worker's own small HTTP server: /healthz, /readyz and /metrics."""
        return Starlette(routes=observe_routes(self.store, self.settings))


async def load_router(store: Store, settings: Settings, secrets: SecretBox) -> Router:
    """The connectors and routes stored with ``smsgate connectors``/``routes``; the
    default for unrouted destinations is ``SMSGATE_SMPP_URL`` if set, else the sandbox."""
    default: Connector = (
        SmppConnector(SmppSettings.from_url(settings.smpp_url))
        if settings.smpp_url
        else SandboxConnector(
            latency_ms=settings.sandbox_latency_ms,
            receipt_delay_ms=settings.sandbox_receipt_delay_ms,
            rules=settings.sandbox_rules,
            upstream=UpstreamCondition(settings.sandbox_upstream),
        )
    )
    connectors: dict[str, Connector] = {default.name: default}
    for row in await store.connectors():
        url = secrets.decrypt(row.sealed_url)
        connectors[row.name] = (
            http_connector(replace(HttpSettings.from_url(url), name=row.name))
            if row.kind == "http"
            else SmppConnector(replace(SmppSettings.from_url(url), name=row.name))
        )
    routes = [
        Route(r.prefix, r.routing_group, r.connector, r.priority, r.price)
        for r in await store.routes()
    ]
    return Router(routes, connectors, default)


def settle_garbage_collector() -> None:
    """Keep the cyclic garbage collector off the long-lived startup objects.

    A 30,000-row batch allocates some 150,000 short-lived objects; each full
    collection they trigger used to walk every module, table and cache loaded
    at startup too, which cost as much as parsing the batch. Freezing what
    exists once the process is up, and collecting the youngest generation less
    often, took about 150 ms off that request. Nothing here is cyclic garbage.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def listening_socket(host: str, port: int, *, shared_port: bool = False) -> socket.socket:
    """Bind the HTTP port before anything else starts, so a taken port is
    reported at once and no worker or bind starts in a process that cannot serve.

    ``shared_port``: one of several sockets of this server on one port
    (SO_REUSEPORT), among which the kernel spreads new connections evenly;
    bind one without it first, so a port already in use is still refused.

    Raises ``OSError`` (the port is taken, the address is not ours).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP spelled out: asyncio turns Nagle off (TCP_NODELAY) only on
    # sockets whose protocol says TCP, and accepted sockets inherit it. With
    # protocol 0, a reply written as head then body waited for the client's
    # delayed ACK, 40 ms a request on a keep-alive connection.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if shared_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_QUEUE)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """uvicorn, with SIGINT and SIGTERM asking it to stop and nothing more.

    uvicorn re-raises a caught signal once it has stopped serving, which
    interrupted closing the database mid-way (a traceback on every Ctrl-C).
    """

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        # asyncio listens with its accept batch (``backlog``); the kernel's
        # queue stays long, so a burst of connections waits there instead of
        # having its SYNs dropped (a probe retrying one waits a second).
        for sock in sockets or ():
            sock.listen(LISTEN_QUEUE)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        handled = (signal.SIGINT, signal.SIGTERM)
        for sig in handled:
            loop.add_signal_handler(sig, self._stop)
        try:
            yield
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)

    def _stop(self) -> None:
        self.should_exit = True


GRACEFUL_SHUTDOWN_SECONDS = 5


def http_config(
    app: Starlette, settings: Settings, *, max_connections: int | None = None, **options: Any
) -> uvicorn.Config:
    """uvicorn's settings for an smsgate HTTP server: the header deadline and
    connection cap of ``api.connections``; ``options`` are uvicorn's own."""
    guard = ConnectionGuard(
        max_connections=max_connections or settings.max_connections,
        header_timeout=settings.header_timeout,
    )
    # log_config=None: our logging set-up (observe.logs) stays in charge.
    values: dict[str, Any] = {
        "log_config": None,
        "access_log": False,
        "lifespan": "on",
        "backlog": ACCEPT_BATCH,
        # A stop waits this long for responses in progress: every request
        # finishes in well under it, and the console's live streams, which
        # would hold a stop for as long as a page is open, are cut.
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
    }
    values.update(options)
    return uvicorn.Config(app, http=guard.protocol(), **values)


async def serve(
    settings: Settings,
    sock: socket.socket,
    *,
    with_workers: bool = True,
    with_smpp: bool = True,
    wake: WakePipe | None = None,
) -> None:
    """Serve the API on the already bound ``sock`` (see ``listening_socket``)
    until SIGINT or SIGTERM. With ``wake`` (one of several processes, see
    ``smsgate.processes``), the workers listen to it, or the API wakes them
    through it. ``with_smpp``: this process may hold the customer SMPP port
    (if enabled); of several processes, one does."""
    runtime = await Runtime.open(
        settings, on_queued=wake.notify if wake is not None and not with_workers else None
    )
    if wake is not None and with_workers:
        wake.listen(runtime.dispatcher.wake)
    config = http_config(
        runtime.app(with_workers=with_workers),
        settings,
        max_connections=connection_limit(settings.max_connections),
    )
    smpp = await start_smpp_server(runtime) if with_smpp else None
    try:
        await _Server(config).serve(sockets=[sock])
    finally:
        if smpp is not None:
            await smpp.stop()
        await runtime.close()


async def start_smpp_server(runtime: Runtime, *, enabled: bool | None = None) -> SmppServer | None:
    """The customer SMPP server on the runtime's gateway, listening, if enabled
    (SMSGATE_SMPP_SERVER_ENABLED, or ``enabled``); None otherwise."""
    settings = runtime.settings
    if not (settings.smpp_server_enabled if enabled is None else enabled):
        return None
    server = SmppServer(runtime.gateway, settings)
    await server.start()
    return server


async def run_smpp_server(settings: Settings) -> None:
    """Only the customer SMPP server (the ``smpp-server`` role), until SIGTERM
    or SIGINT: it accepts into the shared database, and workers elsewhere
    deliver what it accepted."""
    runtime = await Runtime.open(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await start_smpp_server(runtime, enabled=True)
    assert server is not None
    try:
        await stop.wait()
    finally:
        await server.stop()
        await runtime.close()


async def run_worker(settings: Settings, metrics_sock: socket.socket | None = None) -> None:
    """The workers, until SIGTERM or SIGINT; with ``metrics_sock``, also their
    /healthz, /readyz and /metrics on it."""
    runtime = await Runtime.open(settings)
    settle_garbage_collector()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    listener = None
    try:
        async with runtime.workers():
            if metrics_sock is not None:
                config = http_config(
                    runtime.observe_app(),
                    settings,
                    max_connections=connection_limit(settings.max_connections),
                    lifespan="off",
                )
                server = uvicorn.Server(config)
                server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
                listener = asyncio.create_task(server.serve(sockets=[metrics_sock]))
            log.info("worker %s running", settings.worker_id)
            await stop.wait()
            if listener is not None:
                server.should_exit = True
                await listener
    finally:
        await runtime.close()
