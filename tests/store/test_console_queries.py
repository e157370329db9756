"""The console's aggregate queries on both engines: traffic per minute and per
connection, with the same integer arithmetic on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import update
from tests.support.store import funded, prepared

from smsgate.console.connection_stats import connection_figures
from smsgate.store import schema as t
from smsgate.store.repo import Store


async def test_per_minute_and_per_connection_figures(store: Store) -> None:
    account = await funded(store)
    batch = await store.accept(account.id, dialect="advanta", messages=prepared(6))
    now = store.clock()
    # Submitted a second ago; final after 250 ms, 2.5 s and 2.6 s, one failed,
    # one still waiting for its receipt, one on another connection.
    outcomes = [
        ("sandbox", "delivered", 250),
        ("sandbox", "delivered", 2_500),
        ("sandbox", "delivered", 2_600),
        ("sandbox", "undeliverable", 900),
        ("sandbox", "submitted", None),
        ("smsc1", "delivered", 40_000),
    ]
    async with store.engines.writer.begin() as conn:
        for message_id, (connector, state, took) in zip(batch.message_ids, outcomes, strict=True):
            await conn.execute(
                update(t.messages)
                .where(t.messages.c.id == message_id)
                .values(
                    connector=connector,
                    state=state,
                    submitted_at=now - 1_000,
                    done_at=None if took is None else now - 1_000 + took,
                )
            )
    counts = await store.recent_traffic(now - 60_000)
    figures = {f.connector: f for f in connection_figures(counts)}
    sandbox, smsc1 = figures["sandbox"], figures["smsc1"]
    assert (sandbox.taken, sandbox.delivered, sandbox.failed) == (5, 3, 1)
    assert sandbox.delivery_rate == 0.75
    assert sandbox.median_ms == 2_500  # the 2-3 s bucket, by its middle
    assert (smsc1.delivered, smsc1.median_ms) == (1, 45_000)
    first = await store.message_row(batch.message_ids[0])
    assert first is not None
    minute = first.created_at - first.created_at % 60_000  # one accepting transaction, one time
    per_minute: dict[tuple[int, str], int] = {}
    for count in await store.recent_traffic(now - 3_600_000):
        key = (count.minute, count.state)
        per_minute[key] = per_minute.get(key, 0) + count.messages
    assert per_minute == {
        (minute, "delivered"): 4,
        (minute, "undeliverable"): 1,
        (minute, "submitted"): 1,
    }
    assert await store.recent_traffic(now + 60_000) == []
    assert await store.recent_traffic(now - 60_000, account_id=account.id + 1) == []


async def test_accepted_per_half_hour_counts_messages_of_batches(store: Store) -> None:
    account, other = await funded(store), await funded(store)
    await store.accept(account.id, dialect="advanta", messages=prepared(3))
    await store.accept(account.id, dialect="eapi", messages=prepared(2))
    await store.accept(other.id, dialect="advanta", messages=prepared(4))
    now = store.clock()
    period = 30 * 60_000
    everyone = await store.accepted_per_period(now - 86_400_000, period)
    assert sum(n for _, n in everyone) == 9
    assert all(start % period == 0 and start <= now for start, _ in everyone)
    mine = await store.accepted_per_period(now - 86_400_000, period, account.id)
    assert sum(n for _, n in mine) == 5
    assert await store.accepted_per_period(now + period, period) == []
