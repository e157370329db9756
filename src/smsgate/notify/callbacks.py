"""Pushing delivery reports to customer URLs from the persistent outbox.

Callback rows are written in the same transaction as the state change they
report, so a report can be late but never lost. Each dialect renders its own
request (body, method, signature) at send time: signatures and dates must be
fresh on every attempt. Failed attempts are retried on the dialect's schedule.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import httpx

from smsgate.aio import wait_for_event
from smsgate.store.records import CallbackJob
from smsgate.store.repo import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpCall:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    params: dict[str, str] | None = None


@dataclass(frozen=True)
class CallbackFormat:
    """How one dialect renders and judges its callbacks (delivery reports, and
    inbound messages forwarded to the account's ``mo_callback_url``)."""

    # Async: a signed callback may need to look up and unseal the account's key.
    render: Callable[[CallbackJob], Awaitable[HttpCall]]
    retry_seconds: Sequence[float]
    accepts: Callable[[httpx.Response], bool] = lambda response: response.is_success
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
        batch_size: int = 100,
        idle_poll: float = 0.2,
        lease_ms: int = 60_000,
    ) -> None:
        self._store = store
        self._formats = formats
        self._time_scale = time_scale
        self._timeout = timeout
        self._batch_size = batch_size
        self._idle_poll = idle_poll
        self._lease_ms = lease_ms
        self.delivered = 0

    async def run(self, stopping: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as client:
            while not stopping.is_set():
                try:
                    jobs = await self._store.claim_callbacks(self._batch_size, self._lease_ms)
                    await asyncio.gather(*(self._attempt(client, job) for job in jobs))
                except Exception:
                    log.exception("callback round failed")
                    jobs = []
                if len(jobs) < self._batch_size:
                    await wait_for_event(stopping, self._idle_poll)

    async def _attempt(self, client: httpx.AsyncClient, job: CallbackJob) -> None:
        fmt = self._formats.get(job.dialect)
        render = None if fmt is None else fmt.render_inbound if job.kind == "mo" else fmt.render
        if fmt is None or render is None:
            await self._store.callback_finished(
                job.id, delivered=False, error=f"no {job.kind} callback format for {job.dialect}"
            )
            return
        call = await render(job)
        try:
            response = await client.request(
                call.method,
                call.url,
                headers=call.headers,
                content=call.content,
                params=call.params,
            )
            ok = fmt.accepts(response)
            error = None if ok else f"HTTP {response.status_code} {response.text[:200]!r}"
        except httpx.HTTPError as exc:
            ok, error = False, f"{type(exc).__name__}: {exc}"
        if ok:
            self.delivered += 1
            await self._store.callback_finished(job.id, delivered=True)
            return
        if job.attempts == 1:
            log.warning("callback %d to %s failed: %s; retrying", job.id, job.url, error)
        delays = fmt.retry_seconds
        if job.attempts <= len(delays):
            delay_ms = int(delays[job.attempts - 1] * self._time_scale * 1000)
            await self._store.callback_finished(
                job.id, delivered=False, error=error, retry_at=self._store.clock() + delay_ms
            )
        else:
            log.warning("giving up callback %d to %s: %s", job.id, job.url, error)
            await self._store.callback_finished(job.id, delivered=False, error=error)
