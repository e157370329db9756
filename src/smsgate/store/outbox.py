"""The callback outbox: pushes to customer URLs, claimed under leases and retried.

Rows are written in the same transaction as the state change they report
(see ``store.finals``), so a report can be late but never lost.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import func, or_, select, text, true, update

from smsgate.store import schema as t
from smsgate.store.base import StoreBase, columns_of, records_of
from smsgate.store.driver_sql import RowUpdate
from smsgate.store.records import CallbackAttempt, CallbackJob

_DELIVERED = RowUpdate(
    "callback_outbox",
    (("sent_at", "bigint", "{v}"),),
    "state = 'sent', last_error = NULL, lease_until = NULL",
)
_RETRIED = RowUpdate(
    "callback_outbox",
    (("next_attempt_at", "bigint", "{v}"), ("last_error", "text", "{v}")),
    "lease_until = NULL",
)
_GIVEN_UP = RowUpdate(
    "callback_outbox", (("last_error", "text", "{v}"),), "state = 'failed', lease_until = NULL"
)


class OutboxStore(StoreBase):
    """Claiming callbacks and recording each attempt."""

    async def claim_callbacks(
        self, limit: int, lease_ms: int, *, skip_urls: Collection[str] = ()
    ) -> list[CallbackJob]:
        """Lease up to ``limit`` due callbacks, the oldest first, leaving out
        those to ``skip_urls`` (receivers that have enough in hand already)."""
        now = self.clock()
        c = t.callback_outbox.c
        due = (
            select(c.id)
            .where(
                text("state = 'pending'"),
                c.next_attempt_at <= now,
                or_(c.lease_until.is_(None), c.lease_until < now),
                c.url.not_in(sorted(skip_urls)) if skip_urls else true(),
            )
            .order_by(c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        claim = (
            update(t.callback_outbox)
            .where(c.id.in_(due))
            .values(lease_until=now + lease_ms, attempts=c.attempts + 1)
            .returning(*columns_of(t.callback_outbox, CallbackJob))
        )
        async with self._write() as conn:
            rows = (await conn.execute(claim)).all()
        return records_of(CallbackJob, rows)

    async def callbacks_finished(self, attempts: Sequence[CallbackAttempt]) -> None:
        """Record a group of attempts in one transaction: each job delivered,
        due again at its ``retry_at``, or given up with its last error."""
        now = self.clock()
        delivered = [(now, a.job_id) for a in attempts if a.delivered]
        retried = [(a.retry_at, a.error, a.job_id) for a in attempts if a.retry_at is not None]
        given_up = [(a.error, a.job_id) for a in attempts if not a.delivered and a.retry_at is None]
        sql = self._sql
        async with self._write() as conn:
            await sql.update_many(conn, _DELIVERED, delivered)
            await sql.update_many(conn, _RETRIED, retried)
            await sql.update_many(conn, _GIVEN_UP, given_up)

    async def callback_states(self, account_id: int) -> dict[str, int]:
        c = t.callback_outbox.c
        async with self._read() as conn:
            rows = (
                await conn.execute(
                    select(c.state, func.count())
                    .where(c.account_id == account_id)
                    .group_by(c.state)
                )
            ).all()
        return {state: int(count) for state, count in rows}
