"""Statements sent straight to the database driver, for the dispatch hot path.

Claiming a batch, recording its submissions and matching its receipts run
for every message the gateway delivers. Through SQLAlchemy's compiled
statements each row of an ``executemany`` costs several microseconds of
parameter processing, more than SQLite or PostgreSQL spend executing it, so
these few statements are written once in SQL with ``?`` placeholders and
handed to the driver on the caller's connection (so inside its transaction).
aiosqlite takes them as they are, each in one hop to its thread
(``execute_fetchall``, ``executemany``), where SQLAlchemy's adapter makes
four (cursor, execute, fetch, close) at about 0.1 ms each; asyncpg gets them
renumbered ``$1, $2, …``. A list parameter (``member_of``) is a JSON
array read by ``json_each`` on SQLite and a typed array read by ``unnest``
on PostgreSQL.

Writing many rows is where the engines differ most: SQLite's ``executemany``
runs in C and costs little per row, while PostgreSQL pays per statement, so
there an update of many rows is one statement over ``unnest`` of column
arrays (``RowUpdate``) and an insert is a ``COPY`` (``insert_many``).
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

_PLACEHOLDER = re.compile(r"\?")
_PG_ARRAY_TYPE = {"id": "bigint[]", "text": "text[]"}


@functools.lru_cache(maxsize=64)
def _numbered(sql: str) -> str:
    counter = itertools.count(1)
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


@dataclass(frozen=True)
class RowUpdate:
    """``UPDATE table SET … WHERE id = ?`` for many rows, each its own values.

    ``columns`` are (column, PostgreSQL array element type, expression) set
    from each row's values in order, the expression spelling the value as
    ``{v}`` (``"attempts - {v}"``); each row's last value is its id. ``fixed``
    are assignments the same for every row (``"lease_owner = NULL"``).
    """

    table: str
    columns: tuple[tuple[str, str, str], ...]
    fixed: str = ""

    @functools.cached_property
    def sqlite(self) -> str:
        sets = [f"{name} = {expression.format(v='?')}" for name, _, expression in self.columns]
        return f"UPDATE {self.table} SET {self._assignments(sets)} WHERE id = ?"

    @functools.cached_property
    def postgres(self) -> str:
        sets = [
            f"{name} = {expression.format(v=f'u.v{index}')}"
            for index, (name, _, expression) in enumerate(self.columns)
        ]
        arrays = [f"${index + 1}::{kind}[]" for index, (_, kind, _) in enumerate(self.columns)]
        names = [f"v{index}" for index in range(len(self.columns))]
        return (
            f"UPDATE {self.table} SET {self._assignments(sets)}"
            f" FROM unnest({', '.join(arrays)}, ${len(arrays) + 1}::bigint[])"
            f" AS u({', '.join(names)}, k) WHERE {self.table}.id = u.k"
        )

    def _assignments(self, sets: list[str]) -> str:
        return ", ".join([*sets, self.fixed] if self.fixed else sets)


class DriverSql:
    """One engine's spelling of the hot-path statements, and the calls that run them."""

    def __init__(self, *, postgres: bool) -> None:
        self.postgres = postgres
        self.lock_rows = " FOR UPDATE" if postgres else ""
        self.lock_rows_skip_locked = " FOR UPDATE SKIP LOCKED" if postgres else ""

    def member_of(self, column: str, kind: str = "id") -> str:
        """``column`` is one of the values of a list parameter (see ``members``).

        On PostgreSQL a semi-join over ``unnest`` rather than ``= ANY(array)``:
        a prepared statement keeps the plan made when its table was small,
        and there ``= ANY`` becomes a filter comparing every row the index
        range yields with every element (at 20,000 submitted parts and 450
        receipts, 0.7 s a statement). A join is linear in both sizes
        whichever plan it keeps, and an index lookup per element once the
        table is large.
        """
        if self.postgres:
            return f"{column} IN (SELECT unnest(?::{_PG_ARRAY_TYPE[kind]}))"
        return f"{column} IN (SELECT value FROM json_each(?))"

    def members(self, values: Sequence[Any]) -> Any:
        """The parameter a ``member_of`` condition takes."""
        return list(values) if self.postgres else orjson.dumps(list(values)).decode()

    async def _driver(self, conn: AsyncConnection) -> Any:
        """The driver's connection, inside the caller's transaction.

        SQLAlchemy's asyncpg adapter sends BEGIN only before the first
        statement it runs itself. A transaction whose first statements went
        straight to asyncpg would run them outside any transaction, each
        committed on its own (a crash between them would leave half a write),
        so there the adapter is made to begin first. SQLite's BEGIN is sent
        when the transaction opens (``store.engine``).
        """
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        if self.postgres and conn.in_transaction() and not driver.is_in_transaction():
            await conn.exec_driver_sql("SELECT 1")
        return driver

    async def fetch(
        self, conn: AsyncConnection, sql: str, params: Sequence[Any] = ()
    ) -> list[Sequence[Any]]:
        raw = await self._driver(conn)
        if self.postgres:
            return list(await raw.fetch(_numbered(sql), *params))
        return list(await raw.execute_fetchall(sql, tuple(params)))

    async def execute(self, conn: AsyncConnection, sql: str, params: Sequence[Any] = ()) -> None:
        raw = await self._driver(conn)
        if self.postgres:
            await raw.execute(_numbered(sql), *params)
            return
        await raw.execute_fetchall(sql, tuple(params))

    async def update_many(
        self, conn: AsyncConnection, update: RowUpdate, rows: Sequence[Sequence[Any]]
    ) -> None:
        if not rows:
            return
        raw = await self._driver(conn)
        if self.postgres:
            await raw.execute(
                update.postgres, *(list(column) for column in zip(*rows, strict=True))
            )
            return
        await raw.executemany(update.sqlite, [tuple(row) for row in rows])

    async def insert_many(
        self,
        conn: AsyncConnection,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
    ) -> None:
        if not rows:
            return
        raw = await self._driver(conn)
        if self.postgres:
            await raw.copy_records_to_table(table, records=rows, columns=list(columns))
            return
        marks = ", ".join("?" * len(columns))
        await raw.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
            [tuple(row) for row in rows],
        )
