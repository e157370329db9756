"""Receipts owed to customers who submit over SMPP, pushed over their bound
sessions, on both engines: nothing marked delivered without the customer's
deliver_sm_resp, nothing lost when a session closes, no row pushed twice by
two server processes, no row of one account on another's session."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from smsgate.core.model import MessageFlag
from smsgate.core.states import Reason, State
from smsgate.credentials import CredentialKind
from smsgate.smpp.customer_returns import Returns
from smsgate.smpp.pdu import ESM_DELIVERY_RECEIPT, ShortMessage, Tag, read_cstring_tlv
from smsgate.smpp.receipt_text import parse_receipt_text
from smsgate.store.records import InboundMessage, Receipt, ReplyPool
from smsgate.store.repo import Store
from tests.support.store import claims_of, funded, prepared, sent

CONNECTOR = "sandbox"


class Session:
    """A bound receiver as the pump sees it: answers each deliver_sm with
    ``answer`` (True is ESME_ROK), or holds it until ``release`` is set."""

    def __init__(self, account_id: int, answer: bool = True) -> None:
        self.account_id = account_id
        self.answer = answer
        self.received: list[ShortMessage] = []
        self.release: asyncio.Event | None = None
        self.holding = 0

    async def deliver(self, pdu: ShortMessage) -> bool:
        if self.release is not None:
            self.holding += 1
            await self.release.wait()
            return False  # closed under it
        self.received.append(pdu)
        return self.answer


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def pumping(store: Store) -> AsyncIterator[Returns]:
    returns = Returns(store, idle_poll=0.02)
    stopping = asyncio.Event()
    task = asyncio.create_task(returns.run(stopping))
    try:
        yield returns
    finally:
        stopping.set()
        await task


async def finished_over_smpp(store: Store, count: int, state: State = State.DELIVERED) -> list[int]:
    """``count`` messages of a new account submitted over SMPP, taken by the
    carrier and finished by its receipts; their ids."""
    account = await funded(store)
    await store.accept(account.id, dialect="smpp", messages=prepared(count))
    claimed = await store.claim_due("w", count, lease_ms=60_000)
    await store.record_submissions(
        "w", [sent(m.id, f"r{m.id}", CONNECTOR) for m in claimed], claims_of(claimed)
    )
    await store.record_receipts(
        [
            Receipt(
                connector=CONNECTOR,
                carrier_key=f"r{m.id}",
                state=state,
                reason=Reason.NONE if state is State.DELIVERED else Reason.UNKNOWN_SUBSCRIBER,
                carrier_status="DELIVRD" if state is State.DELIVERED else "UNDELIV",
                occurred_at=store.clock(),
            )
            for m in claimed
        ]
    )
    return [m.id for m in claimed]


async def account_of(store: Store, message_id: int) -> int:
    for account in await store.accounts():
        if await store.message(account.id, message_id) is not None:
            return account.id
    raise AssertionError(f"no account owns message {message_id}")


async def pending_over_smpp(store: Store, account_id: int) -> int:
    return (await store.callback_states(account_id)).get("pending", 0)


async def test_a_bound_customer_gets_each_receipt_in_the_standard_form(store: Store) -> None:
    ids = await finished_over_smpp(store, 3)
    account_id = await account_of(store, ids[0])
    session = Session(account_id)
    async with pumping(store) as returns:
        returns.attach(session)
        await until(lambda: len(session.received) == 3)
        await until(lambda: returns.delivered == 3)
    assert await store.callback_states(account_id) == {"sent": 3}
    by_id = {}
    for pdu in session.received:
        assert pdu.esm_class == ESM_DELIVERY_RECEIPT
        parsed = parse_receipt_text(pdu.short_message.decode("ascii"))
        assert parsed is not None and parsed.stat == "DELIVRD"
        assert read_cstring_tlv(pdu.tlvs[Tag.RECEIPTED_MESSAGE_ID]) == parsed.message_id
        assert pdu.tlvs[Tag.MESSAGE_STATE] == b"\x02"
        assert pdu.destination_addr == "SMSGATE"  # back to the sender the customer used
        by_id[int(parsed.message_id)] = pdu
    assert sorted(by_id) == sorted(ids)  # the decimal ids submit_sm_resp gave
    first = by_id[ids[0]]
    assert first.source_addr == "254712000000" and first.source_addr_ton == 1
    assert parse_receipt_text(first.short_message.decode()).text == "message 0"  # type: ignore[union-attr]


async def test_a_failure_carries_its_state_and_network_error(store: Store) -> None:
    ids = await finished_over_smpp(store, 1, State.UNDELIVERABLE)
    session = Session(await account_of(store, ids[0]))
    async with pumping(store) as returns:
        returns.attach(session)
        await until(lambda: returns.delivered == 1)
    (pdu,) = session.received
    parsed = parse_receipt_text(pdu.short_message.decode())
    assert parsed is not None and (parsed.stat, parsed.err) == ("UNDELIV", "001")
    assert pdu.tlvs[Tag.MESSAGE_STATE] == b"\x05"
    assert pdu.tlvs[Tag.NETWORK_ERROR_CODE] == b"\x03\x00\x01"


async def test_receipts_wait_for_a_bind_and_the_http_notifier_never_takes_them(
    store: Store,
) -> None:
    ids = await finished_over_smpp(store, 2)
    account_id = await account_of(store, ids[0])
    assert await store.claim_callbacks(100, 60_000) == []  # not a URL's
    assert await pending_over_smpp(store, account_id) == 2
    session = Session(account_id)
    async with pumping(store) as returns:
        returns.attach(session)
        await until(lambda: returns.delivered == 2)
    assert await store.callback_states(account_id) == {"sent": 2}


async def test_a_refused_receipt_stays_owed(store: Store) -> None:
    ids = await finished_over_smpp(store, 1)
    account_id = await account_of(store, ids[0])
    session = Session(account_id, answer=False)
    async with pumping(store) as returns:
        returns.attach(session)
        await until(lambda: len(session.received) == 1)
    await until_recorded(store, ids[0])
    assert await store.callback_states(account_id) == {"pending": 1}
    assert returns.delivered == 0


async def until_recorded(store: Store, message_id: int) -> None:
    """Until the pump has written its attempt for the message's receipt."""
    deadline = asyncio.get_running_loop().time() + 10
    while not (await store.message_history(message_id)).callbacks:
        assert asyncio.get_running_loop().time() < deadline, "no attempt recorded"
        await asyncio.sleep(0.01)


async def test_a_session_closing_mid_push_hands_its_receipts_to_the_next_bind(
    store: Store,
) -> None:
    ids = await finished_over_smpp(store, 4)
    account_id = await account_of(store, ids[0])
    closing = Session(account_id)
    closing.release = asyncio.Event()
    async with pumping(store) as returns:
        returns.attach(closing)
        await until(lambda: closing.holding == 4)
        returns.detach(closing)
        closing.release.set()
        assert await store.callback_states(account_id) != {"sent": 4}
        later = Session(account_id)
        returns.attach(later)
        await until(lambda: returns.delivered == 4)
    assert sorted(
        int(parse_receipt_text(p.short_message.decode()).message_id)  # type: ignore[union-attr]
        for p in later.received
    ) == sorted(ids)
    assert await store.callback_states(account_id) == {"sent": 4}


async def test_one_accounts_receipts_never_reach_anothers_session(store: Store) -> None:
    mine = await finished_over_smpp(store, 2)
    theirs = await finished_over_smpp(store, 2)
    my_session = Session(await account_of(store, mine[0]))
    their_account = await account_of(store, theirs[0])
    async with pumping(store) as returns:
        returns.attach(my_session)
        await until(lambda: returns.delivered == 2)
    assert len(my_session.received) == 2
    assert await pending_over_smpp(store, their_account) == 2


@pytest.mark.postgres
async def test_two_server_processes_never_push_one_receipt_twice(postgres_url: str) -> None:
    first, second = await Store.open(postgres_url), await Store.open(postgres_url)
    try:
        ids = await finished_over_smpp(first, 60)
        account_id = await account_of(first, ids[0])
        a, b = Session(account_id), Session(account_id)
        async with pumping(first) as one, pumping(second) as two:
            one.attach(a)
            two.attach(b)
            await until(lambda: one.delivered + two.delivered == 60)
        pushed = [
            int(parse_receipt_text(p.short_message.decode()).message_id)  # type: ignore[union-attr]
            for p in a.received + b.received
        ]
        assert sorted(pushed) == sorted(ids)
        assert await first.callback_states(account_id) == {"sent": 60}
    finally:
        await first.close()
        await second.close()


async def test_a_reply_to_a_message_sent_over_smpp_comes_back_over_smpp(store: Store) -> None:
    handset, number = "+254712345005", "254709000991"
    pool = ReplyPool((number,), window_ms=3_600_000)
    account = await funded(store)  # no MO URL: the sessions are where it listens
    asked = prepared(1)
    asked[0].recipient, asked[0].flags, asked[0].sender = (
        handset,
        int(MessageFlag.REPLIABLE),
        number,
    )
    await store.accept(account.id, dialect="smpp", messages=asked, reply_pool=pool)
    await store.record_inbound(
        [InboundMessage("sandbox", handset.lstrip("+"), number, "yes, at 5 ☺", "ucs2", 1)]
    )
    session = Session(account.id)
    async with pumping(store) as returns:
        returns.attach(session)
        await until(lambda: returns.delivered == 1)
    (pdu,) = session.received
    assert pdu.esm_class == 0 and pdu.data_coding == 8
    assert pdu.short_message.decode("utf-16-be") == "yes, at 5 ☺"
    assert (pdu.source_addr, pdu.destination_addr) == (handset.lstrip("+"), number)


@pytest.mark.parametrize("mo_url", [None, "http://127.0.0.1:9/mo"])
async def test_a_message_to_an_smpp_customers_shortcode_comes_over_smpp_unless_it_has_an_mo_url(
    store: Store, mo_url: str | None
) -> None:
    account = await funded(store)
    await store.update_account(
        account.id, senders=["22345"], options={"mo_callback_url": mo_url} if mo_url else {}
    )
    await store.add_credential(
        account.id, kind=CredentialKind.SMPP_PASSWORD, identifier="shop01", secret_hash="x"
    )
    other = await funded(store)  # a shortcode of its own, no SMPP, no MO URL
    await store.update_account(other.id, senders=["22346"])
    await store.record_inbound(
        [
            InboundMessage("sandbox", "254712345678", "22345", "STOP", "gsm7", 1),
            InboundMessage("sandbox", "254712345678", "22346", "STOP", "gsm7", 1),
        ]
    )
    assert len(await store.inbox(other.id, 0, 10)) == 1  # stored, forwarded nowhere
    assert await store.callback_states(other.id) == {}
    [job] = await store.callbacks(account_id=account.id)
    if mo_url:
        assert (job.url, job.dialect) == (mo_url, "advanta")
        return
    assert job.dialect == "smpp"
    session = Session(account.id)
    async with pumping(store) as returns:
        returns.attach(session)
        await until(lambda: returns.delivered == 1)
    (pdu,) = session.received
    assert (pdu.source_addr, pdu.destination_addr) == ("254712345678", "22345")
    assert pdu.esm_class == 0 and pdu.short_message == b"STOP"
    assert await store.callback_states(account.id) == {"sent": 1}
