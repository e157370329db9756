"""Receipts matched to the part they name, on both engines: by declared key,
handset, validity and newest submission; per part; durably when unmatched;
claims fenced by their token and kept alive; receipt timeouts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from tests.support.store import advance, claims_of, funded, prepared

from smsgate.core.states import Reason, State
from smsgate.store import schema
from smsgate.store.records import (
    CarrierPart,
    OutboundMessage,
    Receipt,
    ReceiptTally,
    Refused,
    Submitted,
    TakenParts,
)
from smsgate.store.repo import Store

CONNECTOR = "smsc"


def receipt(key: str, state: State = State.DELIVERED, **extra: Any) -> Receipt:
    values: dict[str, Any] = {
        "connector": CONNECTOR,
        "carrier_key": key,
        "state": state,
        "reason": Reason.NONE if state is State.DELIVERED else Reason.UNKNOWN,
        "carrier_status": "DELIVRD" if state is State.DELIVERED else "UNDELIV",
        "occurred_at": 1,
    }
    values.update(extra)
    return Receipt(**values)


def taken(message_id: int, *keys: str) -> Submitted:
    return Submitted(
        message_id, CONNECTOR, tuple(CarrierPart(i, key, key) for i, key in enumerate(keys, 1))
    )


async def claimed(store: Store, count: int, **prepare: Any) -> tuple[int, list[OutboundMessage]]:
    account = await funded(store, callback="http://127.0.0.1:9/dlr")
    await store.accept(account.id, dialect="advanta", messages=prepared(count, **prepare))
    return account.id, await store.claim_due("w", count, lease_ms=60_000)


async def send(store: Store, messages: list[OutboundMessage], *outcomes: Any) -> None:
    await store.record_submissions("w", list(outcomes), claims_of(messages))


async def states(store: Store, account_id: int, *ids: int) -> list[tuple[State, Reason]]:
    views = [await store.message(account_id, mid) for mid in ids]
    return [(v.state, v.reason) for v in views if v is not None]


async def test_a_reused_id_finds_the_message_sent_to_the_receipts_handset(store: Store) -> None:
    """An SMSC that restarted its counter gives the same id twice: the
    receipt's source address tells the messages apart, and without one the
    newest submission wins; the older message is never finalised by it."""
    account_id, messages = await claimed(store, 3)
    old, new, newest = messages
    await send(store, [old], taken(old.id, "7"))
    advance(store, 1_000)
    await send(store, [new], taken(new.id, "7"))
    advance(store, 1_000)
    await store.record_receipts([receipt("7", handset=old.recipient.lstrip("+"))])
    assert await states(store, account_id, old.id, new.id) == [
        (State.DELIVERED, Reason.NONE),
        (State.SUBMITTED, Reason.NONE),
    ]
    await send(store, [newest], taken(newest.id, "7"))
    await store.record_receipts([receipt("7", State.UNDELIVERABLE)])  # no handset: newest
    assert await states(store, account_id, new.id, newest.id) == [
        (State.SUBMITTED, Reason.NONE),
        (State.UNDELIVERABLE, Reason.UNKNOWN),
    ]


async def test_a_receipt_older_than_its_validity_matches_nothing(store: Store) -> None:
    account_id, [message] = await claimed(store, 1)
    await send(store, [message], taken(message.id, "a1"))
    advance(store, 10_000)
    too_late = receipt("a1", match_since=store.clock() - 5_000)
    assert await store.record_receipts([too_late]) == ReceiptTally(unmatched=1)
    assert await states(store, account_id, message.id) == [(State.SUBMITTED, Reason.NONE)]


async def test_a_connectors_hint_narrows_the_match_to_its_message(store: Store) -> None:
    account_id, (first, second) = await claimed(store, 2)
    await send(store, [first, second], taken(first.id, "k"), taken(second.id, "k"))
    tally = await store.record_receipts([receipt("k", message_id=first.id)])
    assert tally == ReceiptTally(matched=1)
    assert await states(store, account_id, first.id, second.id) == [
        (State.DELIVERED, Reason.NONE),
        (State.SUBMITTED, Reason.NONE),
    ]


async def test_a_long_message_is_delivered_once_every_part_is(store: Store) -> None:
    account_id, [message] = await claimed(store, 1)
    await send(store, [message], taken(message.id, "p1", "p2", "p3"))
    await store.record_receipts([receipt("p3"), receipt("p1")])
    assert await states(store, account_id, message.id) == [(State.SUBMITTED, Reason.NONE)]
    tally = await store.record_receipts([receipt("p2"), receipt("p1")])
    assert tally == ReceiptTally(matched=1, duplicates=1)
    assert await states(store, account_id, message.id) == [(State.DELIVERED, Reason.NONE)]
    [job] = await store.claim_callbacks(10, lease_ms=60_000)
    assert job.payload["state"] == "delivered"


async def test_the_first_part_not_delivered_ends_a_long_message(store: Store) -> None:
    account_id, [message] = await claimed(store, 1)
    await send(store, [message], taken(message.id, "q1", "q2"))
    await store.record_receipts([receipt("q2", State.EXPIRED, reason=Reason.VALIDITY_EXPIRED)])
    assert await states(store, account_id, message.id) == [(State.EXPIRED, Reason.VALIDITY_EXPIRED)]
    # The other part's receipt still finds its part: recorded, not "unknown".
    assert await store.record_receipts([receipt("q1")]) == ReceiptTally(matched=1)
    assert await states(store, account_id, message.id) == [(State.EXPIRED, Reason.VALIDITY_EXPIRED)]


async def test_parts_taken_before_a_refusal_still_find_their_receipts(store: Store) -> None:
    account_id, [message] = await claimed(store, 1)
    refusal = Refused(
        message.id,
        State.REJECTED,
        Reason.CARRIER_REJECTED,
        "ESME_RINVDSTADR",
        taken=TakenParts(CONNECTOR, (CarrierPart(1, "r1", "r1"),), total=2),
    )
    await send(store, [message], refusal)
    assert await store.record_receipts([receipt("r1")]) == ReceiptTally(matched=1)
    assert await states(store, account_id, message.id) == [
        (State.REJECTED, Reason.CARRIER_REJECTED)
    ]


async def test_an_unmatched_receipt_is_kept_once_and_matched_by_its_submission(
    store: Store,
) -> None:
    account_id, [message] = await claimed(store, 1)
    early = receipt("e1", carrier_ref="00E1", text="id:00E1 stat:DELIVRD\x00")
    assert await store.record_receipts([early]) == ReceiptTally(unmatched=1)
    assert await store.record_receipts([early]) == ReceiptTally(unmatched=1)  # resent
    await send(store, [message], taken(message.id, "e1"))
    assert await states(store, account_id, message.id) == [(State.DELIVERED, Reason.NONE)]
    assert await store.rematch_receipts(0) == 0  # nothing left unmatched


async def test_rematching_finds_a_submission_another_worker_recorded(store: Store) -> None:
    account_id, [message] = await claimed(store, 1)
    await send(store, [message], taken(message.id, "x1"))
    # As if stored by a worker that could not see that commit yet.
    async with store.engines.writer.begin() as conn:
        await store._keep_unmatched(conn, [receipt("x1")], store.clock())
    assert await store.rematch_receipts(0) == 1
    assert await states(store, account_id, message.id) == [(State.DELIVERED, Reason.NONE)]


async def test_an_outcome_from_a_spent_claim_is_ignored(store: Store) -> None:
    """The same worker claimed the message again after its first claim ran
    out: the late answer to the first claim must not decide the second."""
    account_id, [first] = await claimed(store, 1)
    advance(store, 60_001)
    [second] = await store.claim_due("w", 1, lease_ms=60_000)
    assert (second.id, second.attempts) == (first.id, 2)
    await store.record_submissions("w", [taken(first.id, "stale")], claims_of([first]))
    assert await states(store, account_id, first.id) == [(State.QUEUED, Reason.NONE)]
    await store.record_submissions("w", [taken(second.id, "fresh")], claims_of([second]))
    assert await states(store, account_id, first.id) == [(State.SUBMITTED, Reason.NONE)]


async def test_renewed_claims_are_not_claimed_again(store: Store) -> None:
    _, messages = await claimed(store, 2)
    advance(store, 50_000)
    kept = await store.renew_claims("w", claims_of(messages), 60_000)
    assert kept == {m.id for m in messages}
    advance(store, 20_000)  # past the first lease, within the renewed one
    assert await store.claim_due("other", 10, lease_ms=60_000) == []
    advance(store, 41_000)
    assert len(await store.claim_due("other", 10, lease_ms=60_000)) == 2
    assert await store.renew_claims("w", claims_of(messages), 60_000) == set()  # lost


async def test_messages_without_a_receipt_end_unknown_unrefunded(store: Store) -> None:
    account_id, messages = await claimed(store, 2)
    await send(store, messages, taken(messages[0].id, "t1"))
    advance(store, 1_000)
    await send(store, messages, taken(messages[1].id, "t2"))
    balance = await store.balance(account_id)
    assert await store.end_unreported(CONNECTOR, store.clock() - 500) == 1
    assert await states(store, account_id, *(m.id for m in messages)) == [
        (State.UNKNOWN, Reason.NO_RECEIPT),
        (State.SUBMITTED, Reason.NONE),
    ]
    assert await store.balance(account_id) == balance
    [job] = await store.claim_callbacks(10, lease_ms=60_000)
    assert (job.payload["state"], job.payload["reason"]) == ("unknown", "no_receipt")
    # A receipt that comes after all is recorded on its part; the state stays.
    assert await store.record_receipts([receipt("t1")]) == ReceiptTally(matched=1)
    assert await states(store, account_id, messages[0].id) == [(State.UNKNOWN, Reason.NO_RECEIPT)]


async def _as_written(store: Store, messages: list[OutboundMessage]) -> list[Any]:
    """What the store wrote for each message (its row, its part's receipt,
    its delivery report and refund), without what differs between messages."""
    m, p = schema.messages.c, schema.submitted_parts.c
    o, ledger = schema.callback_outbox.c, schema.ledger.c
    written = []
    async with store.engines.writer.connect() as conn:
        for message in messages:
            row = (
                await conn.execute(
                    select(
                        m.state,
                        m.reason,
                        m.connector,
                        m.submitted_at,
                        m.done_at,
                        m.lease_owner,
                        m.lease_until,
                    ).where(m.id == message.id)
                )
            ).one()
            part = (
                await conn.execute(
                    select(p.state, p.reason, p.carrier_status, p.receipt_text, p.receipt_at).where(
                        p.message_id == message.id
                    )
                )
            ).all()
            reports = (
                await conn.execute(select(o.payload).where(o.message_id == message.id))
            ).all()
            refunds = (
                await conn.execute(select(ledger.amount).where(ledger.message_id == message.id))
            ).all()
            payloads = [
                {
                    k: v
                    for k, v in dict(r.payload).items()
                    if k not in ("message_id", "recipient", "client_ref")
                }
                for r in reports
            ]
            written.append(
                (tuple(row), [tuple(x) for x in part], payloads, [tuple(x) for x in refunds])
            )
    return written


async def test_a_receipt_recorded_with_its_submission_ends_the_message_as_if_recorded_apart(
    store: Store,
) -> None:
    """An SMSC answering at once puts a message's submission and its receipt
    in one recording, where the message is written submitted and ended in
    one step: it must end exactly as when the two are recorded one after
    the other (state, times, the part's receipt, the report, the refund)."""
    _, messages = await claimed(store, 4)
    advance(store, 0)
    ends = [State.DELIVERED, State.FAILED]
    apart, together = messages[:2], messages[2:]
    for index, (message, end) in enumerate(zip(apart, ends, strict=True)):
        key = f"a{index}"
        await store.record_delivery("w", [taken(message.id, key)], claims_of([message]), [], [])
        text = f"id:{index} stat:{end.value}"
        tally = await store.record_delivery(
            "w", [], {}, [receipt(key, end, occurred_at=5, text=text)], []
        )
        assert tally == ReceiptTally(matched=1)
    tally = await store.record_delivery(
        "w",
        [taken(m.id, f"t{m.id}") for m in together],
        claims_of(together),
        [
            receipt(f"t{m.id}", end, occurred_at=5, text=f"id:{index} stat:{end.value}")
            for index, (m, end) in enumerate(zip(together, ends, strict=True))
        ],
        [],
    )
    assert tally == ReceiptTally(matched=2)
    written = await _as_written(store, together)
    assert written == await _as_written(store, apart)
    assert [row[0][:2] for row in written] == [
        (State.DELIVERED.value, Reason.NONE.value),
        (State.FAILED.value, Reason.UNKNOWN.value),
    ]


async def test_a_receipt_for_another_handset_does_not_end_the_message_it_came_with(
    store: Store,
) -> None:
    account_id, [message] = await claimed(store, 1)
    tally = await store.record_delivery(
        "w",
        [taken(message.id, "h1")],
        claims_of([message]),
        [receipt("h1", handset="999999999")],
        [],
    )
    assert tally == ReceiptTally(unmatched=1)
    assert await states(store, account_id, message.id) == [(State.SUBMITTED, Reason.NONE)]


async def test_a_stored_receipt_decides_before_one_recorded_with_the_submission(
    store: Store,
) -> None:
    """A receipt stored unmatched earlier came first: it ends the message,
    and the one arriving with the submission is its duplicate."""
    account_id, [message] = await claimed(store, 1)
    assert await store.record_receipts([receipt("s1", State.FAILED)]) == ReceiptTally(unmatched=1)
    tally = await store.record_delivery(
        "w", [taken(message.id, "s1")], claims_of([message]), [receipt("s1")], []
    )
    assert tally == ReceiptTally(duplicates=1)
    assert await states(store, account_id, message.id) == [(State.FAILED, Reason.UNKNOWN)]
    assert await store.rematch_receipts(0) == 0
