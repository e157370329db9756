"""What the operator's commands and the console read: messages by filter, and
a message's history (its claims, the parts the carrier took with their
receipts, the gateway's own state changes and the callback attempts).

These are the only queries without an index of their own: they walk the
messages table from the newest id down and stop at ``limit`` matches, which
is quick for recent traffic and never locks anything the hot path needs.
"""

from __future__ import annotations

from sqlalchemy import select

from smsgate.store import schema as t
from smsgate.store.base import StoreBase, columns_of, records_of
from smsgate.store.records import (
    CallbackAttemptView,
    Claim,
    MessageEvent,
    MessageFilter,
    MessageHistory,
    MessageRow,
    PartHistory,
)


class AdminStore(StoreBase):
    """Listing messages and reading a message's events."""

    async def find_messages(self, where: MessageFilter) -> list[MessageRow]:
        m = t.messages.c
        query = select(*columns_of(t.messages, MessageRow)).order_by(m.id.desc())
        conditions = {
            m.account_id: where.account_id,
            m.recipient: where.recipient,
            m.batch_id: where.batch_id,
            m.state: where.state,
        }
        for column, value in conditions.items():
            if value is not None:
                query = query.where(column == value)
        if where.since_ms is not None:
            query = query.where(m.created_at >= where.since_ms)
        if where.until_ms is not None:
            query = query.where(m.created_at < where.until_ms)
        async with self._read() as conn:
            rows = (await conn.execute(query.limit(where.limit))).all()
        return records_of(MessageRow, rows)

    async def message_row(self, message_id: int) -> MessageRow | None:
        m = t.messages.c
        query = select(*columns_of(t.messages, MessageRow)).where(m.id == message_id)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        found = records_of(MessageRow, rows)
        return found[0] if found else None

    async def message_history(self, message_id: int) -> MessageHistory:
        """One message's claims, parts, events and callback attempts, read in
        one transaction so they agree with each other."""
        c, p, e = t.claims.c, t.submitted_parts.c, t.delivery_events.c
        a, o = t.callback_attempts.c, t.callback_outbox.c
        async with self._read() as conn:
            claims = await conn.execute(
                select(*columns_of(t.claims, Claim))
                .where(c.message_id == message_id)
                .order_by(c.id)
            )
            parts = await conn.execute(
                select(*columns_of(t.submitted_parts, PartHistory))
                .where(p.message_id == message_id)
                .order_by(p.id)
            )
            events = await conn.execute(
                select(*columns_of(t.delivery_events, MessageEvent))
                .where(e.message_id == message_id)
                .order_by(e.id)
            )
            callbacks = await conn.execute(
                select(a.callback_id, o.kind, o.url, a.attempt, a.outcome, a.answer, a.attempted_at)
                .join(t.callback_outbox, o.id == a.callback_id)
                .where(a.message_id == message_id)
                .order_by(a.id)
            )
            return MessageHistory(
                claims=records_of(Claim, claims.all()),
                parts=records_of(PartHistory, parts.all()),
                events=records_of(MessageEvent, events.all()),
                callbacks=records_of(CallbackAttemptView, callbacks.all()),
            )
