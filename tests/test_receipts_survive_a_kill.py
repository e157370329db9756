"""Acceptance: a worker killed while it holds receipts loses none of them.

An SMSC that sends each receipt before its submit_sm_resp (and answers a
little late) keeps a worker holding receipts it has not acknowledged: they
name parts whose answers are not in yet. SIGKILL that worker (a real
``smsgate worker`` process) and start another: the SMSC sends every
unacknowledged deliver_sm again, and each one is stored. Messages whose
outcome the first worker committed end with their own receipt; those it had
not (they are sent again, at most the uncommitted bound) end with the
receipt of the second send, and the first send's receipt, naming an id the
store never recorded, is kept as unmatched: exactly one per message sent
twice. Nothing is left waiting, and the SMSC holds nothing unacknowledged.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from smsgate.core.states import State
from smsgate.smpp.simulator import SimulatorConfig
from smsgate.store.repo import Store
from tests.smpp.test_gateway_over_smpp import SimulatorThread
from tests.support.waiting import wait_until
from tests.support.worker import queued
from tests.test_cluster_crash import Cluster

COUNT = 300


async def _queue(url: str) -> int:
    store = await Store.open(url)
    try:
        await queued(store, [f"+2547160{i:04d}9" for i in range(COUNT)])
        return (await store.accounts())[-1].id
    finally:
        await store.close()


async def _query(url: str, sql: str) -> list[tuple[object, ...]]:
    store = await Store.open(url, migrate=False)
    try:
        async with store.engines.reader.connect() as conn:
            return [tuple(row) for row in (await conn.exec_driver_sql(sql)).all()]
    finally:
        await store.close()


def test_a_killed_worker_loses_no_receipt(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kill.sqlite3'}"
    account_id = asyncio.run(_queue(url))
    config = SimulatorConfig(
        port=0,
        message_id_style="sequential_hex",
        receipt_before_resp=True,
        respond_delay_ms=150,
    )
    smsc = SimulatorThread(config)
    with smsc as simulator:
        smpp_url = (
            f"smpp://smsgate:secret@127.0.0.1:{simulator.port}?name=smsc1&window=20&submit_id=hex"
        )
        cluster = Cluster(url, smpp_url, tmp_path)
        try:
            cluster.start_worker("first")
            wait_until(
                lambda: (
                    simulator.receipts_sent >= 60
                    and simulator.receipts_sent - simulator.deliver_sm_resps >= 10
                ),
                timeout=30,
                what="the first worker holding unacknowledged receipts",
            )
            cluster.kill("first")
            held_at_kill = simulator.receipts_sent - simulator.deliver_sm_resps
            cluster.start_worker("second")

            def all_delivered() -> bool:
                rows = asyncio.run(
                    _query(
                        url,
                        f"SELECT state, COUNT(*) FROM messages WHERE account_id = {account_id}"
                        " GROUP BY state",
                    )
                )
                return dict(rows) == {State.DELIVERED.value: COUNT}  # type: ignore[arg-type]

            wait_until(all_delivered, timeout=60, what="every message delivered")
            wait_until(
                lambda: simulator.unacknowledged == 0,
                timeout=30,
                what="every deliver_sm acknowledged",
            )
        finally:
            cluster.stop()
    assert held_at_kill >= 10
    # Every receipt the SMSC sent was stored: on its part, or (a first send
    # the store never recorded, of a message sent again) kept as unmatched.
    first_sends: dict[str, str] = {}
    resent: set[str] = set()
    for m in simulator.submitted:
        if m.status == 0:
            if m.destination in first_sends:
                resent.add(first_sends[m.destination])
            else:
                first_sends[m.destination] = m.message_id
    parts = asyncio.run(_query(url, "SELECT carrier_key, state FROM submitted_parts"))
    recorded = {str(key) for key, _ in parts}
    unmatched = {
        key for (key,) in asyncio.run(_query(url, "SELECT carrier_key FROM unmatched_receipts"))
    }
    assert unmatched <= {str(int(i, 16)) for i in resent}
    assert not unmatched & recorded
    # And every part the store recorded got its receipt.
    assert len(recorded) >= COUNT and all(state == State.DELIVERED.value for _, state in parts)
