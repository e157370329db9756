"""Dispatcher, receipt recorder and notifier against a real store."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import orjson
from tests.support.receiver import CallbackReceiver

from smsgate.api.dialects import advanta
from smsgate.core.encoding import Encoding
from smsgate.core.model import PreparedMessage
from smsgate.core.sandbox_rules import DEFAULT_SANDBOX_RULES
from smsgate.core.states import Reason, State
from smsgate.delivery.claims import Claims
from smsgate.delivery.connectors.base import ClaimCheck, InboundSink, ReceiptSink, SubmissionSink
from smsgate.delivery.connectors.sandbox import SandboxConnector
from smsgate.delivery.dispatcher import Dispatcher
from smsgate.delivery.recorder import DeliveryRecorder
from smsgate.delivery.routing import Router
from smsgate.notify.callbacks import Notifier
from smsgate.store.records import CarrierPart, OutboundMessage, Receipt, Submitted
from smsgate.store.repo import Store


def message(recipient: str) -> PreparedMessage:
    return PreparedMessage(
        recipient=recipient,
        network_id=1,
        sender="SMSGATE",
        text="hi",
        encoding=Encoding.GSM7,
        segments=1,
        cost=100,
        client_ref=None,
        due_at=0,
        state=State.QUEUED,
    )


async def account_with(
    store: Store, recipients: Sequence[str], callback: str | None = None
) -> tuple[int, list[int]]:
    account = await store.create_account(
        name="w", region="KE", timezone="Africa/Nairobi", dlr_callback_url=callback
    )
    await store.add_credit(account.id, 10_000)
    batch = await store.accept(
        account.id, dialect="advanta", messages=[message(r) for r in recipients]
    )
    return account.id, batch.message_ids


class BrokenConnector:
    """A carrier connection that is down: every submission raises."""

    name = "broken"
    is_up = True  # it claims to be; the submissions tell otherwise

    def __init__(self) -> None:
        self.calls = 0

    async def start(self, receipts: ReceiptSink, inbound: InboundSink) -> None:
        pass

    async def submit(
        self, messages: Sequence[OutboundMessage], record: SubmissionSink, claims: ClaimCheck
    ) -> None:
        self.calls += 1
        raise ConnectionError("carrier unreachable")

    async def stop(self) -> None:
        pass


async def test_dispatch_and_receipts_reach_final_states(store: Store) -> None:
    account_id, ids = await account_with(store, ["+254712000011", "+254712000000", "+254712000004"])
    connector = SandboxConnector(latency_ms=0, receipt_delay_ms=1, rules=DEFAULT_SANDBOX_RULES)
    dispatcher = Dispatcher(store, Router([], {}, connector), owner="t")
    recorder = dispatcher.recorder
    await connector.start(recorder, recorder.inbound)
    assert await dispatcher.dispatch_once() == 3
    assert await dispatcher.dispatch_once() == 0
    while recorder.recorded < 2:
        await asyncio.sleep(0.005)
        await recorder.idle()
    states = [(await store.message(account_id, i)).state for i in ids]  # type: ignore[union-attr]
    assert states == [State.DELIVERED, State.UNDELIVERABLE, State.REJECTED]
    assert await store.balance(account_id) == 10_000 - 200  # the refused one is refunded


async def test_connection_failures_back_off_then_fail_and_refund(store: Store) -> None:
    account_id, [mid] = await account_with(store, ["+254712000011"])
    connector = BrokenConnector()
    dispatcher = Dispatcher(
        store, Router([], {}, connector), owner="t", retry_base_ms=0, max_attempts=3
    )
    for _ in range(4):
        await dispatcher.dispatch_once()
    assert connector.calls == 3
    view = await store.message(account_id, mid)
    assert view is not None
    assert (view.state, view.reason) == (State.FAILED, Reason.RETRIES_EXHAUSTED)
    assert await store.balance(account_id) == 10_000


async def test_receipt_that_overtakes_its_submission_is_stored_and_matched_by_it(
    store: Store,
) -> None:
    account_id, [mid] = await account_with(store, ["+254712000011"])
    recorder = DeliveryRecorder(store, "t", Claims(store, "t", 60_000))
    acknowledged: list[str] = []
    recorder(
        Receipt("sandbox", "early", State.DELIVERED, Reason.NONE, "DELIVRD", 1),
        lambda: acknowledged.append("early"),
    )
    await recorder.idle()
    # Stored (so acknowledged to the carrier), though it matches nothing yet.
    assert (recorder.backlog, recorder.unmatched, acknowledged) == (0, 1, ["early"])
    await store.claim_due("t", 1, lease_ms=60_000)
    await store.record_submissions(
        "t", [Submitted(mid, "sandbox", (CarrierPart(1, "early", "early"),))], {mid: 1}
    )
    view = await store.message(account_id, mid)
    assert view is not None and view.state is State.DELIVERED


async def test_notifier_retries_until_the_receiver_accepts(store: Store) -> None:
    with CallbackReceiver(fail_first=2) as receiver:
        account_id, [mid] = await account_with(store, ["+254712000011"], receiver.url)
        await store.claim_due("t", 1, lease_ms=60_000)
        await store.record_submissions(
            "t", [Submitted(mid, "sandbox", (CarrierPart(1, "r", "r"),))], {mid: 1}
        )
        await store.record_receipts(
            [Receipt("sandbox", "r", State.DELIVERED, Reason.NONE, "DELIVRD", store.clock())]
        )
        notifier = Notifier(
            store, {advanta.DIALECT: advanta.CALLBACKS}, time_scale=0.0001, idle_poll=0.01
        )
        stopping = asyncio.Event()
        task = asyncio.create_task(notifier.run(stopping))
        await asyncio.to_thread(receiver.wait_for, 3)
        stopping.set()
        await task  # lets the attempt in flight record its outcome
    assert len(receiver.requests) == 3
    bodies = {r.body for r in receiver.requests}
    assert len(bodies) == 1
    body = orjson.loads(receiver.requests[-1].body)
    assert body["messageid"] == str(mid) and body["description"] == "DeliveredToTerminal"
    assert await store.callback_states(account_id) == {"sent": 1}


async def test_sandbox_receipts_survive_a_worker_restart(store: Store) -> None:
    account_id, [mid] = await account_with(store, ["+254712000000"])
    first_life = SandboxConnector(
        latency_ms=0, receipt_delay_ms=60_000, rules=DEFAULT_SANDBOX_RULES
    )
    dispatcher = Dispatcher(store, Router([], {}, first_life), owner="t")
    recorder = dispatcher.recorder
    await first_life.start(recorder, recorder.inbound)
    await dispatcher.dispatch_once()
    await first_life.stop()  # the worker stops before the receipt is due
    await recorder.idle()
    assert recorder.recorded == 0
    second_life = SandboxConnector(latency_ms=0, receipt_delay_ms=1, rules=DEFAULT_SANDBOX_RULES)
    await second_life.start(recorder, recorder.inbound)
    second_life.resume(await store.awaiting_receipts("sandbox"))
    while recorder.recorded < 1:
        await asyncio.sleep(0.005)
        await recorder.idle()
    view = await store.message(account_id, mid)
    assert view is not None
    assert (view.state, view.reason) == (State.UNDELIVERABLE, Reason.ABSENT_SUBSCRIBER)
