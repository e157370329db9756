"""Per-account sending limits, so one tenant cannot fill the queue for all.

Each account has a token bucket of messages (``max_messages_per_second``,
holding up to ``message_burst``) and a cap on its requests in progress
(``max_requests_in_flight``); the account's options override the settings'
defaults. A request is let in while the bucket is not empty and may take it
below zero (a 30,000-row batch is never refused for its size alone); the
account then waits until the rate has paid the debt back. A request that
fails gives its messages back.

The limits are kept in each API process, not in the store: asking the
database on every send would cost more than the send. With N API processes
behind a balancer, an account can therefore get up to N times its limits.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from smsgate.config import Settings
from smsgate.core.model import Account

RATE_OPTION = "max_messages_per_second"
BURST_OPTION = "message_burst"
IN_FLIGHT_OPTION = "max_requests_in_flight"


class AccountThrottled(Exception):
    """The account is over one of its sending limits; retry after ``retry_after`` s."""

    def __init__(self, description: str, retry_after: int) -> None:
        super().__init__(description)
        self.retry_after = retry_after


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass(frozen=True)
class Limits:
    per_second: int
    burst: int
    in_flight: int


class AccountLimits:
    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self._defaults = Limits(
            settings.account_messages_per_second,
            settings.account_message_burst,
            settings.account_requests_in_flight,
        )
        self._clock = clock
        self._buckets: dict[int, _Bucket] = {}
        self._in_flight: dict[int, int] = {}

    def limits_of(self, account: Account) -> Limits:
        def option(key: str, default: int) -> int:
            value = account.options.get(key)
            return value if isinstance(value, int) and value > 0 else default

        d = self._defaults
        return Limits(
            option(RATE_OPTION, d.per_second),
            option(BURST_OPTION, d.burst),
            option(IN_FLIGHT_OPTION, d.in_flight),
        )

    @contextmanager
    def admit(self, account: Account, messages: int) -> Iterator[None]:
        """Hold one of the account's request slots and ``messages`` of its
        tokens for the block; raise ``AccountThrottled`` if it has neither."""
        limits = self.limits_of(account)
        busy = self._in_flight.get(account.id, 0)
        if busy >= limits.in_flight:
            raise AccountThrottled(f"at most {limits.in_flight} requests at once", 1)
        now = self._clock()
        bucket = self._buckets.setdefault(account.id, _Bucket(limits.burst, now))
        bucket.tokens = min(limits.burst, bucket.tokens + (now - bucket.at) * limits.per_second)
        bucket.at = now
        if bucket.tokens <= 0:
            wait = max(1, math.ceil(-bucket.tokens / limits.per_second))
            raise AccountThrottled(f"over {limits.per_second} messages per second", wait)
        bucket.tokens -= messages
        self._in_flight[account.id] = busy + 1
        try:
            yield
        except BaseException:
            bucket.tokens += messages  # nothing was sent: the messages are not spent
            raise
        finally:
            left = self._in_flight[account.id] - 1
            if left:
                self._in_flight[account.id] = left
            else:
                del self._in_flight[account.id]
