"""Batching carrier receipts (and inbound messages) into the store.

Receipts arrive one by one from connectors; writing each in its own
transaction would cap throughput at the database's commit rate, so they are
collected and written together. A receipt can also overtake the record of its
own submission (the carrier answers the submit and sends the receipt before
our commit lands): such a receipt matches nothing yet and is kept and retried
for ``hold_ms`` instead of being dropped.
"""

from __future__ import annotations

import asyncio
import logging

from smsgate.aio import wait_for_event
from smsgate.delivery.connectors.base import Ack
from smsgate.store.records import InboundMessage, Receipt
from smsgate.store.repo import Store

log = logging.getLogger(__name__)


class ReceiptRecorder:
    def __init__(
        self, store: Store, *, flush_interval: float = 0.02, hold_ms: int = 120_000
    ) -> None:
        self._store = store
        self._flush_interval = flush_interval
        self._hold_ms = hold_ms
        self._incoming: list[Receipt] = []
        self._inbound: list[InboundMessage] = []
        self._acks: list[Ack] = []  # called after the flush that stored their items
        self._waiting: dict[Receipt, int] = {}
        self._arrived = asyncio.Event()
        self.recorded = 0

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
        return len(self._incoming) + len(self._waiting)

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set() or self._incoming or self._inbound:
            if not self._incoming and not self._inbound:
                timeout = self._flush_interval * (10 if self._waiting else 100)
                await wait_for_event(self._arrived, timeout)
            self._arrived.clear()
            await self.flush()
            await asyncio.sleep(self._flush_interval)

    async def flush(self) -> None:
        acks, self._acks = self._acks, []
        stored = await self._flush_inbound() and await self._flush_receipts()
        if not stored:
            self._acks = acks + self._acks
            return
        for ack in acks:
            ack()

    async def _flush_receipts(self) -> bool:
        batch, self._incoming = self._incoming, []
        now = self._store.clock()
        retry = [r for r, first_seen in self._waiting.items() if now - first_seen < self._hold_ms]
        expired = len(self._waiting) - len(retry)
        if expired:
            log.warning("dropping %d receipts that matched no submitted message", expired)
        candidates = batch + retry
        if not candidates:
            self._waiting = {}
            return True
        try:
            unmatched = await self._store.record_receipts(candidates)
        except Exception:
            log.exception("could not record %d receipts; will retry", len(candidates))
            self._incoming = batch + self._incoming
            self._waiting = {r: self._waiting[r] for r in retry}
            return False
        first_seen = {r: self._waiting.get(r, now) for r in unmatched}
        self.recorded += len(candidates) - len(unmatched)
        self._waiting = first_seen
        return True

    async def _flush_inbound(self) -> bool:
        batch, self._inbound = self._inbound, []
        if not batch:
            return True
        try:
            await self._store.record_inbound(batch)
        except Exception:
            log.exception("could not record %d inbound messages; will retry", len(batch))
            self._inbound = batch + self._inbound
            return False
        return True
