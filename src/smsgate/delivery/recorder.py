"""Committing what carriers say, as they say it: outcomes, receipts and inbound messages.

A connector hands over each message's outcome the moment the carrier answers,
and each receipt or inbound message the moment it arrives; the carrier learns
that we have a receipt (deliver_sm_resp), and a connector may send further
ahead, only once the store has committed it. Everything is therefore written
as one stream: whatever arrived while one transaction ran goes into the
next, outcomes, receipts and inbound messages together (on SQLite's single
writer, one commit instead of three), and each item's acknowledgement is
called once the transaction holding it has committed. If the store is
unreachable the same items are tried again and nothing is acknowledged
meanwhile, which stalls the connectors instead of letting them run ahead of
the record. Each outcome is recorded under the claim it was decided under
(``delivery.claims``), and that claim is spent once it is committed.

Every receipt is stored, matched or not (``store.receipts``); unmatched ones
from the last few minutes are matched again now and then, for a receipt
that came before another worker's commit of its submission (a failover in
the middle of traffic).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from smsgate.aio import wait_for_event
from smsgate.delivery.claims import Claims
from smsgate.delivery.connectors.base import Ack, AckCounter
from smsgate.store.records import InboundMessage, Receipt, SubmitOutcome
from smsgate.store.repo import Store

log = logging.getLogger(__name__)

MAX_GROUP = 2_000
"""Outcomes (and, separately, receipts) per transaction at most: keeps one
commit short when a backlog built up."""
REMATCH_WINDOW_MS = 10 * 60_000
"""How far back unmatched receipts are matched again: a submission recorded
by another worker lands within seconds, so older ones will not match."""


class DeliveryRecorder:
    def __init__(
        self,
        store: Store,
        owner: str,
        claims: Claims,
        *,
        retry_delay: float = 1.0,
        rematch_interval: float = 5.0,
    ) -> None:
        self._store = store
        self._owner = owner
        self._claims = claims
        self._retry_delay = retry_delay
        self._rematch_interval = rematch_interval
        self._outcomes: list[tuple[SubmitOutcome, Ack]] = []
        self._receipts: list[tuple[Receipt, Ack | None]] = []
        self._inbound: list[tuple[InboundMessage, Ack | None]] = []
        self._writer: asyncio.Task[None] | None = None
        self.recorded = 0  # receipts matched (duplicates included)
        self.unmatched = 0

    # ------------------------------------------------------------ the sinks

    def outcome(self, outcome: SubmitOutcome, ack: Ack) -> None:
        """A connector's (or the dispatcher's) word on one claimed message."""
        self._outcomes.append((outcome, ack))
        self._write_soon()

    def __call__(self, receipt: Receipt, ack: Ack | None = None) -> None:
        """The connectors' sink for receipts."""
        self._receipts.append((receipt, ack))
        self._write_soon()

    def inbound(self, message: InboundMessage, ack: Ack | None = None) -> None:
        """The connectors' sink for messages handsets send us."""
        self._inbound.append((message, ack))
        self._write_soon()

    async def record_all(self, outcomes: Sequence[SubmitOutcome]) -> None:
        """Record outcomes the dispatcher decided itself; return once committed."""
        acks = AckCounter()
        for outcome in outcomes:
            self.outcome(outcome, acks.owe())
        await acks.all_paid()

    @property
    def backlog(self) -> int:
        return len(self._outcomes) + len(self._receipts) + len(self._inbound)

    async def idle(self) -> None:
        """Wait until everything handed over so far is committed."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    async def run(self, stopping: asyncio.Event) -> None:
        """Match stored unmatched receipts again now and then, until ``stopping``."""
        while not stopping.is_set():
            await wait_for_event(stopping, self._rematch_interval)
            try:
                matched = await self._store.rematch_receipts(
                    self._store.clock() - REMATCH_WINDOW_MS
                )
            except Exception:
                log.exception("could not match stored receipts again")
                continue
            self.recorded += matched
        await self.idle()

    # ------------------------------------------------------------ the writer

    def _write_soon(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="delivery-recorder")

    async def _write(self) -> None:
        while self._outcomes or self._receipts or self._inbound:
            outcomes, self._outcomes = self._outcomes[:MAX_GROUP], self._outcomes[MAX_GROUP:]
            receipts, self._receipts = self._receipts[:MAX_GROUP], self._receipts[MAX_GROUP:]
            inbound, self._inbound = self._inbound, []
            ids = [outcome.message_id for outcome, _ in outcomes]
            tokens = {mid: token for mid in ids if (token := self._claims.token(mid)) is not None}
            try:
                tally = await self._store.record_delivery(
                    self._owner,
                    [outcome for outcome, _ in outcomes],
                    tokens,
                    [receipt for receipt, _ in receipts],
                    [message for message, _ in inbound],
                )
            except Exception:
                log.exception(
                    "could not record %d outcomes, %d receipts and %d inbound messages; will retry",
                    len(outcomes),
                    len(receipts),
                    len(inbound),
                )
                self._outcomes[:0], self._receipts[:0] = outcomes, receipts
                self._inbound[:0] = inbound
                await asyncio.sleep(self._retry_delay)
                continue
            self.recorded += tally.matched + tally.duplicates
            self.unmatched += tally.unmatched
            self._claims.release(ids)
            for _, ack in outcomes:
                ack()
            for _, maybe in (*receipts, *inbound):
                if maybe is not None:
                    maybe()
