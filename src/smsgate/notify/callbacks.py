"""Pushing delivery reports and inbound messages to customer URLs from the outbox.

Callback rows are written in the same transaction as the state change they
report, so a report can be late but never lost. Each dialect renders its own
request (body, method, signature) at send time: signatures and dates must be
fresh on every attempt. Failed attempts are retried on the dialect's
schedule, then given up with the reason stored.

Pushes share a worker with delivery, so they are shaped never to slow it:

- one pooled, keep-alive HTTP client (aiohttp: its cost per request does not
  grow with the pool, where httpx's pool bookkeeping dominated a profile at
  a hundred connections);
- at most ``max_in_flight`` requests at once, and at most ``per_receiver``
  to any one receiver (scheme, host and port), so a slow receiver holds only
  its own share and never the others': once a receiver has a full queue in
  hand, claims skip its jobs until it drains;
- claims and completions in batches: one transaction records a whole group
  of finished attempts, not one per push.

A job that cannot even be rendered (a poison job) fails like an attempt that
got an error, is retried on the schedule and then given up, never re-leased
forever.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp

from smsgate.aio import wait_for_event
from smsgate.store.records import CallbackAttempt, CallbackJob
from smsgate.store.repo import Store

log = logging.getLogger(__name__)

ANSWER_EXCERPT = 200
"""How much of a receiver's answer is kept with a failed attempt."""
_QUEUED_PER_SLOT = 16  # jobs held per receiver, per concurrent request it may take
_LOG_EVERY_SECONDS = 60.0  # per receiver: one warning, then a count of the rest


@dataclass(frozen=True)
class HttpCall:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    params: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """What a receiver answered, as a dialect judges it."""

    status: int
    body: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300


def _any_2xx(answer: HttpAnswer) -> bool:
    return answer.is_success


@dataclass(frozen=True)
class CallbackFormat:
    """How one dialect renders and judges its callbacks (delivery reports, and
    inbound messages forwarded to the account's ``mo_callback_url``)."""

    # Async: a signed callback may need to look up and unseal the account's key.
    render: Callable[[CallbackJob], Awaitable[HttpCall]]
    retry_seconds: Sequence[float]
    accepts: Callable[[HttpAnswer], bool] = _any_2xx
    # Only dialects that can send repliable messages receive replies to forward.
    render_inbound: Callable[[CallbackJob], Awaitable[HttpCall]] | None = None


class Notifier:
    def __init__(
        self,
        store: Store,
        formats: Mapping[str, CallbackFormat],
        *,
        time_scale: float = 1.0,
        timeout: float = 10.0,
        batch_size: int = 500,
        max_in_flight: int = 64,
        per_receiver: int = 8,
        idle_poll: float = 0.2,
        lease_ms: int = 60_000,
        flush_interval: float = 0.05,
    ) -> None:
        self._store = store
        self._formats = formats
        self._time_scale = time_scale
        self._timeout = timeout
        self._batch_size = batch_size
        self._max_in_flight = max_in_flight
        self._per_receiver = per_receiver
        self._idle_poll = idle_poll
        self._lease_ms = lease_ms
        self._flush_interval = flush_interval
        self._in_hand: dict[str, int] = defaultdict(int)  # receiver -> jobs held
        self._urls: dict[str, set[str]] = defaultdict(set)  # receiver -> its URLs seen
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._finished: list[CallbackAttempt] = []
        self._flushed = asyncio.Event()
        self._room = asyncio.Event()
        self._warned: dict[str, tuple[float, int]] = {}  # receiver -> (last warning, since)
        self.delivered = 0

    async def run(self, stopping: asyncio.Event) -> None:
        connector = aiohttp.TCPConnector(limit=self._max_in_flight, keepalive_timeout=30)
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            writer = asyncio.create_task(self._write_until(stopping), name="callback-results")
            try:
                while not stopping.is_set():
                    claimed = await self._claim_round(session)
                    if not claimed:
                        await wait_for_event(stopping, self._idle_poll)
            finally:
                if self._tasks:
                    await asyncio.gather(*self._tasks, return_exceptions=True)
                await asyncio.gather(writer, return_exceptions=True)
                await self._flush()

    async def _claim_round(self, session: aiohttp.ClientSession) -> int:
        """Claim what there is room for and start it; how many were claimed."""
        room = self._max_in_flight * _QUEUED_PER_SLOT - sum(self._in_hand.values())
        if room < self._batch_size // 4:
            self._room.clear()
            await wait_for_event(self._room, self._idle_poll)
            return 1  # not idle: there is work in hand
        full = self._per_receiver * _QUEUED_PER_SLOT
        busy = {
            url
            for receiver, count in self._in_hand.items()
            if count >= full
            for url in self._urls[receiver]
        }
        try:
            jobs = await self._store.claim_callbacks(
                min(room, self._batch_size), self._lease_ms, skip_urls=busy
            )
        except Exception:
            log.exception("could not claim callbacks; trying again")
            return 0
        for job in jobs:
            receiver = _receiver(job.url)
            self._urls[receiver].add(job.url)
            self._in_hand[receiver] += 1
            task = asyncio.create_task(self._attempt(session, job, receiver))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(jobs)

    async def _attempt(
        self, session: aiohttp.ClientSession, job: CallbackJob, receiver: str
    ) -> None:
        slots = self._slots.setdefault(receiver, asyncio.Semaphore(self._per_receiver))
        try:
            async with slots:
                attempt = await self._push(session, job)
            self._finish(job, receiver, attempt)
        finally:
            self._in_hand[receiver] -= 1
            self._room.set()

    async def _push(self, session: aiohttp.ClientSession, job: CallbackJob) -> CallbackAttempt:
        fmt = self._formats.get(job.dialect)
        render = None if fmt is None else fmt.render_inbound if job.kind == "mo" else fmt.render
        if fmt is None or render is None:
            return self._failed(job, None, f"no {job.kind} callback format for {job.dialect}", ())
        try:
            call = await render(job)
        except Exception as exc:  # a poison job: fails alone, on the schedule
            log.exception("callback %d could not be rendered", job.id)
            return self._failed(job, None, f"render failed: {type(exc).__name__}: {exc}", fmt)
        try:
            async with session.request(
                call.method, call.url, headers=call.headers, data=call.content, params=call.params
            ) as response:
                answer = HttpAnswer(response.status, await response.read())
        except (aiohttp.ClientError, TimeoutError) as exc:
            return self._failed(job, None, f"{type(exc).__name__}: {exc}".rstrip(": "), fmt)
        except Exception as exc:  # a request the client will not send (a header with a
            # line break): a poison job too, or it would be re-leased forever unrecorded
            log.exception("callback %d could not be sent", job.id)
            return self._failed(job, None, f"request failed: {type(exc).__name__}: {exc}", fmt)
        if fmt.accepts(answer):
            return CallbackAttempt(job.id, True, answer.status, None, None)
        excerpt = answer.body[:ANSWER_EXCERPT].decode("utf-8", "replace").strip()
        return self._failed(job, answer.status, f"HTTP {answer.status} {excerpt!r}", fmt)

    def _failed(
        self,
        job: CallbackJob,
        status: int | None,
        error: str,
        fmt: CallbackFormat | Sequence[float],
    ) -> CallbackAttempt:
        delays = fmt.retry_seconds if isinstance(fmt, CallbackFormat) else fmt
        retry_at = None
        if job.attempts <= len(delays):
            delay_ms = int(delays[job.attempts - 1] * self._time_scale * 1000)
            retry_at = self._store.clock() + delay_ms
        return CallbackAttempt(job.id, False, status, error, retry_at)

    def _finish(self, job: CallbackJob, receiver: str, attempt: CallbackAttempt) -> None:
        if attempt.delivered:
            self.delivered += 1
            log.debug("callback %d delivered to %s", job.id, receiver)
        elif attempt.retry_at is None:
            log.warning(
                "giving up callback %d to %s after %d attempts: %s",
                job.id,
                _where(job.url),
                job.attempts,
                attempt.error,
            )
        else:
            self._warn_now_and_then(job, receiver, attempt)
        self._finished.append(attempt)
        if len(self._finished) >= self._batch_size:
            self._flushed.set()

    def _warn_now_and_then(self, job: CallbackJob, receiver: str, attempt: CallbackAttempt) -> None:
        """A failing receiver is named at once, then once a minute with a count,
        so a wrong URL is visible at its first failure without flooding the log."""
        now = time.monotonic()
        last, quiet = self._warned.get(receiver, (-_LOG_EVERY_SECONDS, 0))
        if now - last < _LOG_EVERY_SECONDS:
            self._warned[receiver] = (last, quiet + 1)
            return
        self._warned[receiver] = (now, 0)
        more = f" ({quiet} more failures since the last warning)" if quiet else ""
        log.warning(
            "callback to %s failed (attempt %d): %s; will retry%s",
            _where(job.url),
            job.attempts,
            attempt.error,
            more,
        )

    async def _write_until(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            await wait_for_event(self._flushed, self._flush_interval)
            self._flushed.clear()
            await self._flush()

    async def _flush(self) -> None:
        """Record the finished attempts in one transaction.

        If that fails, each is recorded alone, so one attempt the database
        will not take cannot hold back the others' (delivered pushes would
        otherwise be re-leased and sent again). When none can be recorded the
        database is away, and all are kept for the next flush; an attempt
        that fails alone while others pass is given up with that reason."""
        if not self._finished:
            return
        attempts, self._finished = self._finished, []
        if await self._recorded(attempts):
            return
        failing = [a for a in attempts if not await self._recorded([a])]
        if len(failing) == len(attempts):
            log.error("could not record %d callback attempts; will retry", len(attempts))
            self._finished[:0] = attempts
            return
        for attempt in failing:
            reason = "its attempt could not be recorded (see the log)"
            given_up = CallbackAttempt(attempt.job_id, False, attempt.status, reason, None)
            if await self._recorded([given_up]):
                log.warning("giving up callback %d: %s", attempt.job_id, reason)
            else:  # its lease runs out and it is claimed again, one attempt more
                log.error("callback %d: no attempt of it can be recorded", attempt.job_id)

    async def _recorded(self, attempts: Sequence[CallbackAttempt]) -> bool:
        try:
            await self._store.callbacks_finished(attempts)
        except Exception:
            log.exception("could not record %d callback attempt(s)", len(attempts))
            return False
        return True


def _receiver(url: str) -> str:
    """Scheme, host and port: what one receiving service is."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _where(url: str) -> str:
    """A URL without its query or credentials, fit for a log line (queries
    carry numbers and texts)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"
