"""Reply numbers and conversations on both engines: a (number, handset) pair
belongs to one account at a time, and a reply follows its pair."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select
from tests.support.store import advance, funded, prepared

from smsgate.core.model import MessageFlag, PreparedMessage
from smsgate.store import schema as t
from smsgate.store.records import (
    AcceptedBatch,
    InboundMessage,
    InsufficientCredit,
    NoReplyNumber,
    ReplyPool,
)
from smsgate.store.repo import Store

HANDSET = "+254712345005"
HOUR_MS = 3_600_000
POOL = ReplyPool(("254709000991", "254709000992"), window_ms=HOUR_MS)


def question(handset: str = HANDSET, *, count: int = 1) -> list[PreparedMessage]:
    """Repliable messages as ``prepare`` leaves them: from the pool's first number."""
    messages = prepared(count)
    for m in messages:
        m.recipient, m.flags, m.sender = handset, int(MessageFlag.REPLIABLE), POOL.numbers[0]
    return messages


async def senders_of(store: Store, batch: AcceptedBatch) -> set[str]:
    m = t.messages.c
    async with store.engines.reader.connect() as conn:
        found = await conn.execute(select(m.sender).where(m.batch_id == batch.batch_id))
        return set(found.scalars())


def reply(number: str, body: str, handset: str = HANDSET) -> InboundMessage:
    return InboundMessage("sandbox", handset.lstrip("+"), number, body, "7bit", 1)


async def test_two_accounts_asking_one_handset_get_two_numbers_and_each_its_reply(
    store: Store,
) -> None:
    a, b, c = [await funded(store) for _ in range(3)]
    first = await store.accept(a.id, dialect="eapi", messages=question(), reply_pool=POOL)
    second = await store.accept(b.id, dialect="eapi", messages=question(), reply_pool=POOL)
    again = await store.accept(a.id, dialect="eapi", messages=question(), reply_pool=POOL)
    assert await senders_of(store, first) == {"254709000991"}
    assert await senders_of(store, second) == {"254709000992"}
    assert await senders_of(store, again) == {"254709000991"}  # its own conversation
    other_handset = await store.accept(
        c.id, dialect="eapi", messages=question("+254712345006"), reply_pool=POOL
    )
    assert await senders_of(store, other_handset) == {"254709000991"}

    await store.record_inbound([reply("254709000991", "for A"), reply("254709000992", "for B")])
    [for_a] = await store.inbox(a.id, 0, 10)
    [for_b] = await store.inbox(b.id, 0, 10)
    assert (for_a.body, for_a.batch_id) == ("for A", again.batch_id)
    assert (for_b.body, for_b.batch_id) == ("for B", second.batch_id)
    assert await store.inbox(c.id, 0, 10) == []


async def test_no_free_number_refuses_the_batch_and_writes_nothing(store: Store) -> None:
    a, b, c = [await funded(store, credit=1_000) for _ in range(3)]
    for account in (a, b):
        await store.accept(account.id, dialect="eapi", messages=question(), reply_pool=POOL)
    mixed = question() + prepared(2, prefix="+2547121")
    with pytest.raises(NoReplyNumber, match="no reply number is free for 254712345005"):
        await store.accept(c.id, dialect="eapi", messages=mixed, reply_pool=POOL)
    assert await store.balance(c.id) == 1_000
    assert await store.count_by_state(c.id) == {}
    # Concurrent requests share a commit: the refused one fails alone.
    results = await asyncio.gather(
        store.accept(c.id, dialect="eapi", messages=question(), reply_pool=POOL),
        store.accept(c.id, dialect="eapi", messages=prepared(1)),
        store.accept(a.id, dialect="eapi", messages=question(), reply_pool=POOL),
        return_exceptions=True,
    )
    assert [type(r).__name__ for r in results] == [
        "NoReplyNumber",
        "AcceptedBatch",
        "AcceptedBatch",
    ]

    advance(store, HOUR_MS + 1)  # a's and b's conversations have run out
    late = await store.accept(c.id, dialect="eapi", messages=question(), reply_pool=POOL)
    assert await senders_of(store, late) == {"254709000991"}
    await store.record_inbound([reply("254709000991", "to c now"), reply("254709000992", "late")])
    assert [e.body for e in await store.inbox(c.id, 0, 10)] == ["to c now"]
    # b's pair was not taken since: a late reply still reaches b.
    assert [e.body for e in await store.inbox(b.id, 0, 10)] == ["late"]


async def test_a_batch_the_balance_refuses_opens_no_conversation(store: Store) -> None:
    poor, other = await funded(store, credit=50), await funded(store)
    single = ReplyPool(POOL.numbers[:1], HOUR_MS)
    with pytest.raises(InsufficientCredit):
        await store.accept(poor.id, dialect="eapi", messages=question(), reply_pool=single)
    taken = await store.accept(other.id, dialect="eapi", messages=question(), reply_pool=single)
    assert await senders_of(store, taken) == {"254709000991"}


async def test_two_processes_racing_for_one_handset_never_share_a_number(
    database_url: str,
) -> None:
    """Two stores on one database (two API processes) ask the same handsets
    at once, more accounts than the pool has numbers: every accepted batch
    holds its own number for each handset, its messages say so, and the
    rest are refused."""
    one, two = await Store.open(database_url), await Store.open(database_url)
    try:
        accounts = [await funded(one) for _ in range(4)]
        pool = ReplyPool(("254709000991", "254709000992", "254709000993"), HOUR_MS)
        handsets = [f"+25471234{i:04d}" for i in range(20)]

        async def ask(store: Store, account_id: int) -> AcceptedBatch:
            messages = [m for h in handsets for m in question(h)]
            return await store.accept(
                account_id, dialect="eapi", messages=messages, reply_pool=pool
            )

        results = await asyncio.gather(
            *(ask(one if i % 2 else two, a.id) for i, a in enumerate(accounts)),
            return_exceptions=True,
        )
        assert sorted(type(r).__name__ for r in results) == ["AcceptedBatch"] * 3 + [
            "NoReplyNumber"
        ]
        r, m = t.reply_routes.c, t.messages.c
        async with one.engines.reader.connect() as conn:
            routes = (await conn.execute(select(r.address, r.recipient, r.account_id))).all()
            sent = (await conn.execute(select(m.sender, m.recipient, m.account_id))).all()
        assert len(routes) == 3 * len(handsets)  # each pair has one account
        for handset in handsets:
            assert len({acc for _, h, acc in routes if h == handset}) == 3
        assert sorted(sent) == sorted(routes)  # each message went from its pair's number
    finally:
        await one.close()
        await two.close()


async def test_conversations_from_before_the_window_existed_get_the_default_one(
    store: Store,
) -> None:
    """Migration 0012 on a database with conversations: each is held for the
    default 24 hours from its latest message (down to 0009 and back up)."""
    from alembic import command

    from smsgate.store.migrate import alembic_config, upgrade

    account = await funded(store)
    await store.accept(account.id, dialect="eapi", messages=question(), reply_pool=POOL)
    async with store.engines.writer.begin() as conn:
        await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), "0009"))
    await store.engines.dispose()
    await upgrade(store.engines)
    r = t.reply_routes.c
    async with store.engines.reader.connect() as conn:
        [(created, expires)] = (await conn.execute(select(r.created_at, r.expires_at))).all()
    assert expires == created + 24 * HOUR_MS


async def test_a_reply_holding_nul_is_stored_with_the_others(store: Store) -> None:
    """A handset can send U+0000 (UCS-2 zeros); PostgreSQL text cannot hold
    it, and the reply would fail the transaction of every receipt and reply
    recorded with it. It is kept escaped, and routed like any other."""
    a = await funded(store)
    await store.accept(a.id, dialect="eapi", messages=question(), reply_pool=POOL)
    await store.record_inbound([reply("254709000991", "yes\x00"), reply("254709000991", "ok")])
    assert [e.body for e in await store.inbox(a.id, 0, 10)] == ["yes\\x00", "ok"]
