"""What the operator's commands read: messages by filter, and a message's history
(its events, and the parts the carrier took with their receipts).

These are the only queries without an index of their own: they walk the
messages table from the newest id down and stop at ``limit`` matches, which
is quick for recent traffic and never locks anything the hot path needs.
"""

from __future__ import annotations

from sqlalchemy import select

from smsgate.store import schema as t
from smsgate.store.base import StoreBase, columns_of, records_of
from smsgate.store.records import MessageEvent, MessageFilter, MessageRow, PartHistory


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

    async def message_events(self, message_id: int) -> list[MessageEvent]:
        e = t.delivery_events.c
        query = (
            select(*columns_of(t.delivery_events, MessageEvent))
            .where(e.message_id == message_id)
            .order_by(e.id)
        )
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return records_of(MessageEvent, rows)

    async def message_parts(self, message_id: int) -> list[PartHistory]:
        """Each part the carrier took, with its receipt, in the order sent."""
        p = t.submitted_parts.c
        query = (
            select(*columns_of(t.submitted_parts, PartHistory))
            .where(p.message_id == message_id)
            .order_by(p.id)
        )
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return records_of(PartHistory, rows)
