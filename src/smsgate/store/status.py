"""What customers read about their messages: one message, a batch report, counts by state.

Every query is scoped by account: another account's id reads as absent.
"""

from __future__ import annotations

from sqlalchemy import func, select

from smsgate.core.model import MessageView
from smsgate.core.states import Reason, State
from smsgate.store import schema as t
from smsgate.store.base import StoreBase, columns_of, records_of, storable_id
from smsgate.store.records import ReportLine


class StatusStore(StoreBase):
    """Message and batch status, as the dialects' query endpoints report it."""

    async def message(self, account_id: int, message_id: int) -> MessageView | None:
        """One message of this account; another account's id reads as absent."""
        if not storable_id(message_id):
            return None
        m = t.messages.c
        async with self._read() as conn:
            row = (
                await conn.execute(
                    select(
                        m.id,
                        m.batch_id,
                        m.recipient,
                        m.state,
                        m.reason,
                        m.network_id,
                        m.created_at,
                        m.submitted_at,
                        m.done_at,
                        m.client_ref,
                    ).where(m.id == message_id, m.account_id == account_id)
                )
            ).first()
        if row is None:
            return None
        return MessageView(
            id=row.id,
            batch_id=row.batch_id,
            recipient=row.recipient,
            state=State(row.state),
            reason=Reason(row.reason),
            network_id=row.network_id,
            created_at=row.created_at,
            submitted_at=row.submitted_at,
            done_at=row.done_at,
            client_ref=row.client_ref,
        )

    async def batch_report(
        self, account_id: int, batch_id: int, recipient: str | None = None
    ) -> list[ReportLine] | None:
        """A batch's messages in submission order; None if the account has no such batch."""
        if not storable_id(batch_id):
            return None
        m = t.messages.c
        async with self._read() as conn:
            owner = (
                await conn.execute(select(t.batches.c.account_id).where(t.batches.c.id == batch_id))
            ).scalar_one_or_none()
            if owner != account_id:
                return None
            query = select(*columns_of(t.messages, ReportLine)).where(m.batch_id == batch_id)
            if recipient is not None:
                query = query.where(m.recipient == recipient)
            rows = (await conn.execute(query.order_by(m.id))).all()
        return records_of(ReportLine, rows)

    async def count_by_state(self, account_id: int | None = None) -> dict[State, int]:
        m = t.messages.c
        query = select(m.state, func.count()).group_by(m.state)
        if account_id is not None:
            query = query.where(m.account_id == account_id)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return {State(state): int(count) for state, count in rows}
