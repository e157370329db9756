"""Asking upstream HTTP providers about messages they took, for those whose
reports do not come by push (or do not always come).

A connection with ``poll=SECONDS`` has its unreported messages asked about in
passes: each pass walks them in submission order (those taken at least
``poll`` seconds ago), a page at a time, asks the provider as its dialect
allows (``getdlr`` per message, ``get_report`` per EAPI batch), and hands
every final report to the recorder, which stores and matches it as it does a
pushed one (a report that came by both ways is a harmless duplicate). A pass
that finds nothing more to ask waits ``poll`` seconds before the next starts
again from the oldest. A message never reported on is ended by its
connection's receipt timeout, the give-up time polling shares with pushes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from smsgate.aio import wait_for_event
from smsgate.delivery.connectors.base import ReceiptSink
from smsgate.delivery.connectors.upstream import HttpConnector
from smsgate.store.repo import Store

log = logging.getLogger(__name__)

PAGE = 100
"""Messages asked about in one step of a pass."""


@dataclass
class _Pass:
    connector: HttpConnector
    poll_ms: int
    after: tuple[int, int] = (0, 0)  # (submitted_at, id) of the last message asked about
    next_start: int = 0  # when a new pass may begin


class ReceiptPoller:
    def __init__(
        self, store: Store, connectors: Sequence[HttpConnector], sink: ReceiptSink
    ) -> None:
        self._store = store
        self._sink = sink
        self._passes = [
            _Pass(c, int(c.poll_seconds * 1000)) for c in connectors if c.poll_seconds > 0
        ]

    @property
    def needed(self) -> bool:
        return bool(self._passes)

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            busy = False
            for each in self._passes:
                try:
                    busy |= await self._step(each)
                except Exception:
                    log.exception("polling upstream %s failed", each.connector.name)
            await wait_for_event(stopping, 0.05 if busy else 0.5)

    async def _step(self, each: _Pass) -> bool:
        """Ask about the next page of one connection; whether there was one."""
        now = self._store.clock()
        if now < each.next_start or not each.connector.is_up:
            return False
        rows = await self._store.unreported(
            each.connector.name,
            after=each.after,
            submitted_before_ms=now - each.poll_ms,
            limit=PAGE,
        )
        if not rows:
            each.after, each.next_start = (0, 0), now + each.poll_ms
            return False
        each.after = rows[-1][0], rows[-1][1]
        for receipt in await each.connector.poll([ref for _, _, ref in rows]):
            self._sink(receipt)
        return True
