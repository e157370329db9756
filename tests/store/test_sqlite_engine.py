"""A task cancelled at any point of a SQLite transaction leaves neither a
pooled connection that cannot begin (its BEGIN ran after it came back) nor a
database locked by a connection given up with a statement still open."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from smsgate.store.engine import open_engines


async def one_transaction(engine: AsyncEngine) -> int:
    async with engine.begin() as conn:
        return int((await conn.execute(text("SELECT 1"))).scalar_one())


async def test_a_cancelled_transaction_leaves_the_connection_usable(tmp_path: Path) -> None:
    engines = open_engines(f"sqlite:///{tmp_path / 'cancel.sqlite3'}", pool_size=1)
    try:
        for engine in (engines.writer, engines.reader):
            await one_transaction(engine)  # connected, so the next BEGIN is the first hop
            # Cancelled after 0, 1, 2 … turns of the loop: some land while the
            # BEGIN is still on its way to the driver, some later.
            for turns in range(60):
                cancelled = asyncio.create_task(one_transaction(engine))
                for _ in range(turns):
                    await asyncio.sleep(0)
                cancelled.cancel()
                await asyncio.gather(cancelled, return_exceptions=True)
                assert await one_transaction(engine) == 1, f"after a cancel at turn {turns}"
    finally:
        await engines.dispose()
