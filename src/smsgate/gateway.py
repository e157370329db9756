"""The submission service: the one entry point dialects call into.

A dialect adapter translates its wire format into ``MessageRequest`` values and
calls ``Gateway``; every business rule (validation, pricing, scheduling,
charging, durability) happens behind this boundary, once for all dialects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from smsgate.config import Settings
from smsgate.core.model import Account, MessageRequest, MessageView, Priority, Rejection
from smsgate.core.networks import NetworkTable
from smsgate.core.submit import Preparation, prepare
from smsgate.credentials import CredentialKind, secret_verifies
from smsgate.store.records import AcceptedBatch, AlreadyAccepted, ReplyMemo
from smsgate.store.repo import Store


@dataclass(frozen=True, slots=True)
class AcceptedMessage:
    id: int
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


@dataclass(frozen=True)
class Submission:
    """Per requested message, in request order: what was stored, or why it was refused."""

    batch_id: int | None
    results: list[AcceptedMessage | Rejection]
    balance: int


class Gateway:
    def __init__(
        self, store: Store, settings: Settings, on_queued: Callable[[], None] | None = None
    ) -> None:
        self.store = store
        self.settings = settings
        self._networks = NetworkTable(settings.network_prefixes)
        self._on_queued = on_queued or (lambda: None)

    async def authenticate(
        self, kind: CredentialKind, identifier: str, secret: str
    ) -> Account | None:
        """The active account owning this credential, or None (unknown, wrong or suspended)."""
        for account, stored in await self.store.credentials_for(kind, identifier):
            if secret_verifies(secret, stored) and account.is_active:
                return account
        return None

    async def submit(
        self,
        account: Account,
        requests: Sequence[MessageRequest],
        *,
        dialect: str,
        priority: Priority = Priority.NORMAL,
        want_report: bool = True,
        memo: Memo | None = None,
    ) -> Submission:
        """Validate, price and durably queue messages; raises ``InsufficientCredit``.

        Refused messages are not stored; if every message is refused, no batch is
        created, nothing is charged and no memo is kept. If the memo's key is
        already remembered (an earlier request, or a concurrent one that won the
        race), nothing is written and ``AlreadyAccepted`` carries the first reply.
        """
        now = self.store.clock()
        window_start = 0 if memo is None or memo.window_ms is None else now - memo.window_ms
        if memo is not None:
            earlier = await self.store.remembered_reply(
                account.id, memo.scope, memo.key, window_start
            )
            if earlier is not None:
                raise AlreadyAccepted(earlier)
        preparation = prepare(
            account,
            requests,
            now_ms=now,
            networks=self._networks,
            prices=self.settings.prices,
        )
        accepted = preparation.accepted
        if not accepted:
            rejected = [item for item in preparation.items if isinstance(item, Rejection)]
            return Submission(None, list(rejected), account.balance)
        store_memo = None
        if memo is not None:
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
            want_report=want_report,
            memo=store_memo,
        )
        self._on_queued()
        return _submission(preparation, batch)

    async def message(self, account: Account, message_id: int) -> MessageView | None:
        return await self.store.message(account.id, message_id)

    async def balance(self, account: Account) -> int:
        return await self.store.balance(account.id)


def _submission(preparation: Preparation, batch: AcceptedBatch) -> Submission:
    ids = iter(batch.message_ids)
    results: list[AcceptedMessage | Rejection] = [
        item
        if isinstance(item, Rejection)
        else AcceptedMessage(next(ids), item.recipient, item.network_id, item.segments, item.cost)
        for item in preparation.items
    ]
    return Submission(batch.batch_id, results, batch.balance)
