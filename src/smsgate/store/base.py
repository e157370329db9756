"""What every part of the store shares: engines, clock, driver SQL and small helpers.

The store is one facade (``store.repo.Store``) over one module per concern
(accounts, accepting, status, inbox, connections, the queue, receipts, final
states, the outbox); each is a mixin over this base, so each can be read on
its own and all of them share one pair of engines and one clock.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import fields
from typing import Any, TypeVar

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from smsgate.core.encoding import Encoding
from smsgate.core.states import State
from smsgate.store import schema as t
from smsgate.store.driver_sql import DriverSql
from smsgate.store.engine import Engines

Clock = Callable[[], int]
R = TypeVar("R")

LEASE_ENDS = "lease_owner = NULL, lease_until = NULL"
"""The assignments that end a message's claim."""

_AFTER_COMMIT = "smsgate.after_commit"


def after_commit(conn: AsyncConnection, hook: Callable[[], None]) -> None:
    """Run ``hook`` once the ``StoreBase._write`` transaction of ``conn`` commits."""
    conn.info[_AFTER_COMMIT].append(hook)


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class StoreBase:
    engines: Engines
    clock: Clock
    _sql: DriverSql
    # When this process's dispatcher last polled the queue (its heartbeat reports it).
    last_claim_ms: int | None = None

    @property
    def is_postgres(self) -> bool:
        return self.engines.is_postgres

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction; what ``after_commit`` registered in it runs once
        it has committed (metrics count only work that is on disk)."""
        committed: list[Callable[[], None]] = []
        async with self.engines.writer.begin() as conn:
            conn.info[_AFTER_COMMIT] = committed
            try:
                yield conn
            finally:
                conn.info.pop(_AFTER_COMMIT, None)
        for hook in committed:
            hook()

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engines.reader.connect() as conn:
            yield conn


async def adjust_balance(
    conn: AsyncConnection, account_id: int, delta: int, *, keep_at_least: int | None = None
) -> int | None:
    """Add ``delta`` to the balance in place (no read-modify-write race); None if the
    account is missing or the result would fall below ``keep_at_least``."""
    query = update(t.accounts).where(t.accounts.c.id == account_id)
    if keep_at_least is not None:
        query = query.where(t.accounts.c.balance + delta >= keep_at_least)
    result = await conn.execute(
        query.values(balance=t.accounts.c.balance + delta).returning(t.accounts.c.balance)
    )
    balance = result.scalar_one_or_none()
    return None if balance is None else int(balance)


# Enum .value is a descriptor call; a dict probe is several times cheaper per row.
ENUM_TEXT: dict[Any, str] = {member: member.value for member in (*State, *Encoding)}


def columns_of(table: Any, record: Any) -> list[Any]:
    """The table's columns named like the record's fields, in field order."""
    return [table.c[field.name] for field in fields(record)]


def records_of(record: type[R], rows: Sequence[Any]) -> list[R]:
    """Rows whose column names are the record's fields, as records."""
    return [record(**row._asdict()) for row in rows]


def storable_text(text: str) -> str:
    """Text from outside (a receiver's answer, an error quoting it) as both
    engines can hold it: PostgreSQL refuses NUL in text, which would fail the
    whole transaction it came in, so NUL is kept as the escape ``\\x00``."""
    return text.replace("\x00", "\\x00")


def storable_id(value: int) -> bool:
    """Ids are BIGINT: a client's larger number names nothing (and would not bind)."""
    return 0 < value < 2**63
