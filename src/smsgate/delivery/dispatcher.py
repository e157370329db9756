"""The dispatcher: moves due messages from the queue to a carrier connection.

It claims due messages in batches under a lease, hands them to the connector,
and records each outcome. A message is never re-minted: retries reuse the same
row, and a worker that dies mid-batch simply lets its leases run out, after
which another worker claims the same messages again (at-least-once towards
the carrier, the duplicate window being the in-flight batch).

Up to ``pipeline`` claimed batches are worked on at once, so the store's
work (claiming the next batch, recording the last one's outcomes) happens
while the current batch is on the wire instead of between batches, and the
connector's window never drains while the database is busy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from smsgate.aio import wait_for_event
from smsgate.core.states import UPSTREAM_REASONS, Reason, State
from smsgate.delivery.connectors.base import Connector
from smsgate.delivery.routing import Router
from smsgate.store.records import OutboundMessage, Refused, RetryLater, SubmitOutcome
from smsgate.store.repo import Store

log = logging.getLogger(__name__)

_CONDITION_OF = {reason: condition for condition, reason in UPSTREAM_REASONS.items()}


class Dispatcher:
    def __init__(
        self,
        store: Store,
        router: Router,
        *,
        owner: str,
        batch_size: int = 500,
        lease_ms: int = 30_000,
        idle_poll: float = 0.05,
        retry_base_ms: int = 5_000,
        max_attempts: int = 5,
        upstream_hold_ms: int = 60_000,
        pipeline: int = 2,
    ) -> None:
        self._store = store
        self._router = router
        self._owner = owner
        self._batch_size = batch_size
        self._lease_ms = lease_ms
        self._idle_poll = idle_poll
        self._retry_base_ms = retry_base_ms
        self._max_attempts = max_attempts
        self._upstream_hold_ms = upstream_hold_ms
        self._pipeline = max(pipeline, 1)
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Called by an in-process API after it queued work, to skip the poll delay."""
        self._wake.set()

    async def run(self, stopping: asyncio.Event) -> None:
        """Claim and deliver until ``stopping``; then finish the batches in hand."""
        in_hand: set[asyncio.Task[None]] = set()
        try:
            while not stopping.is_set():
                if len(in_hand) >= self._pipeline:
                    await asyncio.wait(in_hand, return_when=asyncio.FIRST_COMPLETED)
                    continue
                if not self._router.any_up:
                    self._wake.clear()  # new work changes nothing until a connection is up
                    await wait_for_event(self._wake, self._idle_poll)
                    continue
                try:
                    claimed = await self._claim()
                except Exception:
                    log.exception("claiming failed; backing off")
                    await asyncio.sleep(1.0)
                    continue
                if claimed:
                    task = asyncio.create_task(self._deliver_logged(claimed))
                    in_hand.add(task)
                    task.add_done_callback(in_hand.discard)
                if len(claimed) < self._batch_size:
                    self._wake.clear()
                    await wait_for_event(self._wake, self._idle_poll)
        finally:
            if in_hand:
                await asyncio.gather(*in_hand, return_exceptions=True)

    async def dispatch_once(self) -> int:
        """Claim one batch and deliver it; the number of messages claimed."""
        claimed = await self._claim()
        if claimed:
            await self._deliver(claimed)
        return len(claimed)

    async def _claim(self) -> list[OutboundMessage]:
        return await self._store.claim_due(self._owner, self._batch_size, self._lease_ms)

    async def _deliver_logged(self, claimed: list[OutboundMessage]) -> None:
        try:
            await self._deliver(claimed)
        except Exception:  # the leases run out and the messages are claimed again
            log.exception("delivering a batch of %d failed", len(claimed))
            await asyncio.sleep(1.0)

    async def _deliver(self, claimed: list[OutboundMessage]) -> None:
        exhausted = [m for m in claimed if m.attempts > self._max_attempts]
        ready = [m for m in claimed if m.attempts <= self._max_attempts]
        outcomes: list[SubmitOutcome] = [
            Refused(
                m.id,
                State.FAILED,
                Reason.RETRIES_EXHAUSTED,
                f"gave up after {m.attempts - 1} attempts",
            )
            for m in exhausted
        ]
        outcomes.extend(await self._route(ready))
        await self._store.record_submissions(self._owner, outcomes)

    async def _route(self, messages: Sequence[OutboundMessage]) -> list[SubmitOutcome]:
        """Each connector gets its share of the batch, all at once."""
        groups: dict[int, tuple[Connector, list[OutboundMessage]]] = {}
        waiting: list[SubmitOutcome] = []
        for message in messages:
            connector = self._router.choose(message)
            if connector is None:
                waiting.append(
                    RetryLater(
                        message.id,
                        self._retry_base_ms,
                        "every route's connector is down",
                        counts_attempt=False,
                    )
                )
                continue
            groups.setdefault(id(connector), (connector, []))[1].append(message)
        results = await asyncio.gather(
            *(self._submit(connector, group) for connector, group in groups.values())
        )
        return waiting + [outcome for result in results for outcome in result]

    async def _submit(
        self, connector: Connector, messages: Sequence[OutboundMessage]
    ) -> list[SubmitOutcome]:
        try:
            outcomes = await connector.submit(messages)
        except Exception as exc:  # the connection, not the messages, failed
            log.warning("connector %s failed a batch of %d: %s", connector.name, len(messages), exc)
            return [
                RetryLater(m.id, self._retry_base_ms * 2 ** (m.attempts - 1), str(exc))
                for m in messages
            ]
        await self._note_upstream_condition(connector, outcomes)
        return outcomes

    async def _note_upstream_condition(
        self, connector: Connector, outcomes: Sequence[SubmitOutcome]
    ) -> None:
        """An upstream out of credit or over quota refuses the next messages too;
        recording it lets every API process refuse new work (EAPI 26/28) for a while."""
        for outcome in outcomes:
            if isinstance(outcome, Refused) and outcome.reason in _CONDITION_OF:
                await self._store.report_condition(
                    connector.name,
                    _CONDITION_OF[outcome.reason],
                    self._store.clock() + self._upstream_hold_ms,
                )
                return
