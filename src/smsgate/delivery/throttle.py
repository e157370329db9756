"""Sending no faster than the carrier takes: a learned rate and a resizable window.

A carrier that answers ESME_RTHROTTLED (or ESME_RMSGQFUL) is saying what its
limit is, not asking for a pause: an ESME that fills its window, gets most of
it refused, waits a second and repeats spends the carrier's rate on refusals
and sends at a fraction of what it is allowed. ``AdaptiveRate`` instead paces
every send: the first refusal sets the rate to what the carrier was seen to
accept just before, a little under it, and after a quiet spell it probes
upwards in small steps, so once settled it sends at nearly the carrier's rate
with rare refusals (each probe that overshoots costs one). A configured
ceiling (the account's contracted rate) is never exceeded.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable

Clock = Callable[[], float]

_MIN_RATE = 0.2  # per second: never stop sending altogether
_BELOW_OBSERVED = 0.97  # the new rate after a refusal, as a share of what was accepted
_PROBE_STEP = 1.03
_QUIET_BEFORE_PROBING = 30.0  # seconds after a refusal before trying a higher rate
_PROBE_EVERY = 10.0
_OBSERVED_SPAN = 5.0  # seconds of accepted sends the rate is estimated from
_REMEMBERED_SENDS = 200_000
_TOLERATED_REFUSALS = 0.02  # share of recent sends refused that lowers a paced rate


class AdaptiveRate:
    """The pace of one connection's sends, learned from the carrier's refusals."""

    def __init__(self, ceiling: float = 0.0, *, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._ceiling = ceiling if ceiling > 0 else math.inf
        self.rate = self._ceiling  # sends per second; inf: as fast as the window allows
        self._next_slot = 0.0
        # Bounded, so an unpaced connection keeps no more than it could need
        # to estimate a rate when its first refusal comes.
        self._accepted: deque[float] = deque(maxlen=_REMEMBERED_SENDS)
        self._refused: deque[float] = deque()
        self._first_accepted: float | None = None
        self._last_refusal = -math.inf
        self._last_change = -math.inf
        self.refusals = 0

    @property
    def limited(self) -> bool:
        """Whether sends are being paced (a ceiling is set or a limit was learned)."""
        return self.rate != math.inf

    def delay(self) -> float:
        """Seconds to wait before the next send, whose slot this reserves."""
        if self.rate == math.inf:
            return 0.0
        now = self._clock()
        slot = max(self._next_slot, now)
        self._next_slot = slot + 1.0 / self.rate
        return slot - now

    def accepted(self) -> None:
        """The carrier took a send: counts towards the observed rate, and may
        allow a step up once the last refusal is long enough ago."""
        now = self._clock()
        if self._first_accepted is None:
            self._first_accepted = now
        self._accepted.append(now)
        if not self.limited:
            return  # the deque is bounded; it is trimmed when the rate matters
        self._forget_before(now - _OBSERVED_SPAN)
        if (
            self.rate < self._ceiling
            and now - self._last_refusal >= _QUIET_BEFORE_PROBING
            and now - self._last_change >= _PROBE_EVERY
            and self._observed(now) >= self.rate * 0.9  # the rate, not the supply, limits us
        ):
            self.rate = min(self.rate * _PROBE_STEP, self._ceiling)
            self._last_change = now

    def refused(self) -> None:
        """The carrier said slow down: pace at a little under what it accepted.

        The rate is lowered at most once a second (the sends already on their
        way when the first refusal came say nothing new) and, once paced, only
        while more than a few percent of recent sends are refused: a carrier
        refusing the odd message is not a carrier we are flooding.
        """
        now = self._clock()
        self.refusals += 1
        self._refused.append(now)
        self._forget_before(now - _OBSERVED_SPAN)
        self._last_refusal = now
        if self.limited:
            if now - self._last_change < 1.0:
                return
            sent = len(self._accepted) + len(self._refused)
            if len(self._refused) <= _TOLERATED_REFUSALS * sent:
                return
        observed = self._observed(now)
        lowered = max(min(observed, self.rate) * _BELOW_OBSERVED, _MIN_RATE)
        self.rate = min(lowered, self._ceiling)
        self._last_change = now
        self._next_slot = now + 1.0 / self.rate

    def in_flight(self, window: int) -> int:
        """How many unanswered sends to allow: the window, or half a second's
        worth at the paced rate, so a slowed connection keeps no backlog of
        requests the carrier would refuse."""
        if not self.limited:
            return window
        return max(1, min(window, math.ceil(self.rate / 2)))

    def _forget_before(self, moment: float) -> None:
        for times in (self._accepted, self._refused):
            while times and times[0] < moment:
                times.popleft()

    def _observed(self, now: float) -> float:
        """Accepted sends per second over the recent past (at least a second of it)."""
        if self._first_accepted is None:
            return 0.0
        span = max(min(_OBSERVED_SPAN, now - self._first_accepted), 1.0)
        return sum(1 for at in self._accepted if at >= now - span) / span


class Window:
    """At most ``limit`` unanswered requests; the limit may change while in use."""

    def __init__(self, limit: int) -> None:
        self.limit = max(limit, 1)
        self.in_use = 0
        self._freed = asyncio.Event()

    def take(self) -> bool:
        """Take a slot if one is free now (the common case, with no await)."""
        if self.in_use >= self.limit:
            return False
        self.in_use += 1
        return True

    async def acquire(self) -> None:
        while self.in_use >= self.limit:
            self._freed.clear()
            await self._freed.wait()
        self.in_use += 1

    def release(self) -> None:
        self.in_use -= 1
        self._freed.set()
