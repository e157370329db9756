"""Connector leases across workers: one bind per SMSC account, cluster-wide,
and a dead worker's connection bound again elsewhere (over TCP, both engines)."""

from __future__ import annotations

import asyncio

from tests.smpp.test_connector import connector_for

from smsgate.delivery.claims import Claims
from smsgate.delivery.ownership import ConnectorOwnership
from smsgate.delivery.recorder import DeliveryRecorder
from smsgate.smpp.simulator import SimulatorConfig, SmscSimulator
from smsgate.store.repo import Store

LEASE_MS = 600


def worker(store: Store, simulator: SmscSimulator, owner: str) -> ConnectorOwnership:
    """What one worker process holds: its own connector object for the shared account."""
    connector = connector_for(simulator, name="smsc1")
    recorder = DeliveryRecorder(store, owner, Claims(store, owner, LEASE_MS))
    return ConnectorOwnership(
        store,
        [connector],
        owner=owner,
        lease_ms=LEASE_MS,
        receipts=recorder,
        inbound=recorder.inbound,
    )


async def test_one_worker_binds_and_a_dead_ones_connection_moves(store: Store) -> None:
    simulator = SmscSimulator(SimulatorConfig(port=0))
    await simulator.start()
    first, second = worker(store, simulator, "w1"), worker(store, simulator, "w2")
    first_stop, second_stop = asyncio.Event(), asyncio.Event()
    first_task = asyncio.create_task(first.run(first_stop))
    await simulator.wait_until(lambda: len(simulator.bound) == 1, timeout=5, what="one bind")
    assert simulator.sessions == 1
    second_task = asyncio.create_task(second.run(second_stop))
    try:
        # Several lease periods pass: the second worker never binds beside the first.
        for _ in range(3):
            await asyncio.sleep(LEASE_MS / 1000)
            assert first.held == ["smsc1"] and second.held == []
            assert len(simulator.bound) == 1 and simulator.sessions == 1
        # The first worker dies: it stops renewing, its bind stays (a hung process).
        first_task.cancel()
        died = asyncio.get_running_loop().time()
        await simulator.wait_until(
            lambda: second.held == ["smsc1"], timeout=5, what="the second worker to take over"
        )
        assert asyncio.get_running_loop().time() - died < 3 * LEASE_MS / 1000
        # ... and the hung first worker, unable to renew, has let go of its bind.
        await first.renew()
        assert first.held == []
        await simulator.wait_until(
            lambda: len(simulator.bound) == 2 and simulator.sessions == 1,
            timeout=5,
            what="only the second worker's bind",
        )
    finally:
        second_stop.set()
        await asyncio.gather(first_task, second_task, return_exceptions=True)
        for ownership in (first, second):
            for connector in ownership._connectors:
                await connector.stop()
            await ownership.release()
        await simulator.stop()
    assert await store.connector_leases() == {"smsc1": ("w2", 0)}  # released on stop
