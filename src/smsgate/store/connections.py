"""Carrier connections, routes, upstream conditions and connector leases."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields

from sqlalchemy import delete, insert, select, update

from smsgate.core.states import UpstreamCondition
from smsgate.store import schema as t
from smsgate.store.base import StoreBase, columns_of, records_of
from smsgate.store.records import ConnectionHealth, ConnectorRow, RouteRow


class ConnectionStore(StoreBase):
    """Configured connectors and routes, and what workers say about them."""

    async def add_connector(self, name: str, kind: str, sealed_url: str) -> None:
        """Register (or replace) a carrier connection by name."""
        async with self._write() as conn:
            await conn.execute(delete(t.connectors).where(t.connectors.c.name == name))
            await conn.execute(
                insert(t.connectors),
                {"name": name, "kind": kind, "sealed_url": sealed_url, "created_at": self.clock()},
            )

    async def connectors(self) -> list[ConnectorRow]:
        async with self._read() as conn:
            rows = (
                await conn.execute(
                    select(*columns_of(t.connectors, ConnectorRow)).order_by(t.connectors.c.name)
                )
            ).all()
        return records_of(ConnectorRow, rows)

    async def remove_connector(self, name: str) -> bool:
        """Forget a connector and its routes; False if there was none."""
        async with self._write() as conn:
            await conn.execute(delete(t.routes).where(t.routes.c.connector == name))
            result = await conn.execute(delete(t.connectors).where(t.connectors.c.name == name))
        return bool(result.rowcount)

    async def add_route(
        self,
        *,
        prefix: str,
        routing_group: int | None,
        connector: str,
        priority: int,
        price: int | None = None,
    ) -> int:
        async with self._write() as conn:
            return int(
                (
                    await conn.execute(
                        insert(t.routes).returning(t.routes.c.id),
                        {
                            "prefix": prefix,
                            "routing_group": routing_group,
                            "connector": connector,
                            "priority": priority,
                            "price": price,
                            "created_at": self.clock(),
                        },
                    )
                ).scalar_one()
            )

    async def routes(self) -> list[RouteRow]:
        async with self._read() as conn:
            rows = (
                await conn.execute(select(*columns_of(t.routes, RouteRow)).order_by(t.routes.c.id))
            ).all()
        return records_of(RouteRow, rows)

    async def remove_route(self, route_id: int) -> bool:
        async with self._write() as conn:
            result = await conn.execute(delete(t.routes).where(t.routes.c.id == route_id))
        return bool(result.rowcount)

    # ---------------------------------------------------- upstream conditions

    async def report_condition(
        self, connector: str, condition: UpstreamCondition, until_ms: int
    ) -> None:
        """Record that a connector's upstream refuses traffic until ``until_ms``."""
        c = t.connector_conditions.c
        async with self._write() as conn:
            await conn.execute(delete(t.connector_conditions).where(c.connector == connector))
            await conn.execute(
                insert(t.connector_conditions),
                {
                    "connector": connector,
                    "condition": condition.value,
                    "until_at": until_ms,
                    "reported_at": self.clock(),
                },
            )

    async def hold_connector_lease(self, connector: str, owner: str, lease_ms: int) -> bool:
        """Take or renew ``owner``'s lease on a shared connector; whether it holds it.

        The lease moves only when its holder stopped renewing it (or gave it
        up), so of several workers asking at once exactly one gets it.
        """
        now = self.clock()
        sql = self._sql
        async with self._write() as conn:
            rows = await sql.fetch(
                conn,
                "INSERT INTO connector_leases (connector, owner, lease_until, taken_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (connector) DO UPDATE"
                " SET owner = excluded.owner, lease_until = excluded.lease_until,"
                " taken_at = CASE WHEN connector_leases.owner = excluded.owner"
                " THEN connector_leases.taken_at ELSE excluded.taken_at END"
                " WHERE connector_leases.owner = excluded.owner"
                " OR connector_leases.lease_until < ? RETURNING owner",
                (connector, owner, now + lease_ms, now, now),
            )
        return bool(rows)

    async def release_connector_lease(self, connector: str, owner: str) -> None:
        c = t.connector_leases.c
        async with self._write() as conn:
            await conn.execute(
                update(t.connector_leases)
                .where(c.connector == connector, c.owner == owner)
                .values(lease_until=0)
            )

    async def connector_leases(self) -> dict[str, tuple[str, int]]:
        """Connector -> (owner, lease_until) of every lease ever taken."""
        c = t.connector_leases.c
        async with self._read() as conn:
            rows = (await conn.execute(select(c.connector, c.owner, c.lease_until))).all()
        return {row.connector: (row.owner, row.lease_until) for row in rows}

    async def active_conditions(self) -> dict[str, UpstreamCondition]:
        """Connectors whose upstream currently refuses traffic, and why."""
        c = t.connector_conditions.c
        async with self._read() as conn:
            rows = (
                await conn.execute(
                    select(c.connector, c.condition).where(c.until_at > self.clock())
                )
            ).all()
        return {row.connector: UpstreamCondition(row.condition) for row in rows}

    async def report_health(self, owner: str, reports: Sequence[ConnectionHealth]) -> None:
        """Record what the connections ``owner`` holds are doing now."""
        if not reports:
            return
        now = self.clock()
        h = t.connector_health.c
        async with self._write() as conn:
            await conn.execute(
                delete(t.connector_health).where(h.connector.in_([r.connector for r in reports]))
            )
            await conn.execute(
                insert(t.connector_health),
                [
                    {
                        **{f.name: getattr(report, f.name) for f in fields(ConnectionHealth)},
                        "owner": owner,
                        "updated_at": now,
                    }
                    for report in reports
                ],
            )

    async def connection_health(self) -> dict[str, ConnectionHealth]:
        """The last report of every connection that has one."""
        async with self._read() as conn:
            rows = (
                await conn.execute(select(*columns_of(t.connector_health, ConnectionHealth)))
            ).all()
        return {row.connector: row for row in records_of(ConnectionHealth, rows)}
