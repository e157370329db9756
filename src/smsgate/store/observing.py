"""What ``/metrics`` and ``/readyz`` read: shared state, with cheap queries.

Each query is over a partial index (waiting messages, pending callbacks) or
a table with a row per connection, worker or account, so a scrape costs the
same however many messages the database has delivered.
"""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.dialects import postgresql, sqlite

from smsgate.observe.metrics import ClusterSnapshot
from smsgate.store import schema as t
from smsgate.store.connections import ConnectionStore


class ObservingStore(ConnectionStore):
    """The cluster snapshot and worker heartbeats."""

    async def cluster_snapshot(self, *, account_limit: int = 200) -> ClusterSnapshot:
        now = self.clock()
        m, cb = t.messages.c, t.callback_outbox.c
        waiting = text(t.WAITING_FOR_DISPATCH)
        async with self._read() as conn:
            by_state = (
                await conn.execute(select(m.state, func.count()).where(waiting).group_by(m.state))
            ).all()
            due, oldest_due = (
                await conn.execute(
                    select(func.count(), func.min(m.due_at)).where(
                        waiting, m.due_at <= now, m.lease_until.is_(None) | (m.lease_until < now)
                    )
                )
            ).one()
            pending, callbacks_due, oldest_callback = (
                await conn.execute(
                    select(
                        func.count(),
                        func.count().filter(cb.next_attempt_at <= now),
                        func.min(cb.next_attempt_at).filter(cb.next_attempt_at <= now),
                    ).where(text("state = 'pending'"))
                )
            ).one()
            leases = (
                await conn.execute(
                    select(
                        t.connector_leases.c.connector,
                        t.connector_leases.c.owner,
                        t.connector_leases.c.lease_until,
                    )
                )
            ).all()
            configured = (await conn.execute(select(t.connectors.c.name))).scalars().all()
            workers = (
                await conn.execute(
                    select(
                        t.worker_heartbeats.c.worker,
                        t.worker_heartbeats.c.role,
                        t.worker_heartbeats.c.seen_at,
                        t.worker_heartbeats.c.last_claim_at,
                    )
                )
            ).all()
            balances = (
                await conn.execute(
                    select(t.accounts.c.name, t.accounts.c.balance)
                    .order_by(t.accounts.c.id)
                    .limit(account_limit)
                )
            ).all()
        health = await self.connection_health()
        connections: dict[str, tuple[str | None, int]] = {name: (None, 0) for name in configured}
        connections.update({row.connector: (row.owner, int(row.lease_until)) for row in leases})
        return ClusterSnapshot(
            now_ms=now,
            waiting={state: int(count) for state, count in by_state},
            due=int(due),
            oldest_due_ms=None if oldest_due is None else int(oldest_due),
            callbacks_pending=int(pending),
            callbacks_due=int(callbacks_due),
            oldest_callback_due_ms=None if oldest_callback is None else int(oldest_callback),
            connections=connections,
            workers={
                row.worker: (
                    row.role,
                    int(row.seen_at),
                    None if row.last_claim_at is None else int(row.last_claim_at),
                )
                for row in workers
            },
            balances={row.name: int(row.balance) for row in balances},
            health=health,
        )

    async def heartbeat(self, worker: str, role: str, started_at: int) -> None:
        """Report this worker in, with when its dispatcher last polled the queue."""
        now = self.clock()
        values = {
            "worker": worker,
            "role": role,
            "started_at": started_at,
            "seen_at": now,
            "last_claim_at": self.last_claim_ms,
        }
        insert = (postgresql.insert if self.is_postgres else sqlite.insert)(t.worker_heartbeats)
        statement = insert.values(**values).on_conflict_do_update(
            index_elements=["worker"],
            set_={"seen_at": now, "last_claim_at": values["last_claim_at"], "role": role},
        )
        async with self._write() as conn:
            await conn.execute(statement)

    async def forget_worker(self, worker: str) -> None:
        """A worker that stops cleanly leaves no stale heartbeat behind."""
        async with self._write() as conn:
            await conn.execute(
                t.worker_heartbeats.delete().where(t.worker_heartbeats.c.worker == worker)
            )

    async def claiming_workers(self, since_ms: int) -> list[str]:
        """Workers whose dispatcher polled the queue at or after ``since_ms``."""
        h = t.worker_heartbeats.c
        async with self._read() as conn:
            rows = await conn.execute(select(h.worker).where(h.last_claim_at >= since_ms))
            return list(rows.scalars().all())
