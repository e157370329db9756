"""Which worker binds which carrier connection, cluster-wide.

An SMSC account allows a number of binds and a message rate for the whole
account, not per gateway process, so a connection shared through the
database (an SMPP connector) is bound by one worker at a time: the one that
holds its lease in ``connector_leases``. Each worker renews the leases it
holds every third of the lease and takes any lease whose holder has stopped
renewing, so a dead worker's connections are bound again elsewhere within
one lease period. A worker that cannot renew (it lost the database, or
another worker took over) unbinds before its lease could have run out, so two
workers never hold one connection's binds at once for longer than the clock
skew between them.

Connectors private to a process (the sandbox carrier) need no lease: every
worker runs its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from smsgate.aio import wait_for_event
from smsgate.delivery.connectors.base import Connector, InboundSink, ReceiptSink
from smsgate.store.repo import Store

log = logging.getLogger(__name__)


class ConnectorOwnership:
    def __init__(
        self,
        store: Store,
        connectors: Sequence[Connector],
        *,
        owner: str,
        lease_ms: int,
        receipts: ReceiptSink,
        inbound: InboundSink,
        also_reported: Sequence[Connector] = (),
    ) -> None:
        self._store = store
        self._connectors = list(connectors)
        # Connections every worker runs (upstream HTTP providers): no lease,
        # but the operator wants to see them failing all the same.
        self._also_reported = list(also_reported)
        self._owner = owner
        self._lease_ms = lease_ms
        self._receipts = receipts
        self._inbound = inbound
        self._bound: dict[str, float] = {}  # connector -> monotonic deadline of our lease

    @property
    def held(self) -> list[str]:
        return sorted(self._bound)

    async def run(self, stopping: asyncio.Event) -> None:
        """Hold, take and give up leases until ``stopping``; then keep what is
        held bound (the caller drains and stops the connectors, then calls
        ``release``)."""
        while not stopping.is_set():
            await self.renew()
            await wait_for_event(stopping, self._lease_ms / 3000)

    async def renew(self) -> None:
        for connector in self._connectors:
            try:
                held = await self._store.hold_connector_lease(
                    connector.name, self._owner, self._lease_ms
                )
            except Exception:
                log.exception("could not renew the lease of connector %s", connector.name)
                held = None
            if held:
                await self._bind(connector)
            elif held is False or self._lease_lapsing(connector.name):
                await self._unbind(connector)
        await self._report_health()

    async def _report_health(self) -> None:
        """Tell the operator (``smsgate connectors list``, the console) what the
        held connections are doing: bound, or failing since when and why."""
        reports = [c.health() for c in self._connectors if c.name in self._bound]
        reports += [c.health() for c in self._also_reported]
        try:
            await self._store.report_health(self._owner, reports)
        except Exception:
            log.exception("could not record the health of %d connections", len(reports))

    async def _bind(self, connector: Connector) -> None:
        # Renewed just now; unbind well before another worker may take over.
        deadline = time.monotonic() + self._lease_ms / 1000 * 0.8
        if connector.name not in self._bound:
            log.info("worker %s binds connector %s", self._owner, connector.name)
            await connector.start(self._receipts, self._inbound)
        self._bound[connector.name] = deadline

    def _lease_lapsing(self, name: str) -> bool:
        deadline = self._bound.get(name)
        return deadline is not None and time.monotonic() >= deadline

    async def _unbind(self, connector: Connector) -> None:
        if self._bound.pop(connector.name, None) is not None:
            log.warning("worker %s gives up connector %s", self._owner, connector.name)
            await connector.stop()

    async def release(self) -> None:
        """After the held connectors are stopped: let another worker take them at once."""
        names, self._bound = list(self._bound), {}
        for name in names:
            try:
                await self._store.release_connector_lease(name, self._owner)
            except Exception:
                log.exception("could not release the lease of connector %s", name)
