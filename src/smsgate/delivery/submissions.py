"""Committing what connectors say about each message, as they say it.

A connector hands over each message's outcome the moment the carrier answers,
and may not send much further ahead until that outcome is committed (its
window bounds what a crash can make it send twice). So outcomes are written
as a stream, not per claimed batch: whatever arrived while one transaction
ran goes into the next, and each outcome's acknowledgement is called once
the transaction holding it has committed. If the store is unreachable the
same outcomes are tried again and nothing is acknowledged meanwhile, which
stalls the connectors instead of letting them run ahead of the record. Each
outcome is recorded under the claim it was decided under, and that claim
is spent once it is committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from smsgate.delivery.claims import Claims
from smsgate.delivery.connectors.base import Ack, AckCounter
from smsgate.store.records import SubmitOutcome
from smsgate.store.repo import Store

log = logging.getLogger(__name__)

MAX_GROUP = 2_000
"""Outcomes per transaction at most: keeps one commit short when a backlog built up."""


class SubmissionRecorder:
    def __init__(
        self, store: Store, owner: str, claims: Claims, *, retry_delay: float = 1.0
    ) -> None:
        self._store = store
        self._owner = owner
        self._claims = claims
        self._retry_delay = retry_delay
        self._outcomes: list[SubmitOutcome] = []
        self._acks: list[Ack] = []
        self._writer: asyncio.Task[None] | None = None

    def __call__(self, outcome: SubmitOutcome, ack: Ack) -> None:
        self._outcomes.append(outcome)
        self._acks.append(ack)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="submission-recorder")

    async def record_all(self, outcomes: Sequence[SubmitOutcome]) -> None:
        """Record outcomes the dispatcher decided itself; return once committed."""
        acks = AckCounter()
        for outcome in outcomes:
            self(outcome, acks.owe())
        await acks.all_paid()

    async def idle(self) -> None:
        """Wait until everything handed over so far is committed."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    async def _write(self) -> None:
        while self._outcomes:
            outcomes, acks = self._outcomes[:MAX_GROUP], self._acks[:MAX_GROUP]
            del self._outcomes[:MAX_GROUP], self._acks[:MAX_GROUP]
            ids = [outcome.message_id for outcome in outcomes]
            tokens = {mid: token for mid in ids if (token := self._claims.token(mid)) is not None}
            try:
                await self._store.record_submissions(self._owner, outcomes, tokens)
            except Exception:
                log.exception("could not record %d outcomes; will retry", len(outcomes))
                self._outcomes[:0], self._acks[:0] = outcomes, acks
                await asyncio.sleep(self._retry_delay)
                continue
            self._claims.release(ids)
            for ack in acks:
                ack()
