"""The callback outbox: pushes to customer URLs, claimed under leases and retried.

Rows are written in the same transaction as the state change they report
(see ``store.finals``), so a report can be late but never lost.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, or_, select, text, update

from smsgate.observe import events
from smsgate.store import schema as t
from smsgate.store.base import StoreBase, after_commit, columns_of, records_of
from smsgate.store.records import CallbackAttempt, CallbackJob, CallbackView

# Enough of a receiver's answer to tell what went wrong, bounded per attempt.
_ANSWER_WIDTH = 500


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
        """Record one attempt: delivered, to be retried at ``retry_at``, or abandoned.

        The attempt and the receiver's answer are kept (``callback_attempts``)
        for the operator; the outbox row keeps only the latest answer.
        """
        now = self.clock()
        if delivered:
            values: dict[str, Any] = {"state": "sent", "sent_at": now, "last_error": None}
            outcome = "delivered"
        elif retry_at is not None:
            values = {"next_attempt_at": retry_at, "last_error": error}
            outcome = "retry"
        else:
            values = {"state": "failed", "last_error": error}
            outcome = "failed"
        c = t.callback_outbox.c
        async with self._write() as conn:
            row = (
                await conn.execute(
                    update(t.callback_outbox)
                    .where(c.id == job_id)
                    .values(lease_until=None, **values)
                    .returning(c.message_id, c.attempts, c.dialect, c.kind)
                )
            ).one_or_none()
            if row is None:
                return
            await conn.execute(
                insert(t.callback_attempts).values(
                    callback_id=job_id,
                    message_id=row.message_id,
                    attempt=row.attempts,
                    outcome=outcome,
                    answer=None if error is None else error[:_ANSWER_WIDTH],
                    attempted_at=now,
                )
            )
            after_commit(conn, lambda: events.callback_attempted(row.dialect, row.kind, outcome))

    async def callbacks(
        self,
        *,
        account_id: int | None = None,
        state: str | None = None,
        limit: int = 50,
    ) -> list[CallbackView]:
        """The newest callbacks (optionally of one account, in one state), newest first."""
        c = t.callback_outbox.c
        query = (
            select(
                c.id,
                c.account_id,
                c.message_id,
                c.dialect,
                c.kind,
                c.url,
                c.state,
                c.attempts,
                c.next_attempt_at,
                c.last_error,
                c.created_at,
                c.sent_at,
            )
            .order_by(c.id.desc())
            .limit(limit)
        )
        if account_id is not None:
            query = query.where(c.account_id == account_id)
        if state is not None:
            query = query.where(c.state == state)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return records_of(CallbackView, rows)

    async def callback_attempts(self, message_id: int) -> list[CallbackAttempt]:
        """Every callback attempt made for one message, oldest first."""
        a, c = t.callback_attempts.c, t.callback_outbox.c
        query = (
            select(a.callback_id, c.kind, c.url, a.attempt, a.outcome, a.answer, a.attempted_at)
            .join(t.callback_outbox, c.id == a.callback_id)
            .where(a.message_id == message_id)
            .order_by(a.id)
        )
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return records_of(CallbackAttempt, rows)

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
