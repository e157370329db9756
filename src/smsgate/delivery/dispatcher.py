"""The dispatcher: moves due messages from the queue to a carrier connection.

It claims due messages in batches under a lease, hands them to the connector,
and records each outcome as the connector reports it. A message is never
re-minted: retries reuse the same row, and a worker that dies mid-batch simply
lets its leases run out, after which another worker claims the same messages
again. That is at-least-once towards the carrier, and the duplicates are
bounded by the connector, not the batch: a connector sends at most its
uncommitted bound ahead of the outcomes the store has committed (see
``delivery.recorder``). Without a crash there are none: the claims in
hand are renewed while their messages wait, and a connector sends only on a
live claim (``delivery.claims``).

Up to ``pipeline`` claimed batches are worked on at once, so the store's
work (claiming the next batch, recording the last one's outcomes) happens
while the current batch is on the wire instead of between batches, and the
connector's window never drains while the database is busy.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from smsgate.aio import wait_for_event
from smsgate.core.states import UPSTREAM_REASONS, Reason, State, UpstreamCondition
from smsgate.delivery.claims import Claims
from smsgate.delivery.connectors.base import Ack, Connector
from smsgate.delivery.recorder import DeliveryRecorder
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
        self.claims = Claims(store, owner, lease_ms)
        self.recorder = DeliveryRecorder(store, owner, self.claims)
        """Where connectors send what carriers say: outcomes (through the
        dispatcher), receipts and inbound messages."""

    def wake(self) -> None:
        """Called by an in-process API after it queued work, to skip the poll delay."""
        self._wake.set()

    async def run(self, stopping: asyncio.Event) -> None:
        """Claim and deliver until ``stopping``; then finish the batches in hand."""
        in_hand: set[asyncio.Task[None]] = set()
        renewing = asyncio.create_task(self.claims.run(), name="claim-renewal")
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
            await self.recorder.idle()
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)

    async def dispatch_once(self) -> int:
        """Claim one batch and deliver it; the number of messages claimed."""
        claimed = await self._claim()
        if claimed:
            await self._deliver(claimed)
            await self.recorder.idle()
        return len(claimed)

    async def _claim(self) -> list[OutboundMessage]:
        asked_at = time.monotonic()
        claimed = await self._store.claim_due(self._owner, self._batch_size, self._lease_ms)
        self.claims.take(claimed, asked_at)
        return claimed

    async def _deliver_logged(self, claimed: list[OutboundMessage]) -> None:
        try:
            await self._deliver(claimed)
        except Exception:  # the leases run out and the messages are claimed again
            log.exception("delivering a batch of %d failed", len(claimed))
            await asyncio.sleep(1.0)

    async def _deliver(self, claimed: list[OutboundMessage]) -> None:
        exhausted = [m for m in claimed if m.attempts > self._max_attempts]
        ready = [m for m in claimed if m.attempts <= self._max_attempts]
        undeliverable: list[SubmitOutcome] = [
            Refused(
                m.id,
                State.FAILED,
                Reason.RETRIES_EXHAUSTED,
                f"gave up after {m.attempts - 1} attempts",
            )
            for m in exhausted
        ]
        await asyncio.gather(self.recorder.record_all(undeliverable), self._route(ready))

    async def _route(self, messages: Sequence[OutboundMessage]) -> None:
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
        await asyncio.gather(
            self.recorder.record_all(waiting),
            *(self._submit(connector, group) for connector, group in groups.values()),
        )

    async def _submit(self, connector: Connector, messages: Sequence[OutboundMessage]) -> None:
        handed = _Handover(self.recorder, self._router, connector.name, messages)
        try:
            await connector.submit(messages, handed, self.claims)
        except Exception as exc:  # the connection, not the messages, failed
            log.warning("connector %s failed a batch of %d: %s", connector.name, len(messages), exc)
            await self.recorder.record_all(
                [
                    RetryLater(m.id, self._retry_base_ms * 2 ** (m.attempts - 1), str(exc))
                    for m in messages
                    if m.id not in handed.message_ids
                ]
            )
        if handed.moved:
            # Out of credit or quota with another route to take: route
            # around it for a while, then try it again.
            log.warning(
                "connector %s is out of credit or quota; %d messages move to another route",
                connector.name,
                handed.moved,
            )
            self._router.hold(connector.name, self._upstream_hold_ms / 1000)
        if handed.condition is not None:
            # An upstream out of credit or over quota refuses the next messages
            # too; recording it lets every API process refuse new work (EAPI
            # 26/28) for a while.
            await self._store.report_condition(
                connector.name, handed.condition, self._store.clock() + self._upstream_hold_ms
            )


class _Handover:
    """Passes a connector's outcomes to the recorder, noting which messages
    have one and whether the upstream said it is out of credit or quota.

    A message refused for the upstream's credit or quota that has another
    route up is not failed: it is sent again at once, without using an
    attempt, and the connection is held (``moved``). Only a message with no
    other way out fails, and makes the API refuse new work for a while."""

    __slots__ = (
        "_by_id",
        "_connector",
        "_messages",
        "_recorder",
        "_router",
        "condition",
        "message_ids",
        "moved",
    )

    def __init__(
        self,
        recorder: DeliveryRecorder,
        router: Router,
        connector: str,
        messages: Sequence[OutboundMessage],
    ) -> None:
        self._recorder = recorder
        self._router = router
        self._connector = connector
        self._messages = messages
        # The batch by id, built only once an upstream refuses for its credit:
        # a dictionary per batch would cost every batch on the hot path.
        self._by_id: dict[int, OutboundMessage] | None = None
        self.message_ids: set[int] = set()
        self.condition: UpstreamCondition | None = None
        self.moved = 0

    def __call__(self, outcome: SubmitOutcome, ack: Ack) -> None:
        self.message_ids.add(outcome.message_id)
        if isinstance(outcome, Refused) and (condition := _CONDITION_OF.get(outcome.reason)):
            if self._another_route(outcome.message_id):
                self.moved += 1
                outcome = RetryLater(
                    outcome.message_id,
                    0,
                    f"{outcome.error}; sent by another route",
                    counts_attempt=False,
                    taken=outcome.taken,
                )
            elif self.condition is None:
                self.condition = condition
        self._recorder.outcome(outcome, ack)

    def _another_route(self, message_id: int) -> bool:
        """Whether a route other than this connection is up for the message."""
        if self._by_id is None:
            self._by_id = {m.id: m for m in self._messages}
        message = self._by_id.get(message_id)
        return (
            message is not None
            and self._router.choose(message, besides=self._connector) is not None
        )
