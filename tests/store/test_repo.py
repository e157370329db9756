"""The store on both engines: one transaction per promise, leases, receipts, ledger."""

from __future__ import annotations

import asyncio
import logging

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection
from tests.support.store import advance, claims_of, funded, prepared, sent

from smsgate.core.states import Reason, State
from smsgate.store import schema
from smsgate.store.migrate import current_revision, head_revision, upgrade
from smsgate.store.records import (
    AcceptedBatch,
    AlreadyAccepted,
    CallbackAttempt,
    InboundMessage,
    InsufficientCredit,
    Receipt,
    ReceiptTally,
    Refused,
    ReplyMemo,
    RetryLater,
)
from smsgate.store.repo import Store


async def test_migrations_are_idempotent(store: Store) -> None:
    await upgrade(store.engines)
    assert await current_revision(store.engines) == head_revision() == "0021"


async def test_migrations_build_exactly_the_declared_schema(store: Store) -> None:
    """What the migrations built and what ``store.schema`` declares must not
    drift apart: the code reads the one, the databases hold the other."""

    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection)
        return list(compare_metadata(context, schema.metadata))

    async with store.engines.reader.connect() as conn:
        assert await conn.run_sync(differences) == []


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


async def test_every_claim_is_recorded_with_its_holder_and_time(store: Store) -> None:
    """A lease that ran out leaves its trace: the message's history names each
    claim, who took it and when, on both engines."""
    account = await funded(store)
    batch = await store.accept(account.id, dialect="advanta", messages=prepared(3))
    advance(store, 0)  # the clock stands still from here, but for the step below
    start = store.clock()
    await store.claim_due("w1", 10, lease_ms=60_000)
    advance(store, 61_000)  # w1 died holding them
    again = {m.id for m in await store.claim_due("w2", 2, lease_ms=30_000)}
    assert len(again) == 2
    for mid in batch.message_ids:
        claims = (await store.message_history(mid)).claims
        expected = [(1, "w1", start, start + 60_000)]
        if mid in again:
            expected.append((2, "w2", start + 61_000, start + 91_000))
        assert [(c.attempt, c.owner, c.claimed_at, c.lease_until) for c in claims] == expected


async def test_deleting_an_account_leaves_no_row_of_its_messages(store: Store) -> None:
    account, other = await funded(store), await funded(store)
    await store.accept(account.id, dialect="advanta", messages=prepared(2))
    await store.accept(other.id, dialect="advanta", messages=prepared(1))
    claimed = await store.claim_due("w", 10, lease_ms=60_000)
    await store.record_submissions(
        "w", [sent(m.id, f"r{m.id}") for m in claimed], claims_of(claimed)
    )
    await store.delete_account(account.id)
    for table in (schema.claims, schema.submitted_parts):
        async with store.engines.writer.connect() as conn:
            left = (await conn.execute(table.select())).all()
        assert len(left) == 1, table.name  # the other account's message only


async def test_a_message_claimed_after_its_validity_expires_refunded_unsent(
    store: Store,
) -> None:
    account = await funded(store)
    advance(store, 0)
    now = store.clock()
    fresh, stale = prepared(2, cost=150)
    stale.expires_at = now + 1_000
    fresh.expires_at = now + 60_000
    batch = await store.accept(account.id, dialect="smpp", messages=[fresh, stale])
    charged = (await store.account(account.id)).balance  # type: ignore[union-attr]
    advance(store, 5_000)  # a worker reaches them late
    claimed = await store.claim_due("w", 10, lease_ms=60_000)
    assert [m.id for m in claimed] == [batch.message_ids[0]]
    assert claimed[0].expires_at == now + 60_000  # the connector tells the carrier
    row = await store.message_row(batch.message_ids[1])
    assert row is not None and (row.state, row.reason) == ("expired", "validity_expired")
    assert (await store.account(account.id)).balance == charged + 150  # type: ignore[union-attr]
    history = await store.message_history(batch.message_ids[1])
    assert [c.owner for c in history.claims] == ["w"]
    assert [e.state for e in history.events] == ["expired"]


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
    tokens = claims_of(await store.claim_due("w1", 3, lease_ms=60_000))
    await store.record_submissions(
        "w1",
        [
            sent(a, "ref-a"),
            RetryLater(b, 5_000, "throttled"),
            # Longer than the column: cut, not a failed transaction for all three.
            Refused(c, State.REJECTED, Reason.CARRIER_REJECTED, "refused: " + "x" * 60),
        ],
        tokens,
    )
    states = {m: (await store.message(account.id, m)).state for m in (a, b, c)}  # type: ignore[union-attr]
    assert states == {a: State.SUBMITTED, b: State.QUEUED, c: State.REJECTED}
    assert await store.balance(account.id) == 100_000 - 300 + 100  # c refunded
    # An outcome from a worker that no longer holds the lease is ignored.
    await store.record_submissions("someone-else", [sent(b, "ref-b")], tokens)
    view = await store.message(account.id, b)
    assert view is not None and view.state is State.QUEUED


async def test_a_wait_the_message_is_not_to_blame_for_uses_no_attempt(store: Store) -> None:
    account = await funded(store)
    batch = await store.accept(account.id, dialect="advanta", messages=prepared(2))
    counted, uncounted = batch.message_ids
    tokens = claims_of(await store.claim_due("w", 2, lease_ms=60_000))
    assert set(tokens.values()) == {1}
    await store.record_submissions(
        "w",
        [
            RetryLater(counted, 1_000, "connection lost"),
            RetryLater(uncounted, 1_000, "ESME_RTHROTTLED", counts_attempt=False),
        ],
        tokens,
    )
    advance(store, 1_000)
    again = {m.id: m.attempts for m in await store.claim_due("w", 2, lease_ms=60_000)}
    assert again == {counted: 2, uncounted: 1}
    claims = (await store.message_history(uncounted)).claims
    assert [c.attempt for c in claims] == [1, 1]  # claimed twice, as its first attempt


async def test_receipts_finish_messages_once_and_queue_callbacks(store: Store) -> None:
    account = await funded(store, callback="http://127.0.0.1:9/dlr")
    batch = await store.accept(account.id, dialect="advanta", messages=prepared(2))
    a, b = batch.message_ids
    tokens = claims_of(await store.claim_due("w", 2, lease_ms=60_000))
    await store.record_submissions("w", [sent(a, "r1"), sent(b, "r2")], tokens)
    early = Receipt("sandbox", "r3", State.DELIVERED, Reason.NONE, "DELIVRD", store.clock())
    receipts = [
        Receipt("sandbox", "r1", State.DELIVERED, Reason.NONE, "DELIVRD", store.clock()),
        Receipt(
            "sandbox", "r2", State.UNDELIVERABLE, Reason.ABSENT_SUBSCRIBER, "UNDELIV", store.clock()
        ),
        early,
    ]
    assert await store.record_receipts(receipts) == ReceiptTally(matched=2, unmatched=1)
    assert (await store.message(account.id, a)).state is State.DELIVERED  # type: ignore[union-attr]
    view_b = await store.message(account.id, b)
    assert view_b is not None and view_b.reason is Reason.ABSENT_SUBSCRIBER
    # A duplicated receipt changes nothing and queues no second callback.
    late = Receipt("sandbox", "r1", State.UNDELIVERABLE, Reason.UNKNOWN, "UNDELIV", store.clock())
    assert await store.record_receipts([late]) == ReceiptTally(duplicates=1)
    assert (await store.message(account.id, a)).state is State.DELIVERED  # type: ignore[union-attr]
    jobs = await store.claim_callbacks(10, lease_ms=60_000)
    assert sorted(job.payload["message_id"] for job in jobs) == [a, b]
    assert {job.payload["state"] for job in jobs} == {"delivered", "undeliverable"}
    assert await store.claim_callbacks(10, lease_ms=60_000) == []


async def test_callback_retry_and_give_up(store: Store) -> None:
    account = await funded(store, callback="http://127.0.0.1:9/dlr")
    batch = await store.accept(account.id, dialect="advanta", messages=prepared(1))
    tokens = claims_of(await store.claim_due("w", 1, lease_ms=60_000))
    await store.record_submissions("w", [sent(batch.message_ids[0], "x")], tokens)
    await store.record_receipts(
        [Receipt("sandbox", "x", State.DELIVERED, Reason.NONE, "DELIVRD", store.clock())]
    )
    [job] = await store.claim_callbacks(10, lease_ms=60_000)
    retry_at = store.clock() + 10_000
    await store.callbacks_finished([CallbackAttempt(job.id, False, 500, "HTTP 500", retry_at)])
    assert await store.claim_callbacks(10, lease_ms=60_000) == []
    advance(store, 10_001)
    [again] = await store.claim_callbacks(10, lease_ms=60_000)
    assert again.attempts == 2
    await store.callbacks_finished([CallbackAttempt(again.id, False, None, "refused", None)])
    assert await store.callback_states(account.id) == {"failed": 1}


async def test_callbacks_finish_in_one_group(store: Store) -> None:
    account = await funded(store, callback="http://127.0.0.1:9/dlr")
    batch = await store.accept(account.id, dialect="advanta", messages=prepared(3))
    tokens = claims_of(await store.claim_due("w", 3, lease_ms=60_000))
    await store.record_submissions("w", [sent(mid, f"g{mid}") for mid in batch.message_ids], tokens)
    await store.record_receipts(
        [
            Receipt("sandbox", f"g{mid}", State.DELIVERED, Reason.NONE, "DELIVRD", 1)
            for mid in batch.message_ids
        ]
    )
    # A receiver with enough in hand is left out of a claim.
    assert await store.claim_callbacks(10, 60_000, skip_urls={"http://127.0.0.1:9/dlr"}) == []
    first, second, third = await store.claim_callbacks(10, lease_ms=60_000)
    await store.callbacks_finished(
        [
            CallbackAttempt(first.id, True, 200, None, None),
            CallbackAttempt(second.id, False, 503, "HTTP 503", store.clock() + 5),
            CallbackAttempt(third.id, False, 404, "HTTP 404", None),
        ]
    )
    assert await store.callback_states(account.id) == {"sent": 1, "pending": 1, "failed": 1}


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
    tokens = claims_of(await store.claim_due("w", 1, lease_ms=60_000))
    await store.record_submissions("w", [sent(mid, "r")], tokens)
    enroute = Receipt("sandbox", "r", State.QUEUED, Reason.NONE, "ENROUTE", store.clock())
    assert await store.record_receipts([enroute]) == ReceiptTally()
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


async def test_a_job_the_database_refuses_fails_alone_and_its_group_commits(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """A row no engine can store (a part count beyond any integer column) in
    the middle of a group: the shared transaction fails, every job is run
    again alone, and only the poisoned one fails."""
    rich = await funded(store, credit=10_000)
    other = await funded(store, credit=10_000)
    [poisoned] = prepared(1, prefix="+2547139")
    poisoned.segments = 2**63
    jobs = [(rich, prepared(1))] * 20 + [(other, [poisoned])] + [(rich, prepared(1))] * 20
    with caplog.at_level(logging.WARNING, logger="smsgate.store.group_commit"):
        results = await asyncio.gather(
            *(store.accept(a.id, dialect="advanta", messages=m) for a, m in jobs),
            return_exceptions=True,
        )
    accepted = [r for r in results if isinstance(r, AcceptedBatch)]
    assert len(accepted) == 40 and not isinstance(results[20], AcceptedBatch)
    assert isinstance(results[20], Exception)
    assert store._group.largest_group > 1 and store._group.retried_alone > 1
    assert "each runs again alone" in caplog.text
    assert await store.balance(rich.id) == 10_000 - 40 * 100
    assert await store.count_by_state(rich.id) == {"queued": 40}
    assert await store.balance(other.id) == 10_000  # nothing of the poisoned job stands
    assert await store.count_by_state(other.id) == {}
    assert [e.kind for e in await store.ledger_entries(other.id)] == ["topup"]


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
