"""The callback outbox: pushes to customer URLs, claimed under leases and retried.

Rows are written in the same transaction as the state change they report
(see ``store.finals``), so a report can be late but never lost.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import ColumnElement, func, or_, select, text, true, update
from sqlalchemy.ext.asyncio import AsyncConnection

from smsgate.observe import events
from smsgate.store import schema as t
from smsgate.store.base import StoreBase, after_commit, columns_of, records_of, storable_text
from smsgate.store.driver_sql import RowUpdate
from smsgate.store.records import CallbackAttempt, CallbackJob, CallbackView

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

# The dialect of what customers submit over their own SMPP binds
# (smpp/customer_link.py), and so of the pushes that go back over those
# binds (smpp/customer_returns.py) instead of to a URL; their ``url`` is
# SESSION_URL, a marker, since a session, not an address, receives them.
SESSION_DIALECT = "smpp"
SESSION_URL = "smpp:bound-sessions"

# Enough of a receiver's answer to tell what went wrong, bounded per attempt.
_ANSWER_WIDTH = 500


class OutboxStore(StoreBase):
    """Claiming callbacks and recording each attempt."""

    async def claim_callbacks(
        self, limit: int, lease_ms: int, *, skip_urls: Collection[str] = ()
    ) -> list[CallbackJob]:
        """Lease up to ``limit`` due pushes to URLs, the oldest first, leaving
        out those to ``skip_urls`` (receivers that have enough in hand already).
        Pushes over a customer's own SMPP sessions are not theirs to take."""
        c = t.callback_outbox.c
        return await self._claim(
            limit,
            lease_ms,
            c.dialect != SESSION_DIALECT,
            c.url.not_in(sorted(skip_urls)) if skip_urls else true(),
        )

    async def claim_session_pushes(
        self, account_ids: Collection[int], limit: int, lease_ms: int
    ) -> list[CallbackJob]:
        """Lease up to ``limit`` due pushes (receipts, MO) owed to these
        accounts' bound SMPP sessions, the oldest first. Under PostgreSQL's
        SKIP LOCKED and the lease, two server processes never take one row."""
        if not account_ids:
            return []
        c = t.callback_outbox.c
        return await self._claim(
            limit, lease_ms, c.dialect == SESSION_DIALECT, c.account_id.in_(sorted(account_ids))
        )

    async def _claim(
        self, limit: int, lease_ms: int, *conditions: ColumnElement[bool]
    ) -> list[CallbackJob]:
        now = self.clock()
        c = t.callback_outbox.c
        due = (
            select(c.id)
            .where(
                text("state = 'pending'"),
                c.next_attempt_at <= now,
                or_(c.lease_until.is_(None), c.lease_until < now),
                *conditions,
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
        retried = [(a.retry_at, _reason(a), a.job_id) for a in attempts if a.retry_at is not None]
        given_up = [
            (_reason(a), a.job_id) for a in attempts if not a.delivered and a.retry_at is None
        ]
        sql = self._sql
        async with self._write() as conn:
            await sql.update_many(conn, _DELIVERED, delivered)
            await sql.update_many(conn, _RETRIED, retried)
            await sql.update_many(conn, _GIVEN_UP, given_up)
            await self._keep_attempts(conn, attempts, now)

    async def _keep_attempts(
        self, conn: AsyncConnection, attempts: Sequence[CallbackAttempt], now: int
    ) -> None:
        """Each attempt with the receiver's answer (``callback_attempts``), for
        the operator; the outbox row keeps only the latest. Counted once committed."""
        if not attempts:
            return
        sql = self._sql
        jobs = {
            row[0]: row[1:]
            for row in await sql.fetch(
                conn,
                "SELECT id, message_id, attempts, dialect, kind FROM callback_outbox"
                f" WHERE {sql.member_of('id')}",
                (sql.members([a.job_id for a in attempts]),),
            )
        }
        rows, outcomes = [], []
        for attempt in attempts:
            if attempt.job_id not in jobs:
                continue
            message_id, number, dialect, kind = jobs[attempt.job_id]
            outcome = _outcome(attempt)
            answer = _reason(attempt) or (
                None if attempt.status is None else f"HTTP {attempt.status}"
            )
            rows.append(
                (
                    attempt.job_id,
                    message_id,
                    number,
                    outcome,
                    None if answer is None else answer[:_ANSWER_WIDTH],
                    now,
                )
            )
            outcomes.append((dialect, kind, outcome))
        await sql.insert_many(
            conn,
            "callback_attempts",
            ("callback_id", "message_id", "attempt", "outcome", "answer", "attempted_at"),
            rows,
        )
        after_commit(conn, lambda: _count_attempts(outcomes))

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


def _reason(attempt: CallbackAttempt) -> str | None:
    return None if attempt.error is None else storable_text(attempt.error)


def _outcome(attempt: CallbackAttempt) -> str:
    if attempt.delivered:
        return "delivered"
    return "retry" if attempt.retry_at is not None else "failed"


def _count_attempts(outcomes: Sequence[tuple[str, str, str]]) -> None:
    for dialect, kind, outcome in outcomes:
        events.callback_attempted(dialect, kind, outcome)
