"""The store on both engines: one transaction per promise, leases, receipts, ledger."""

from __future__ import annotations

import asyncio

import pytest

from smsgate.core.encoding import Encoding
from smsgate.core.model import Account, PreparedMessage
from smsgate.core.states import Reason, State
from smsgate.store.migrate import current_revision, head_revision, upgrade
from smsgate.store.records import (
    AlreadyAccepted,
    InboundMessage,
    InsufficientCredit,
    Receipt,
    Refused,
    ReplyMemo,
    RetryLater,
    Submitted,
)
from smsgate.store.repo import Store


def prepared(
    n: int,
    *,
    cost: int = 100,
    due_at: int = 0,
    state: State = State.QUEUED,
    prefix: str = "+2547120",
) -> list[PreparedMessage]:
    return [
        PreparedMessage(
            recipient=f"{prefix}{i:05d}",
            network_id=1,
            sender="SMSGATE",
            text=f"message {i}",
            encoding=Encoding.GSM7,
            segments=1,
            cost=cost,
            client_ref=str(i),
            due_at=due_at,
            state=state,
        )
        for i in range(n)
    ]


def advance(store: Store, ms: int) -> None:
    """Move the store's clock forward, as if ``ms`` milliseconds had passed."""
    base = store.clock()
    store.clock = lambda: base + ms


async def funded(store: Store, credit: int = 100_000, callback: str | None = None) -> Account:
    count = len(await store.accounts())
    account = await store.create_account(
        name=f"acct{count}",
        region="KE",
        timezone="Africa/Nairobi",
        senders=["SMSGATE"],
        dlr_callback_url=callback,
    )
    await store.add_credit(account.id, credit)
    return account


async def test_migrations_are_idempotent(store: Store) -> None:
    await upgrade(store.engines)
    assert await current_revision(store.engines) == head_revision() == "0009"


async def test_accept_returns_ids_in_order_and_charges_once(store: Store) -> None:
    account = await funded(store)
    batch = await store.accept(account.id, dialect="advanta", messages=prepared(250))
    assert len(set(batch.message_ids)) == 250
    assert batch.message_ids == sorted(batch.message_ids)
    assert batch.balance == await store.balance(account.id) == 75_000
    for index in (0, 137, 249):
        view = await store.message(account.id, batch.message_ids[index])
        assert view is not None and view.client_ref == str(index)
        assert view.recipient == f"+2547120{index:05d}"
    entries = await store.ledger_entries(account.id)
    assert [(e.kind, e.amount, e.balance_after) for e in entries] == [
        ("topup", 100_000, 100_000),
        ("charge", -25_000, 75_000),
    ]


async def test_insufficient_credit_writes_nothing(store: Store) -> None:
    account = await funded(store, credit=999)
    with pytest.raises(InsufficientCredit) as raised:
        await store.accept(account.id, dialect="advanta", messages=prepared(10))
    assert (raised.value.balance, raised.value.needed) == (999, 1000)
    assert await store.balance(account.id) == 999
    assert await store.count_by_state(account.id) == {}
    assert [e.kind for e in await store.ledger_entries(account.id)] == ["topup"]


async def test_other_accounts_messages_are_invisible(store: Store) -> None:
    owner, stranger = await funded(store), await funded(store)
    batch = await store.accept(owner.id, dialect="advanta", messages=prepared(1))
    assert await store.message(owner.id, batch.message_ids[0]) is not None
    assert await store.message(stranger.id, batch.message_ids[0]) is None


async def test_claims_are_exclusive_and_leases_expire(store: Store) -> None:
    account = await funded(store)
    await store.accept(account.id, dialect="advanta", messages=prepared(10))
    first = await store.claim_due("w1", 6, lease_ms=60_000)
    second = await store.claim_due("w2", 6, lease_ms=60_000)
    assert len(first) == 6 and len(second) == 4
    assert not {m.id for m in first} & {m.id for m in second}
    assert await store.claim_due("w3", 10, lease_ms=60_000) == []
    # w1 dies: once its lease runs out, another worker gets its messages back.
    advance(store, 61_000)
    reclaimed = await store.claim_due("w3", 10, lease_ms=60_000)
    assert {m.id for m in reclaimed} == {m.id for m in first} | {m.id for m in second}
    assert {m.attempts for m in reclaimed} == {2}


async def test_scheduled_messages_are_not_claimed_early(store: Store) -> None:
    account = await funded(store)
    later = store.clock() + 3_600_000
    await store.accept(
        account.id, dialect="advanta", messages=prepared(3, due_at=later, state=State.SCHEDULED)
    )
    assert await store.claim_due("w", 10, lease_ms=1000) == []
    advance(store, later - store.clock())
    assert len(await store.claim_due("w", 10, lease_ms=1000)) == 3


async def test_submission_outcomes_and_stale_leases(store: Store) -> None:
    account = await funded(store)
    batch = await store.accept(account.id, dialect="advanta", messages=prepared(3))
    a, b, c = batch.message_ids
    await store.claim_due("w1", 3, lease_ms=60_000)
    await store.record_submissions(
        "w1",
        [
            Submitted(a, "sandbox", "ref-a"),
            RetryLater(b, 5_000, "throttled"),
            # Longer than the column: cut, not a failed transaction for all three.
            Refused(c, State.REJECTED, Reason.CARRIER_REJECTED, "refused: " + "x" * 60),
        ],
    )
    states = {m: (await store.message(account.id, m)).state for m in (a, b, c)}  # type: ignore[union-attr]
    assert states == {a: State.SUBMITTED, b: State.QUEUED, c: State.REJECTED}
    assert await store.balance(account.id) == 100_000 - 300 + 100  # c refunded
    # An outcome from a worker that no longer holds the lease is ignored.
    await store.record_submissions("someone-else", [Submitted(b, "sandbox", "ref-b")])
    view = await store.message(account.id, b)
    assert view is not None and view.state is State.QUEUED


async def test_a_wait_the_message_is_not_to_blame_for_uses_no_attempt(store: Store) -> None:
    account = await funded(store)
    batch = await store.accept(account.id, dialect="advanta", messages=prepared(2))
    counted, uncounted = batch.message_ids
    assert {m.attempts for m in await store.claim_due("w", 2, lease_ms=60_000)} == {1}
    await store.record_submissions(
        "w",
        [
            RetryLater(counted, 1_000, "connection lost"),
            RetryLater(uncounted, 1_000, "ESME_RTHROTTLED", counts_attempt=False),
        ],
    )
    advance(store, 1_000)
    again = {m.id: m.attempts for m in await store.claim_due("w", 2, lease_ms=60_000)}
    assert again == {counted: 2, uncounted: 1}


async def test_receipts_finish_messages_once_and_queue_callbacks(store: Store) -> None:
    account = await funded(store, callback="http://127.0.0.1:9/dlr")
    batch = await store.accept(account.id, dialect="advanta", messages=prepared(2))
    a, b = batch.message_ids
    await store.claim_due("w", 2, lease_ms=60_000)
    await store.record_submissions(
        "w", [Submitted(a, "sandbox", "r1"), Submitted(b, "sandbox", "r2")]
    )
    early = Receipt("sandbox", "r3", State.DELIVERED, Reason.NONE, "DELIVRD", store.clock())
    receipts = [
        Receipt("sandbox", "r1", State.DELIVERED, Reason.NONE, "DELIVRD", store.clock()),
        Receipt(
            "sandbox", "r2", State.UNDELIVERABLE, Reason.ABSENT_SUBSCRIBER, "UNDELIV", store.clock()
        ),
        early,
    ]
    assert await store.record_receipts(receipts) == [early]
    assert (await store.message(account.id, a)).state is State.DELIVERED  # type: ignore[union-attr]
    view_b = await store.message(account.id, b)
    assert view_b is not None and view_b.reason is Reason.ABSENT_SUBSCRIBER
    # A duplicated receipt changes nothing and queues no second callback.
    late = Receipt("sandbox", "r1", State.UNDELIVERABLE, Reason.UNKNOWN, "UNDELIV", store.clock())
    assert await store.record_receipts([late]) == [late]
    assert (await store.message(account.id, a)).state is State.DELIVERED  # type: ignore[union-attr]
    jobs = await store.claim_callbacks(10, lease_ms=60_000)
    assert sorted(job.payload["message_id"] for job in jobs) == [a, b]
    assert {job.payload["state"] for job in jobs} == {"delivered", "undeliverable"}
    assert await store.claim_callbacks(10, lease_ms=60_000) == []


async def test_callback_retry_and_give_up(store: Store) -> None:
    account = await funded(store, callback="http://127.0.0.1:9/dlr")
    batch = await store.accept(account.id, dialect="advanta", messages=prepared(1))
    await store.claim_due("w", 1, lease_ms=60_000)
    await store.record_submissions("w", [Submitted(batch.message_ids[0], "sandbox", "x")])
    await store.record_receipts(
        [Receipt("sandbox", "x", State.DELIVERED, Reason.NONE, "DELIVRD", store.clock())]
    )
    [job] = await store.claim_callbacks(10, lease_ms=60_000)
    await store.callback_finished(
        job.id, delivered=False, error="HTTP 500", retry_at=store.clock() + 10_000
    )
    assert await store.claim_callbacks(10, lease_ms=60_000) == []
    advance(store, 10_001)
    [again] = await store.claim_callbacks(10, lease_ms=60_000)
    assert again.attempts == 2
    await store.callback_finished(again.id, delivered=True)
    assert await store.callback_states(account.id) == {"sent": 1}


async def test_reply_memo_is_part_of_the_batch_transaction(store: Store) -> None:
    account = await funded(store)

    def memo(key: str, window_start: int = 0) -> ReplyMemo:
        return ReplyMemo("eapi", key, lambda batch: f"0|IN_PROGRESS|{batch.batch_id}", window_start)

    first = await store.accept(account.id, dialect="eapi", messages=prepared(2), memo=memo("7"))
    assert await store.remembered_reply(account.id, "eapi", "7") == (
        f"0|IN_PROGRESS|{first.batch_id}"
    )
    with pytest.raises(AlreadyAccepted) as repeat:
        await store.accept(account.id, dialect="eapi", messages=prepared(2), memo=memo("7"))
    assert repeat.value.reply == f"0|IN_PROGRESS|{first.batch_id}"
    assert sum((await store.count_by_state(account.id)).values()) == 2  # nothing twice
    assert await store.balance(account.id) == 100_000 - 200
    # Outside the window the key is forgotten and may be used again.
    advance(store, 10_000)
    again = await store.accept(
        account.id,
        dialect="eapi",
        messages=prepared(1),
        memo=memo("7", window_start=store.clock() - 5_000),
    )
    assert await store.remembered_reply(account.id, "eapi", "7") == (
        f"0|IN_PROGRESS|{again.batch_id}"
    )


async def test_non_final_receipts_do_not_move_messages(store: Store) -> None:
    account = await funded(store)
    batch = await store.accept(account.id, dialect="advanta", messages=prepared(1))
    [mid] = batch.message_ids
    await store.claim_due("w", 1, lease_ms=60_000)
    await store.record_submissions("w", [Submitted(mid, "sandbox", "r")])
    enroute = Receipt("sandbox", "r", State.QUEUED, Reason.NONE, "ENROUTE", store.clock())
    assert await store.record_receipts([enroute]) == []
    view = await store.message(account.id, mid)
    assert view is not None and view.state is State.SUBMITTED


async def test_a_connector_lease_has_one_holder_until_it_lapses(store: Store) -> None:
    assert await store.hold_connector_lease("smsc1", "w1", 5_000)
    assert not await store.hold_connector_lease("smsc1", "w2", 5_000)
    assert await store.hold_connector_lease("smsc1", "w1", 5_000)  # renewed
    assert await store.hold_connector_lease("smsc2", "w2", 5_000)  # another connector
    advance(store, 5_001)  # w1 stopped renewing
    assert await store.hold_connector_lease("smsc1", "w2", 5_000)
    assert not await store.hold_connector_lease("smsc1", "w1", 5_000)
    await store.release_connector_lease("smsc1", "w1")  # not its lease: no effect
    assert not await store.hold_connector_lease("smsc1", "w3", 5_000)
    await store.release_connector_lease("smsc1", "w2")  # given up: free at once
    assert await store.hold_connector_lease("smsc1", "w3", 5_000)
    leases = await store.connector_leases()
    assert {name: owner for name, (owner, _) in leases.items()} == {"smsc1": "w3", "smsc2": "w2"}


async def test_concurrent_small_batches_share_a_commit_and_fail_alone(store: Store) -> None:
    rich = await funded(store, credit=10_000)
    poor = await funded(store, credit=50)  # less than one message costs
    requests = [rich] * 20 + [poor] + [rich] * 20
    results = await asyncio.gather(
        *(store.accept(a.id, dialect="advanta", messages=prepared(1)) for a in requests),
        return_exceptions=True,
    )
    assert [type(r).__name__ for r in results] == (
        ["AcceptedBatch"] * 20 + ["InsufficientCredit"] + ["AcceptedBatch"] * 20
    )
    assert store._group.largest_group > 1  # they did share transactions
    assert await store.balance(rich.id) == 10_000 - 40 * 100
    assert await store.balance(poor.id) == 50
    assert await store.count_by_state(poor.id) == {}
    charges = [e for e in await store.ledger_entries(rich.id) if e.kind == "charge"]
    assert len(charges) == 40 and {e.amount for e in charges} == {-100}
    ids = [m for r in results if not isinstance(r, BaseException) for m in r.message_ids]
    assert len(set(ids)) == 40


async def test_inbound_to_a_shortcode_belongs_to_the_one_account_that_registered_it(
    store: Store,
) -> None:
    async def account(name: str, *senders: str) -> int:
        created = await store.create_account(
            name=name, region="KE", timezone="Africa/Nairobi", senders=senders
        )
        return created.id

    owner = await account("owner", "22345", "SHOP")
    sharing = [await account("one", "30000"), await account("other", "30000")]

    def mo(recipient: str, body: str) -> InboundMessage:
        return InboundMessage("smsc", "254712345678", recipient, body, "7bit", 1)

    await store.record_inbound([mo("22345", "mine"), mo("30000", "shared"), mo("40404", "nobody")])
    assert [entry.body for entry in await store.inbox(owner, 0, 10)] == ["mine"]
    for account_id in sharing:  # a shortcode two accounts registered names neither
        assert await store.inbox(account_id, 0, 10) == []


async def test_statements_sent_straight_to_the_driver_are_inside_the_transaction(
    store: Store,
) -> None:
    """The hot path's statements bypass SQLAlchemy; a transaction that starts
    with one must still be one transaction: nothing of it stands if it fails."""
    account = await funded(store)
    with pytest.raises(RuntimeError):
        async with store._write() as conn:
            changed = await store._sql.fetch(
                conn, "UPDATE accounts SET balance = 0 WHERE id = ? RETURNING id", (account.id,)
            )
            assert [row[0] for row in changed] == [account.id]
            raise RuntimeError("the transaction fails after the write")
    assert await store.balance(account.id) == 100_000
