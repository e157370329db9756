"""Batching carrier receipts (and inbound messages) into the store.

Receipts arrive one by one from connectors; writing each in its own
transaction would cap throughput at the database's commit rate, so they are
collected and written together, and each is acknowledged to its carrier
only once the transaction holding it has committed. Every receipt is stored,
matched or not (``store.receipts``): nothing is held in memory where a
killed worker would lose it after the carrier was told it arrived.

A receipt can come before its submission is recorded by another worker (a
failover in the middle of traffic); such a receipt is stored as unmatched,
and unmatched receipts of the last few minutes are matched again now and
then, so it finds its part once that commit lands.
"""

from __future__ import annotations

import asyncio
import logging
import time

from smsgate.aio import wait_for_event
from smsgate.delivery.connectors.base import Ack
from smsgate.store.records import InboundMessage, Receipt
from smsgate.store.repo import Store

log = logging.getLogger(__name__)

REMATCH_WINDOW_MS = 10 * 60_000
"""How far back unmatched receipts are matched again: a submission recorded
by another worker lands within seconds, so older ones will not match."""


class ReceiptRecorder:
    def __init__(
        self,
        store: Store,
        *,
        flush_interval: float = 0.02,
        rematch_interval: float = 5.0,
        retry_delay: float = 1.0,
    ) -> None:
        self._store = store
        self._flush_interval = flush_interval
        self._rematch_interval = rematch_interval
        self._retry_delay = retry_delay
        self._incoming: list[Receipt] = []
        self._inbound: list[InboundMessage] = []
        self._acks: list[Ack] = []  # called after the flush that stored their items
        self._arrived = asyncio.Event()
        self._next_rematch = 0.0
        self.recorded = 0
        self.unmatched = 0

    def __call__(self, receipt: Receipt, ack: Ack | None = None) -> None:
        self._incoming.append(receipt)
        if ack is not None:
            self._acks.append(ack)
        self._arrived.set()

    def inbound(self, message: InboundMessage, ack: Ack | None = None) -> None:
        """The connectors' sink for messages handsets send us."""
        self._inbound.append(message)
        if ack is not None:
            self._acks.append(ack)
        self._arrived.set()

    def wake(self) -> None:
        """Cut the idle wait short (new receipts, or shutdown)."""
        self._arrived.set()

    @property
    def backlog(self) -> int:
        return len(self._incoming) + len(self._inbound)

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set() or self._incoming or self._inbound:
            if not self._incoming and not self._inbound:
                await wait_for_event(self._arrived, self._rematch_interval)
            self._arrived.clear()
            if not await self.flush():
                await asyncio.sleep(self._retry_delay)
            await self._rematch_now_and_then()
            await asyncio.sleep(self._flush_interval)

    async def flush(self) -> bool:
        """Store what arrived; True once it is committed (and acknowledged)."""
        acks, self._acks = self._acks, []
        receipts, self._incoming = self._incoming, []
        inbound, self._inbound = self._inbound, []
        try:
            if inbound:
                await self._store.record_inbound(inbound)
                inbound = []
            if receipts:
                tally = await self._store.record_receipts(receipts)
                self.recorded += tally.matched + tally.duplicates
                self.unmatched += tally.unmatched
        except Exception:
            log.exception(
                "could not record %d receipts and %d inbound messages; will retry",
                len(receipts),
                len(inbound),
            )
            self._incoming[:0], self._inbound[:0] = receipts, inbound
            self._acks[:0] = acks
            return False
        for ack in acks:
            ack()
        return True

    async def _rematch_now_and_then(self) -> None:
        now = time.monotonic()
        if now < self._next_rematch:
            return
        self._next_rematch = now + self._rematch_interval
        try:
            matched = await self._store.rematch_receipts(self._store.clock() - REMATCH_WINDOW_MS)
        except Exception:
            log.exception("could not match stored receipts again")
            return
        self.recorded += matched
