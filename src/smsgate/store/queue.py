"""The message table as the delivery queue: claims under leases, and what connectors said."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from sqlalchemy import select

from smsgate.core.states import Reason, State
from smsgate.observe import events
from smsgate.store import schema as t
from smsgate.store.base import LEASE_ENDS, after_commit
from smsgate.store.driver_sql import RowUpdate
from smsgate.store.finals import FinalStates
from smsgate.store.records import OutboundMessage, Refused, RetryLater, SubmitOutcome, Submitted

_SUBMITTED = RowUpdate(
    "messages",
    (
        ("connector", "text", "{v}"),
        ("carrier_ref", "text", "{v}"),
        ("submitted_at", "bigint", "{v}"),
    ),
    f"state = 'submitted', {LEASE_ENDS}",
)


_RETRY = RowUpdate(
    "messages",
    (("due_at", "bigint", "{v}"), ("attempts", "smallint", "attempts - {v}")),
    LEASE_ENDS,
)


_OUTBOUND_COLUMNS = ", ".join(field.name for field in fields(OutboundMessage))


def _outbound(row: Sequence[Any]) -> OutboundMessage:
    """A claimed row, its columns in ``_OUTBOUND_COLUMNS`` order; SQLite keeps
    booleans as integers."""
    record = OutboundMessage(*row)
    object.__setattr__(record, "want_report", bool(record.want_report))
    return record


def _count_submitted(submitted: Sequence[Submitted]) -> None:
    for connector, count in Counter(o.connector for o in submitted).items():
        events.submitted(connector, count)


class QueueStore(FinalStates):
    """Claiming due messages and recording submission outcomes."""

    async def claim_due(self, owner: str, limit: int, lease_ms: int) -> list[OutboundMessage]:
        """Lease up to ``limit`` due messages to ``owner``, most urgent first.

        A lease that runs out (its worker died) makes the message claimable again;
        on PostgreSQL ``SKIP LOCKED`` lets many workers claim side by side.
        """
        now = self.clock()
        sql = self._sql
        claim = (
            "UPDATE messages SET lease_owner = ?, lease_until = ?, attempts = attempts + 1"
            " WHERE id IN (SELECT id FROM messages"
            f" WHERE {t.WAITING_FOR_DISPATCH} AND due_at <= ?"
            " AND (lease_until IS NULL OR lease_until < ?)"
            f" ORDER BY priority, due_at LIMIT ?{sql.lock_rows_skip_locked})"
            f" RETURNING {_OUTBOUND_COLUMNS}"
        )
        async with self._write() as conn:
            rows = await sql.fetch(conn, claim, (owner, now + lease_ms, now, now, limit))
        self.last_claim_ms = now  # the worker heartbeat reports it: this worker claims
        return [_outbound(row) for row in rows]

    async def record_submissions(self, owner: str, outcomes: Sequence[SubmitOutcome]) -> None:
        """Apply what the connector said about each claimed message, in one transaction."""
        now = self.clock()
        sql = self._sql
        async with self._write() as conn:
            # Only the current lease holder may decide; a worker whose lease ran
            # out (and whose messages another worker re-claimed) is ignored.
            mine = {
                row[0]
                for row in await sql.fetch(
                    conn,
                    f"SELECT id FROM messages WHERE {sql.member_of('id')}"
                    f" AND lease_owner = ? AND {t.WAITING_FOR_DISPATCH}{sql.lock_rows}",
                    (sql.members([o.message_id for o in outcomes]), owner),
                )
            }
            outcomes = [o for o in outcomes if o.message_id in mine]
            submitted = [o for o in outcomes if isinstance(o, Submitted)]
            retries = [o for o in outcomes if isinstance(o, RetryLater)]
            refused = [o for o in outcomes if isinstance(o, Refused)]
            await sql.update_many(
                conn,
                _SUBMITTED,
                [(o.connector, o.carrier_ref, now, o.message_id) for o in submitted],
            )
            await self._insert_events(
                conn, [(o.message_id, State.SUBMITTED, Reason.NONE, None) for o in submitted], now
            )
            if submitted:
                after_commit(conn, lambda: _count_submitted(submitted))
            await sql.update_many(
                conn,
                _RETRY,
                [(now + o.delay_ms, 0 if o.counts_attempt else 1, o.message_id) for o in retries],
            )
            if refused:
                await self._finish(
                    conn, [(o.message_id, o.state, o.reason, o.error) for o in refused], now
                )

    async def awaiting_receipts(self, connector: str) -> list[tuple[str, str]]:
        """(carrier_ref, recipient) of messages a connector took but has not reported on."""
        m = t.messages.c
        async with self._read() as conn:
            rows = (
                await conn.execute(
                    select(m.carrier_ref, m.recipient).where(
                        m.connector == connector, m.state == State.SUBMITTED.value
                    )
                )
            ).all()
        return [(row.carrier_ref, row.recipient) for row in rows]
