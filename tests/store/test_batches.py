"""Cancelling a batch on both engines: only what has not left, refunded once."""

from __future__ import annotations

import pytest
from tests.support.store import funded, prepared

from smsgate.core.states import State
from smsgate.store.repo import Store


async def test_cancel_takes_waiting_messages_and_refunds_them(store: Store) -> None:
    account = await funded(store, credit=10_000)
    later = store.clock() + 3_600_000
    waiting = await store.accept(
        account.id,
        dialect="advanta",
        messages=prepared(3, cost=100, due_at=later, state=State.SCHEDULED),
    )
    now = await store.accept(account.id, dialect="advanta", messages=prepared(2, cost=100))
    claimed = await store.claim_due("worker-1", 10, 60_000)
    assert {m.id for m in claimed} == set(now.message_ids)
    assert await store.balance(account.id) == 9_500

    taken = await store.cancel_batch(waiting.batch_id)
    assert (taken.messages, taken.refunded) == (3, 300)
    assert await store.batch_progress(waiting.batch_id) == {"cancelled": 3}
    assert await store.balance(account.id) == 9_800
    refund = (await store.recent_ledger(account.id))[0]
    assert (refund.kind, refund.amount, refund.batch_id) == ("refund", 300, waiting.batch_id)
    events = (await store.message_history(waiting.message_ids[0])).events
    assert [e.state for e in events] == ["cancelled"]

    # Claimed messages are on their way: a cancel leaves them, and a second
    # cancel finds nothing more to refund.
    assert (await store.cancel_batch(now.batch_id)).messages == 0
    assert (await store.cancel_batch(waiting.batch_id)).refunded == 0
    assert await store.batch_progress(now.batch_id) == {"queued": 2}
    assert await store.balance(account.id) == 9_800
    with pytest.raises(LookupError):
        await store.cancel_batch(999_999)
