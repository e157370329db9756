"""The callback outbox: pushes to customer URLs, claimed under leases and retried.

Rows are written in the same transaction as the state change they report
(see ``store.finals``), so a report can be late but never lost.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select, text, update

from smsgate.store import schema as t
from smsgate.store.base import StoreBase, columns_of, records_of
from smsgate.store.records import CallbackJob


class OutboxStore(StoreBase):
    """Claiming callbacks and recording each attempt."""

    async def claim_callbacks(self, limit: int, lease_ms: int) -> list[CallbackJob]:
        now = self.clock()
        c = t.callback_outbox.c
        due = (
            select(c.id)
            .where(
                text("state = 'pending'"),
                c.next_attempt_at <= now,
                or_(c.lease_until.is_(None), c.lease_until < now),
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

    async def callback_finished(
        self, job_id: int, *, delivered: bool, error: str | None = None, retry_at: int | None = None
    ) -> None:
        """Record one attempt: delivered, to be retried at ``retry_at``, or abandoned."""
        now = self.clock()
        if delivered:
            values: dict[str, Any] = {"state": "sent", "sent_at": now, "last_error": None}
        elif retry_at is not None:
            values = {"next_attempt_at": retry_at, "last_error": error}
        else:
            values = {"state": "failed", "last_error": error}
        async with self._write() as conn:
            await conn.execute(
                update(t.callback_outbox)
                .where(t.callback_outbox.c.id == job_id)
                .values(lease_until=None, **values)
            )

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
