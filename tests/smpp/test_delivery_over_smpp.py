"""A worker's whole delivery path over SMPP (store, dispatcher, connector,
receipt recorder) against the simulator over TCP, on both engines."""

from __future__ import annotations

from collections import Counter

from smsgate.core.states import State
from smsgate.smpp.simulator import SimulatorConfig, SmscSimulator
from smsgate.store.repo import Store
from tests.smpp.test_connector import connector_for
from tests.support.worker import delivering, queued, until_counted

COUNT, WINDOW = 120, 10


async def test_a_connection_dropped_mid_window_loses_and_re_mints_nothing(store: Store) -> None:
    recipients = [f"+2547120{i:03d}99" for i in range(COUNT)]  # no sandbox-rule endings
    batch = await queued(store, recipients)
    account_id = (await store.accounts())[-1].id
    simulator = SmscSimulator(SimulatorConfig(port=0, receipt_delay_ms=5, respond_delay_ms=20))
    await simulator.start()
    connector = connector_for(simulator, window=WINDOW)
    try:
        async with delivering(store, connector, batch_size=50):
            assert await connector.wait_bound(5)
            await simulator.wait_for_submitted(COUNT // 3, timeout=10)
            await simulator.drop_connections()  # with a full window in flight
            dropped_at = len(simulator.submitted)
            await until_counted(store, account_id, {State.DELIVERED: COUNT})
    finally:
        await simulator.stop()
    assert dropped_at < COUNT  # the drop really was mid-stream
    # Nothing re-minted: the batch still has exactly its ids, each delivered once.
    for message_id in batch.message_ids:
        view = await store.message(account_id, message_id)
        assert view is not None and view.state is State.DELIVERED
    # At-least-once: only what was in flight at the drop (at most the window,
    # in the two batches in hand) reached the SMSC twice.
    sent = Counter(m.destination for m in simulator.submitted)
    assert set(sent) == {r.lstrip("+") for r in recipients}
    assert sum(n - 1 for n in sent.values()) <= WINDOW
