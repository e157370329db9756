"""Delivering through another provider's HTTP API.

The connector packs a claimed batch into as few requests as the dialect
allows, sends at most ``in_flight`` of them at once (over one keep-alive
pool) and no faster than ``tps`` messages a second, and hands each message's
outcome to the recorder as the dialect client reads it from the answer.

A request whose answer was lost (a timeout or a dropped connection after the
request went out) may have been taken. It is sent again, byte for byte and
under the same ``Idempotency-Key`` (derived from the connection and the
message ids, so a later claim of the same messages in the same grouping
repeats it too), up to ``resends`` times: a provider that honours the key
answers the first request's reply instead of sending twice. Only when every
resend is lost do the messages go back to the queue, to be sent in a new
request the provider cannot tell from a new one; that is the bound on
duplicates this dialect allows, and it is documented.

Every failure that is not the messages' fault (HTTP 5xx, 429, timeouts,
refused connections, the dialect's "try later" codes) costs them no attempt:
the connection counts as down for a back-off that grows while the upstream
keeps failing, so routing fails over to the next route; once it has passed,
the next batch is the probe that brings it back (or keeps it down for twice
as long).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import orjson

from smsgate.core.carrier_ids import IdFormat, carrier_key
from smsgate.core.encoding import Encoding
from smsgate.core.states import Reason, State
from smsgate.delivery.connectors.base import (
    AckCounter,
    ClaimCheck,
    InboundSink,
    ReceiptSink,
    SubmissionSink,
    claim_lapsed,
)
from smsgate.delivery.connectors.http_settings import HttpSettings
from smsgate.delivery.throttle import AdaptiveRate
from smsgate.store.records import (
    CarrierPart,
    ConnectionHealth,
    InboundMessage,
    OutboundMessage,
    Receipt,
    Refused,
    RetryLater,
    SubmitOutcome,
    Submitted,
)
from smsgate.store.repo import wall_clock_ms

log = logging.getLogger(__name__)

_EXCERPT = 200
_BACKOFF_MAX_MS = 300_000
_RETRY_SOON_MS = 1_000
"""When messages a failing upstream did not take are due again: soon, since
the connection itself stays down for its back-off, and by then they either
fail over to another route or wait for one to be up."""


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    messages: tuple[OutboundMessage, ...]
    method: str
    url: str
    headers: dict[str, str]
    content: bytes


@dataclass(frozen=True, slots=True)
class PollRequest:
    """A question to the upstream about messages it took: ``refs`` are the
    carrier references it is asked about."""

    refs: tuple[str, ...]
    method: str
    url: str
    headers: dict[str, str]
    content: bytes


@dataclass(frozen=True, slots=True)
class UpstreamAnswer:
    status: int
    body: bytes

    @property
    def excerpt(self) -> str:
        return self.body[:_EXCERPT].decode("utf-8", "replace").strip()


@dataclass(frozen=True, slots=True)
class Push:
    """What an upstream sent to the receiver path: a body, a query, or both,
    and its headers (lower-case names) for the dialects that sign pushes."""

    body: bytes = b""
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


class PushError(ValueError):
    """A push the receiver cannot read; answered 400 so the upstream sees it."""


class DialectClient(Protocol):
    dialect: str
    id_format: IdFormat

    def cannot_carry(self, message: OutboundMessage) -> str | None:
        """Why the dialect cannot carry the message at all, if it cannot."""
        ...

    def group_of(self, message: OutboundMessage) -> str:
        """Messages of one group may share a request."""
        ...

    def request(self, messages: tuple[OutboundMessage, ...], key: str) -> UpstreamRequest: ...

    def outcomes(
        self, connector: str, request: UpstreamRequest, answer: UpstreamAnswer
    ) -> list[SubmitOutcome]:
        """One outcome per message of the request, in its order."""
        ...

    def read_push(
        self, connector: str, push: Push, now: int
    ) -> list[Receipt] | list[InboundMessage]:
        """What a push to the connection's receiver says (PushError if unreadable)."""
        ...

    def poll_requests(self, refs: Sequence[str]) -> list[PollRequest]:
        """How to ask about these messages; none when the dialect has no query."""
        ...

    def read_poll(
        self, connector: str, request: PollRequest, answer: UpstreamAnswer, now: int
    ) -> list[Receipt]:
        """The final reports in a poll's answer (only for the refs it asked about)."""
        ...

    def balance_request(self) -> PollRequest | None:
        """How to ask what credit we have there; None when the dialect cannot."""
        ...

    def read_balance(self, answer: UpstreamAnswer) -> int | None:
        """The credit in a balance answer, in credit units (None: not readable)."""
        ...


class ClientBase:
    """What the dialect clients share: their settings, the provider's ids
    read as exact strings, no binary messages (none of the three dialects
    carries them from a client here), and, unless a dialect has them, no
    status or balance query."""

    dialect: str
    id_format = IdFormat.STRING

    def __init__(self, settings: HttpSettings) -> None:
        self._settings = settings

    def cannot_carry(self, message: OutboundMessage) -> str | None:
        if message.encoding == Encoding.BINARY:
            return f"binary messages are not sent through {self.dialect} upstreams"
        return None

    def poll_requests(self, refs: Sequence[str]) -> list[PollRequest]:
        return []

    def read_poll(
        self, connector: str, request: PollRequest, answer: UpstreamAnswer, now: int
    ) -> list[Receipt]:
        return []

    def balance_request(self) -> PollRequest | None:
        return None

    def read_balance(self, answer: UpstreamAnswer) -> int | None:
        return None


def taken(message_id: int, connector: str, ref: str) -> Submitted:
    """The provider took the message under its reference ``ref``."""
    return Submitted(
        message_id, connector, (CarrierPart(1, ref, carrier_key(ref, IdFormat.STRING)),)
    )


def final_report(
    connector: str,
    ref: str,
    final: tuple[State, Reason],
    status: object,
    now: int,
    text: str,
    handset: str = "",
) -> Receipt:
    """A provider's final word on the message it took under ``ref``."""
    state, reason = final
    return Receipt(
        connector,
        carrier_key(ref, IdFormat.STRING),
        state,
        reason,
        str(status)[:32],
        now,
        carrier_ref=ref,
        handset=handset.lstrip("+")[:20],
        text=text[:1_000],
    )


def json_object(body: bytes) -> dict[str, Any] | None:
    """The JSON object an upstream answered or pushed, or None if it is not one."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return document if isinstance(document, dict) else None


def later(
    messages: Sequence[OutboundMessage],
    error: str,
    status: int | None,
    *,
    delay_ms: int = 5_000,
) -> list[SubmitOutcome]:
    """Send again after ``delay_ms`` without using an attempt: the upstream,
    not the message, is at fault (a 4xx other than 429 is ours, and counts)."""
    counts = status is not None and 400 <= status < 500 and status != 429
    return [RetryLater(m.id, delay_ms, error, counts_attempt=counts) for m in messages]


def request_key(connector: str, messages: Sequence[OutboundMessage]) -> str:
    """The same for the same messages in the same connection, in every process."""
    ids = ",".join(str(m.id) for m in messages)
    return hashlib.sha256(f"{connector}:{ids}".encode()).hexdigest()[:40]


class HttpConnector:
    shared = False  # every worker may send; limits hold per process

    def __init__(self, settings: HttpSettings, client: DialectClient) -> None:
        self.name = settings.name
        self.receipt_timeout_ms = settings.receipt_timeout_ms
        self.dialect = client
        self.poll_seconds = settings.poll_seconds
        self.balance: int | None = None  # as the upstream last said, in credit units
        self._settings = settings
        self._http: httpx.AsyncClient | None = None
        self._slots = asyncio.Semaphore(settings.in_flight)
        self._rate = AdaptiveRate(settings.max_per_second)
        self._in_flight = 0
        self._sent = 0
        self._refused = 0
        self._failures = 0
        self._down_until = 0.0  # monotonic: failing, and not to be tried before then
        self._state, self._since = "bound", wall_clock_ms()
        self._last_error: str | None = None
        self._error_at: int | None = None

    @property
    def is_up(self) -> bool:
        return self._http is not None and time.monotonic() >= self._down_until

    def health(self) -> ConnectionHealth:
        return ConnectionHealth(
            self.name,
            self._state,
            self._since,
            self._last_error,
            self._error_at,
            self._settings.in_flight,
            self._in_flight,
            self._sent,
            self._refused,
            self._rate.rate if self._rate.limited else 0.0,
            balance=self.balance,
        )

    async def start(self, receipts: ReceiptSink, inbound: InboundSink) -> None:
        """Receipts come to the API's receiver route, not through the worker."""
        limits = httpx.Limits(
            max_connections=self._settings.in_flight,
            max_keepalive_connections=self._settings.in_flight,
        )
        self._http = httpx.AsyncClient(timeout=self._settings.timeout, limits=limits)

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def submit(
        self, messages: Sequence[OutboundMessage], record: SubmissionSink, claims: ClaimCheck
    ) -> None:
        acks = AckCounter()
        groups: dict[str, list[OutboundMessage]] = {}
        for message in messages:
            reason = self.dialect.cannot_carry(message)
            if reason is not None:
                record(
                    Refused(message.id, State.REJECTED, Reason.CARRIER_REJECTED, reason), acks.owe()
                )
            else:
                groups.setdefault(self.dialect.group_of(message), []).append(message)
        size = self._settings.batch
        chunks = [
            tuple(group[start : start + size])
            for group in groups.values()
            for start in range(0, len(group), size)
        ]
        await asyncio.gather(*(self._send(chunk, record, claims, acks) for chunk in chunks))
        await acks.all_paid()

    async def _send(
        self,
        chunk: tuple[OutboundMessage, ...],
        record: SubmissionSink,
        claims: ClaimCheck,
        acks: AckCounter,
    ) -> None:
        async with self._slots:
            for _ in chunk:  # pace by message, the unit a provider's rate counts
                if (pause := self._rate.delay()) > 0:
                    await asyncio.sleep(pause)
                self._rate.accepted()
            live: list[OutboundMessage] = []
            for message in chunk:
                if claims.live(message.id):
                    live.append(message)
                else:
                    record(claim_lapsed(message.id), acks.owe())
            if not live:
                return
            request = self.dialect.request(tuple(live), request_key(self.name, live))
            self._in_flight += 1
            try:
                answer = await self._exchange(request)
            finally:
                self._in_flight -= 1
            if isinstance(answer, str):
                outcomes = later(live, answer, None, delay_ms=_RETRY_SOON_MS)
            else:
                if answer.status == 429:
                    self._rate.refused()
                # For 5xx and 429 every dialect answers "later" without an attempt.
                outcomes = self.dialect.outcomes(self.name, request, answer)
                if answer.status >= 500 or answer.status == 429:
                    self._failed(f"HTTP {answer.status}: {answer.excerpt}")
                else:
                    self._answered()
            for outcome in outcomes:
                self._count(outcome)
                record(outcome, acks.owe())

    async def poll(self, refs: Sequence[str]) -> list[Receipt]:
        """Ask the upstream about messages it took; the final reports it gave.
        A question that fails is left for the next round."""
        receipts: list[Receipt] = []
        for request in self.dialect.poll_requests(refs):
            async with self._slots:
                answer = await self._exchange(request)
            if isinstance(answer, str):
                continue
            if answer.status == 200:
                self._answered()
            receipts += self.dialect.read_poll(self.name, request, answer, wall_clock_ms())
        return receipts

    async def refresh_balance(self) -> None:
        """Ask the upstream what credit we have there, if the dialect can."""
        request = self.dialect.balance_request()
        if request is None:
            return
        async with self._slots:
            answer = await self._exchange(request)
        if not isinstance(answer, str):
            self.balance = self.dialect.read_balance(answer)

    async def _exchange(self, request: UpstreamRequest | PollRequest) -> UpstreamAnswer | str:
        """The upstream's answer, or what went wrong once every resend was lost."""
        assert self._http is not None, "submit before start"
        error = ""
        for _ in range(self._settings.resends + 1):
            try:
                response = await self._http.request(
                    request.method, request.url, headers=request.headers, content=request.content
                )
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}".rstrip(": ")
                self._failed(error)
                if isinstance(exc, httpx.ConnectError):
                    break  # it never left: resending now would only fail the same way
                continue
            return UpstreamAnswer(response.status_code, response.content)
        return error

    def _count(self, outcome: SubmitOutcome) -> None:
        if isinstance(outcome, Refused):
            self._refused += 1
        elif not isinstance(outcome, RetryLater):
            self._sent += 1

    def _answered(self) -> None:
        self._failures = 0
        self._down_until = 0.0
        if self._state != "bound":
            self._state, self._since = "bound", wall_clock_ms()

    def _failed(self, error: str) -> None:
        self._failures += 1
        self._down_until = time.monotonic() + self._backoff_ms() / 1000
        self._last_error, self._error_at = error, wall_clock_ms()
        if self._state != "failing":
            self._state, self._since = "failing", wall_clock_ms()
            log.warning("upstream %s is failing: %s", self.name, error)

    def _backoff_ms(self) -> int:
        doublings = min(max(self._failures - 1, 0), 16)
        return min(int(self._settings.backoff_seconds * 1000) << doublings, _BACKOFF_MAX_MS)
