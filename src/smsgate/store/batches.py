"""Batches as the console shows them: recent ones, each one's progress by state,
and cancelling what has not left yet (the rest of a batch, or one message as
SMPP's cancel_sm asks), refunded.

A cancel takes only the messages still waiting for dispatch and not held by
a live claim; a message a worker holds is on its way to the carrier and
finishes as it would have. The cancelled messages, their events and one
refund line in the ledger are one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from smsgate.core.states import State
from smsgate.store import schema as t
from smsgate.store.base import LEASE_ENDS, StoreBase, adjust_balance, storable_id


@dataclass(frozen=True, slots=True)
class BatchView:
    id: int
    account_id: int
    dialect: str
    message_count: int
    cost: int
    created_at: int
    description: str | None


@dataclass(frozen=True, slots=True)
class Cancelled:
    """What a cancel took back: how many messages and the credits refunded."""

    messages: int
    refunded: int


_BATCH_COLUMNS = (
    t.batches.c.id,
    t.batches.c.account_id,
    t.batches.c.dialect,
    t.batches.c.message_count,
    t.batches.c.cost,
    t.batches.c.created_at,
    t.batches.c.description,
)

# ``{which}`` narrows it to a batch or to one message of an account.
_CANCEL_SQL = (
    f"UPDATE messages SET state = 'cancelled', reason = '', done_at = :now, {LEASE_ENDS}"
    " WHERE {which}"
    f" AND {t.WAITING_FOR_DISPATCH}"
    " AND (lease_until IS NULL OR lease_until < :now) RETURNING id, cost"
)


class BatchStore(StoreBase):
    async def recent_batches(
        self, account_id: int | None, before: int | None = None, limit: int = 50
    ) -> list[BatchView]:
        """Newest first, ``id < before`` (keyset pages)."""
        b = t.batches.c
        query = select(*_BATCH_COLUMNS).order_by(b.id.desc()).limit(limit)
        if account_id is not None:
            query = query.where(b.account_id == account_id)
        if before is not None:
            query = query.where(b.id < before)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [BatchView(*row) for row in rows]

    async def batch(self, batch_id: int) -> BatchView | None:
        query = select(*_BATCH_COLUMNS).where(t.batches.c.id == batch_id)
        async with self._read() as conn:
            row = (await conn.execute(query)).one_or_none()
        return None if row is None else BatchView(*row)

    async def batch_progress(self, batch_id: int) -> dict[str, int]:
        """Messages of the batch by state (``ix_messages_batch``)."""
        m = t.messages.c
        query = select(m.state, func.count()).where(m.batch_id == batch_id).group_by(m.state)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return {state: int(count) for state, count in rows}

    async def cancel_batch(self, batch_id: int) -> Cancelled:
        """Cancel the batch's messages that have not left, and refund them."""
        async with self._write() as conn:
            account_id = (
                await conn.execute(select(t.batches.c.account_id).where(t.batches.c.id == batch_id))
            ).scalar_one_or_none()
            if account_id is None:
                raise LookupError(f"no batch {batch_id}")
            return await self._cancel(
                conn,
                int(account_id),
                "batch_id = :batch",
                {"batch": batch_id},
                lambda count: f"batch {batch_id} cancelled: {count} messages not sent",
                batch_id=batch_id,
            )

    async def cancel_message(self, account_id: int, message_id: int) -> Cancelled:
        """Cancel one of the account's messages if it has not left, and refund it."""
        if not storable_id(message_id):
            return Cancelled(0, 0)
        async with self._write() as conn:
            return await self._cancel(
                conn,
                account_id,
                "id = :message AND account_id = :account",
                {"message": message_id, "account": account_id},
                lambda _: f"message {message_id} cancelled before it was sent",
                message_id=message_id,
            )

    async def _cancel(
        self,
        conn: AsyncConnection,
        account_id: int,
        which: str,
        params: dict[str, int],
        note: Callable[[int], str],
        *,
        batch_id: int | None = None,
        message_id: int | None = None,
    ) -> Cancelled:
        """The messages ``which`` names that have not left become cancelled,
        each with its event, and one ledger line refunds them."""
        now = self.clock()
        sql = text(_CANCEL_SQL.format(which=which))
        rows = (await conn.execute(sql, {"now": now, **params})).all()
        if not rows:
            return Cancelled(0, 0)
        await conn.execute(
            insert(t.delivery_events),
            [
                {
                    "message_id": row.id,
                    "state": State.CANCELLED.value,
                    "reason": "",
                    "occurred_at": now,
                    "recorded_at": now,
                }
                for row in rows
            ],
        )
        refund = sum(int(row.cost) for row in rows)
        if refund:
            balance = await adjust_balance(conn, account_id, refund)
            assert balance is not None
            await conn.execute(
                insert(t.ledger),
                {
                    "account_id": account_id,
                    "amount": refund,
                    "balance_after": balance,
                    "kind": "refund",
                    "batch_id": batch_id,
                    "message_id": message_id,
                    "note": note(len(rows)),
                    "created_at": now,
                },
            )
        return Cancelled(len(rows), refund)
