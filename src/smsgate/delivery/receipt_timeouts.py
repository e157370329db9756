"""Ending messages whose receipt never came.

A carrier that loses a receipt (or never sends one) would leave its message
``submitted`` forever, and the customer waiting for a final word that never
comes. Each connection has a receipt timeout (48 hours unless configured):
a message it took longer ago than that, with no receipt, ends ``unknown``
(Telesign 250 "final status unknown", EAPI 70, partnerID/apikey "Unknown"),
which is pushed like any final state. It is not refunded: the carrier took
the message, and most such messages were delivered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from smsgate.aio import wait_for_event
from smsgate.delivery.connectors.base import Connector
from smsgate.store.repo import Store

log = logging.getLogger(__name__)


class ReceiptTimeouts:
    def __init__(
        self, store: Store, connectors: Sequence[Connector], *, interval: float = 60.0
    ) -> None:
        self._store = store
        self._connectors = list(connectors)
        self._interval = interval

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            await self.sweep()
            await wait_for_event(stopping, self._interval)

    async def sweep(self) -> int:
        """End every overdue message of every connection; how many ended."""
        ended = 0
        for connector in self._connectors:
            cutoff = self._store.clock() - connector.receipt_timeout_ms
            try:
                while True:
                    count = await self._store.end_unreported(connector.name, cutoff)
                    ended += count
                    if count == 0:
                        break
            except Exception:
                log.exception("could not end the overdue messages of connector %s", connector.name)
        if ended:
            log.warning("%d messages got no receipt in time and ended unknown", ended)
        return ended
