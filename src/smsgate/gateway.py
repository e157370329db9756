"""The submission service: the one entry point dialects call into.

A dialect adapter translates its wire format into ``MessageRequest`` values and
calls ``Gateway``; every business rule (validation, pricing, scheduling,
charging, durability) happens behind this boundary, once for all dialects.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from smsgate.account_limits import AccountLimits
from smsgate.auth_guard import AuthGuard, lock_policy
from smsgate.config import Settings
from smsgate.core.model import Account, MessageRequest, MessageView, Priority, Rejection
from smsgate.core.networks import NetworkTable
from smsgate.core.schedule import local_midnight
from smsgate.core.states import UpstreamCondition
from smsgate.core.submit import Preparation, prepare
from smsgate.credentials import CredentialKind, recently_verified
from smsgate.observe import events
from smsgate.request_record import RequestSeen, request_record
from smsgate.store.records import (
    AcceptedBatch,
    AlreadyAccepted,
    BatchTerms,
    DailyQuota,
    InsufficientCredit,
    ReplyMemo,
    ReplyPool,
)
from smsgate.store.repo import Store


@dataclass(frozen=True, slots=True)
class AcceptedMessage:
    id: int | None  # None in test mode, where nothing is stored
    recipient: str
    network_id: int
    segments: int
    cost: int


@dataclass(frozen=True)
class Memo:
    """Ask the gateway to remember this request's reply under a client key
    (idempotency keys, EAPI ``stop_dup_id``), for ``window_ms`` or forever."""

    scope: str
    key: str
    render: Callable[[Submission], str]
    window_ms: int | None = None


IDEMPOTENCY_HEADER = "idempotency-key"
MAX_IDEMPOTENCY_KEY = 128  # the column's width; longer keys are stored as their digest


def idempotency_memo(
    headers: Mapping[str, str], scope: str, render: Callable[[Submission], str]
) -> Memo | None:
    """The memo for a send whose client set an ``Idempotency-Key`` header (an
    extension the JSON dialects share): a client that lost a reply, or whose
    API process died mid-request, retries with the same key and gets the
    first reply, with nothing sent twice."""
    key = headers.get(IDEMPOTENCY_HEADER, "").strip()
    if not key:
        return None
    if len(key) > MAX_IDEMPOTENCY_KEY:
        key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return Memo(scope, key, render)


class Submission:
    """Per requested message, in request order: what was stored, or why it was refused.

    ``results`` is built on first use: a 30,000-row EAPI batch only needs the
    batch id, and building a record per message would cost more than its SQL.
    """

    def __init__(
        self,
        preparation: Preparation,
        batch_id: int | None,
        message_ids: Sequence[int],
        balance: int,
    ) -> None:
        self._preparation = preparation
        self.batch_id = batch_id
        self._message_ids = message_ids
        self.balance = balance

    @property
    def all_refused(self) -> bool:
        return not self._preparation.accepted

    @property
    def first_rejection(self) -> Rejection | None:
        return next((i for i in self._preparation.items if isinstance(i, Rejection)), None)

    @functools.cached_property
    def results(self) -> list[AcceptedMessage | Rejection]:
        # A test-mode batch stored no messages, so its accepted ones have no id.
        ids: Iterator[int | None] = (
            iter(self._message_ids) if self._message_ids else itertools.repeat(None)
        )
        return [
            item
            if isinstance(item, Rejection)
            else AcceptedMessage(
                next(ids), item.recipient, item.network_id, item.segments, item.cost
            )
            for item in self._preparation.items
        ]


class Overloaded(Exception):
    """Too many submissions are in progress in this process; the client should retry."""


class UpstreamUnavailable(Exception):
    """Every carrier connection's upstream refuses traffic (no credit, quota)."""

    def __init__(self, condition: UpstreamCondition) -> None:
        super().__init__(f"upstream unavailable: {condition.value}")
        self.condition = condition


class Gateway:
    # How long an API process trusts its last look at the connectors' conditions.
    CONDITIONS_TTL_MS = 1_000
    # How long it trusts a credential lookup: a new key, a revoked one or a
    # suspension takes effect in every API process within this long. Under
    # load a lookup per request would cost more than accepting the message.
    CREDENTIALS_TTL_MS = 1_000
    MAX_CACHED_CREDENTIALS = 10_000

    def __init__(
        self,
        store: Store,
        settings: Settings,
        on_queued: Callable[[], None] | None = None,
        connectors: Sequence[str] = ("sandbox",),
    ) -> None:
        self.store = store
        self.settings = settings
        self._networks = NetworkTable(settings.network_prefixes)
        self._on_queued = on_queued or (lambda: None)
        self._connectors = tuple(connectors)
        self._reply_pool = ReplyPool(
            settings.reply_numbers, int(settings.reply_window_hours * 3_600_000)
        )
        self._pending = 0
        self._conditions: tuple[int, dict[str, UpstreamCondition]] = (-self.CONDITIONS_TTL_MS, {})
        self._credentials: dict[
            tuple[str, str], tuple[int, asyncio.Future[list[tuple[Account, str]]]]
        ] = {}
        self.auth_guard = AuthGuard(
            store, lock_policy(settings), hold_seconds=settings.auth_refusal_hold_seconds
        )
        self.account_limits = AccountLimits(settings)

    async def authenticate(
        self, kind: CredentialKind, identifier: str, secret: str, *, address: str
    ) -> Account | None:
        """The active account owning this credential, or None (unknown, wrong or suspended).

        Raises ``AuthThrottled`` while ``address`` or ``identifier`` is locked
        by earlier failures (see ``auth_guard``), unless this process has
        already seen this very secret verify.
        """
        candidates = await self._credentials_of(kind, identifier)
        for account, stored in candidates:
            if recently_verified(secret, stored):
                return account if account.is_active else None
        keys = self.auth_guard.keys(kind, identifier, address)
        await self.auth_guard.admit(keys)
        found = await self.auth_guard.verifies(
            kind, secret, [stored for _, stored in candidates], keys
        )
        if found < 0:
            await self.auth_guard.failed(keys)
            return None
        account = candidates[found][0]
        return account if account.is_active else None

    async def knows(self, kind: CredentialKind, identifier: str) -> bool:
        """Whether ``identifier`` is anyone's, for dialects whose refusals
        tell an unknown identifier from a wrong secret (SMPP's ESME_RINVSYSID
        and ESME_RINVPASWD); ask only after the secret was checked, so both
        refusals take the same time."""
        return bool(await self._credentials_of(kind, identifier))

    async def _credentials_of(self, kind: str, identifier: str) -> list[tuple[Account, str]]:
        """``credentials_for``, asked once per TTL however many requests want it."""
        now = self.store.clock()
        key = (kind, identifier)
        cached = self._credentials.get(key)
        if cached is None or now - cached[0] >= self.CREDENTIALS_TTL_MS:
            if len(self._credentials) >= self.MAX_CACHED_CREDENTIALS:
                self._credentials.clear()
            cached = (now, asyncio.ensure_future(self.store.credentials_for(kind, identifier)))
            self._credentials[key] = cached
        try:
            return await asyncio.shield(cached[1])
        except Exception:
            if self._credentials.get(key) is cached:
                del self._credentials[key]  # a failed lookup is not remembered
            raise

    async def submit(
        self,
        account: Account,
        requests: Sequence[MessageRequest],
        *,
        dialect: str,
        priority: Priority = Priority.NORMAL,
        memo: Memo | None = None,
        description: str | None = None,
        test_mode: bool = False,
        all_or_nothing: bool = False,
        validate_only: bool = False,
        request: RequestSeen | None = None,
    ) -> Submission:
        """Validate, price and durably queue messages.

        Raises ``InsufficientCredit``, ``DailyQuotaExceeded``, ``NoReplyNumber``
        (a repliable message's handset is in conversation with other accounts
        on every reply number), ``Overloaded``, ``AccountThrottled`` (the
        account's own sending limits) and ``UpstreamUnavailable``.
        Refused messages are not stored; if every message is refused, no batch
        is created, nothing is charged and no memo is kept.
        If the memo's key is already remembered (an earlier request, or a
        concurrent one that won the race), nothing is written and
        ``AlreadyAccepted`` carries the first reply. In test mode everything is
        validated and a batch is recorded, but no message is stored or charged.
        With ``all_or_nothing``, one refused message refuses the whole request.
        With ``validate_only`` (implies test mode) nothing at all is recorded:
        the submission's ``batch_id`` is None. ``request`` is what the dialect
        saw of the request; its redacted record (request_record.py) is kept
        with the batch.
        """
        if self._pending >= self.settings.max_pending_submissions:
            raise Overloaded()
        with self.account_limits.admit(account, len(requests)):
            self._pending += 1
            try:
                return await self._submit(
                    account,
                    requests,
                    dialect,
                    priority,
                    memo,
                    description,
                    test_mode or validate_only,
                    all_or_nothing,
                    validate_only,
                    request,
                )
            finally:
                self._pending -= 1

    async def _submit(
        self,
        account: Account,
        requests: Sequence[MessageRequest],
        dialect: str,
        priority: Priority,
        memo: Memo | None,
        description: str | None,
        test_mode: bool,
        all_or_nothing: bool,
        validate_only: bool,
        request: RequestSeen | None,
    ) -> Submission:
        started = time.perf_counter()
        now = self.store.clock()
        window_start = 0 if memo is None or memo.window_ms is None else now - memo.window_ms
        if memo is not None and not test_mode:
            earlier = await self.store.remembered_reply(
                account.id, memo.scope, memo.key, window_start
            )
            if earlier is not None:
                raise AlreadyAccepted(earlier)
        if not test_mode:
            await self._require_upstream(now)
        preparation = prepare(
            account,
            requests,
            now_ms=now,
            networks=self._networks,
            prices=self.settings.prices,
            reply_numbers=self.settings.reply_numbers,
        )
        accepted = preparation.accepted
        refused = [i.code.value for i in preparation.items if isinstance(i, Rejection)]
        if not accepted or (all_or_nothing and len(accepted) < len(preparation.items)):
            events.messages_refused(dialect, refused)
            return Submission(preparation, None, (), account.balance)
        if test_mode and preparation.total_cost > account.balance:
            raise InsufficientCredit(account.balance, preparation.total_cost)
        if validate_only:
            return Submission(preparation, None, (), account.balance)
        store_memo = None
        if memo is not None and not test_mode:
            store_memo = ReplyMemo(
                memo.scope,
                memo.key,
                lambda batch: memo.render(_submission(preparation, batch)),
                window_start,
            )
        batch = await self.store.accept(
            account.id,
            dialect=dialect,
            messages=accepted,
            priority=priority,
            memo=store_memo,
            terms=BatchTerms(description, test_mode, _daily_quota(account, now)),
            reply_pool=self._reply_pool,
            request=None if request is None else request_record(dialect, request, now),
        )
        if not test_mode:
            self._on_queued()
            events.accepted(
                dialect,
                account.name,
                messages=len(accepted),
                cost=preparation.total_cost,
                seconds=(time.perf_counter() - started),
                refused=refused,
            )
        return _submission(preparation, batch)

    async def _require_upstream(self, now: int) -> None:
        """Refuse new work while every connector's upstream refuses it."""
        checked_at, conditions = self._conditions
        if now - checked_at >= self.CONDITIONS_TTL_MS:
            conditions = await self.store.active_conditions()
            self._conditions = (now, conditions)
        if conditions and all(name in conditions for name in self._connectors):
            raise UpstreamUnavailable(conditions[self._connectors[0]])

    async def message(self, account: Account, message_id: int) -> MessageView | None:
        return await self.store.message(account.id, message_id)

    async def balance(self, account: Account) -> int:
        return await self.store.balance(account.id)


def _daily_quota(account: Account, now: int) -> DailyQuota | None:
    """The account's daily message quota (option ``daily_quota``), counted from
    its local midnight."""
    limit = account.options.get("daily_quota")
    if not isinstance(limit, int) or limit <= 0:
        return None
    return DailyQuota(limit, local_midnight(now, account.timezone))


def _submission(preparation: Preparation, batch: AcceptedBatch) -> Submission:
    return Submission(preparation, batch.batch_id, batch.message_ids, batch.balance)
