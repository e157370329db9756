"""The claims a worker holds on the messages in its hands, kept alive while they wait.

A claimed message may wait in a connector far longer than a lease (a carrier
throttling to two messages a second drains a batch of 500 in minutes). If
the lease ran out meanwhile, the same or another worker would claim the
message again and both copies would go out, without any crash. So every
claim in hand is renewed well before it runs out, and a connector asks
``live`` before it sends: a claim that could not be renewed (the database
is unreachable, or another worker took the message) is never sent on. The
claim's attempt number is its token: the store accepts an outcome only from
the claim it was decided under (see ``Store.record_submissions``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence

from smsgate.store.records import OutboundMessage
from smsgate.store.repo import Store

log = logging.getLogger(__name__)

_TRUSTED_SHARE = 0.8
"""How much of a lease a claim is trusted for locally, leaving a margin for
clock skew and for the time a send takes to leave."""


class Claims:
    def __init__(
        self,
        store: Store,
        owner: str,
        lease_ms: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._owner = owner
        self._lease_ms = lease_ms
        self._clock = clock
        # message id -> (attempt number of the claim, local deadline it is trusted until)
        self._held: dict[int, tuple[int, float]] = {}

    def __len__(self) -> int:
        return len(self._held)

    def take(self, messages: Iterable[OutboundMessage], claimed_at: float) -> None:
        """Hold freshly claimed messages; ``claimed_at`` is when the claim was asked."""
        deadline = claimed_at + self._trusted_seconds
        for message in messages:
            self._held[message.id] = (message.attempts, deadline)

    def live(self, message_id: int) -> bool:
        """Whether the claim is still ours for sure: the only condition to send on."""
        held = self._held.get(message_id)
        return held is not None and self._clock() < held[1]

    def token(self, message_id: int) -> int | None:
        """The attempt number the claim was taken with, while it is held."""
        held = self._held.get(message_id)
        return None if held is None else held[0]

    def release(self, message_ids: Sequence[int]) -> None:
        """The outcomes are committed: the claims are spent."""
        for message_id in message_ids:
            self._held.pop(message_id, None)

    async def run(self) -> None:
        """Renew every third of a lease, until cancelled (after the last
        batch in hand is done: claims must stay alive while it drains)."""
        while True:
            await asyncio.sleep(self._lease_ms / 3000)
            await self.renew()

    async def renew(self) -> None:
        if not self._held:
            return
        asked_at = self._clock()
        tokens = {mid: attempt for mid, (attempt, _) in self._held.items()}
        try:
            kept = await self._store.renew_claims(self._owner, tokens, self._lease_ms)
        except Exception:
            log.warning("could not renew %d claims; they lapse unless renewed", len(tokens))
            return
        deadline = asked_at + self._trusted_seconds
        lost = 0
        for message_id, attempt in tokens.items():
            current = self._held.get(message_id)
            if current is None or current[0] != attempt:
                continue  # released (or claimed anew) while the renewal ran
            if message_id in kept:
                self._held[message_id] = (attempt, deadline)
            else:
                del self._held[message_id]  # lost: never to be sent on this claim
                lost += 1
        if lost:
            log.warning("%d claims were lost before their messages were sent", lost)

    @property
    def _trusted_seconds(self) -> float:
        return self._lease_ms / 1000 * _TRUSTED_SHARE
