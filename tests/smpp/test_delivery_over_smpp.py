"""A worker's whole delivery path over SMPP (store, dispatcher, connector,
receipt recorder) against the simulator over TCP, on both engines."""

from __future__ import annotations

import asyncio
from collections import Counter

from smsgate.core.encoding import Encoding
from smsgate.core.model import PreparedMessage
from smsgate.core.states import State
from smsgate.delivery.dispatcher import Dispatcher
from smsgate.delivery.receipts import ReceiptRecorder
from smsgate.delivery.routing import Router
from smsgate.smpp.simulator import SimulatorConfig, SmscSimulator
from smsgate.store.repo import Store
from tests.smpp.test_connector import connector_for

COUNT, WINDOW = 120, 10


async def test_a_connection_dropped_mid_window_loses_and_re_mints_nothing(store: Store) -> None:
    account = await store.create_account(name="d", region="KE", timezone="Africa/Nairobi")
    await store.add_credit(account.id, COUNT * 100)
    recipients = [f"+2547120{i:03d}99" for i in range(COUNT)]  # no sandbox-rule endings
    batch = await store.accept(
        account.id,
        dialect="eapi",
        messages=[
            PreparedMessage(r, 1, "SHOP", "hello", Encoding.GSM7, 1, 100, None, 0, State.QUEUED)
            for r in recipients
        ],
    )
    simulator = SmscSimulator(SimulatorConfig(port=0, receipt_delay_ms=5, respond_delay_ms=20))
    await simulator.start()
    connector = connector_for(simulator, window=WINDOW)
    recorder = ReceiptRecorder(store, flush_interval=0.005)
    await connector.start(recorder, recorder.inbound)
    assert await connector.wait_bound(5)
    dispatcher = Dispatcher(
        store,
        Router([], {}, connector),
        owner="w",
        batch_size=50,
        retry_base_ms=0,
        idle_poll=0.01,
    )
    stopping = asyncio.Event()
    tasks = [
        asyncio.create_task(dispatcher.run(stopping)),
        asyncio.create_task(recorder.run(stopping)),
    ]
    try:
        await simulator.wait_for_submitted(COUNT // 3, timeout=10)
        await simulator.drop_connections()  # with a full window in flight
        dropped_at = len(simulator.submitted)

        async def finished() -> bool:
            return (await store.count_by_state(account.id)).get(State.DELIVERED) == COUNT

        deadline = asyncio.get_running_loop().time() + 30
        while not await finished():
            assert asyncio.get_running_loop().time() < deadline, "not every message delivered"
            await asyncio.sleep(0.05)
    finally:
        stopping.set()
        dispatcher.wake()
        recorder.wake()
        await asyncio.gather(*tasks)
        await connector.stop()
        await simulator.stop()
    assert dropped_at < COUNT  # the drop really was mid-stream
    # Nothing re-minted: the batch still has exactly its ids, each delivered once.
    assert await store.count_by_state(account.id) == {State.DELIVERED: COUNT}
    for message_id in batch.message_ids:
        view = await store.message(account.id, message_id)
        assert view is not None and view.state is State.DELIVERED
    # At-least-once: only what was in flight at the drop (at most the window,
    # in the two batches in hand) reached the SMSC twice.
    sent = Counter(m.destination for m in simulator.submitted)
    assert set(sent) == {r.lstrip("+") for r in recipients}
    assert sum(n - 1 for n in sent.values()) <= WINDOW
