"""``smsgate worker`` on SIGTERM, as a process: it stops claiming, finishes the
window on the wire, records what it sent, unbinds and releases its connector
lease, so the next worker binds at once and sends only the rest."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from smsgate.core.encoding import Encoding
from smsgate.core.model import PreparedMessage
from smsgate.core.states import FINAL_STATES, State
from smsgate.smpp.simulator import SimulatorConfig
from smsgate.store.repo import Store
from tests.smpp.test_gateway_over_smpp import SimulatorThread
from tests.support.waiting import wait_until

COUNT = 80


async def queue(url: str) -> int:
    store = await Store.open(url)
    try:
        account = await store.create_account(name="s", region="KE", timezone="Africa/Nairobi")
        await store.add_credit(account.id, COUNT * 100)
        await store.accept(
            account.id,
            dialect="eapi",
            messages=[
                PreparedMessage(
                    f"+2547120{i:03d}99",
                    1,
                    "SHOP",
                    "hi",
                    Encoding.GSM7,
                    1,
                    100,
                    None,
                    0,
                    State.QUEUED,
                )
                for i in range(COUNT)
            ],
        )
        return account.id
    finally:
        await store.close()


async def snapshot(
    url: str, account_id: int
) -> tuple[dict[State, int], dict[str, tuple[str, int]]]:
    store = await Store.open(url, migrate=False)
    try:
        return await store.count_by_state(account_id), await store.connector_leases()
    finally:
        await store.close()


@contextlib.contextmanager
def worker(url: str, smpp_url: str, worker_id: str, tmp_path: Path) -> Iterator[None]:
    """``smsgate worker`` for the block; SIGTERM at its end must stop it cleanly."""
    env = {
        **os.environ,
        "SMSGATE_DATABASE_URL": url,
        "SMSGATE_DATA_DIR": str(tmp_path / "data"),
        "SMSGATE_SMPP_URL": smpp_url,
        "SMSGATE_WORKER_ID": worker_id,
        "SMSGATE_DISPATCH_BATCH_SIZE": "20",
        "SMSGATE_SECRET_KEY": "c21zZ2F0ZS10ZXN0LXNlY3JldC1rZXktMzItYnl0ZXM=",
    }
    process = subprocess.Popen([sys.executable, "-m", "smsgate", "worker"], env=env)
    try:
        yield
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_sigterm_drains_the_window_unbinds_and_hands_over(
    database_url: str, tmp_path: Path
) -> None:
    account_id = asyncio.run(queue(database_url))
    config = SimulatorConfig(port=0, receipt_delay_ms=5, respond_delay_ms=100)
    with SimulatorThread(config) as simulator:
        smpp_url = f"smpp://smsgate:secret@127.0.0.1:{simulator.port}?name=smsc1&window=5"
        with worker(database_url, smpp_url, "first", tmp_path):
            wait_until(lambda: len(simulator.submitted) >= 10, 15, "the first submissions")
        sent_by_first = Counter(m.destination for m in simulator.submitted)
        states, leases = asyncio.run(snapshot(database_url, account_id))
        # Everything it put on the wire was answered and recorded before it left.
        done = sum(
            n for state, n in states.items() if state is State.SUBMITTED or state in FINAL_STATES
        )
        assert done == len(sent_by_first) < COUNT
        assert states.get(State.QUEUED, 0) == COUNT - done
        assert leases == {"smsc1": ("first", 0)}  # released, not left to run out
        wait_until(lambda: simulator.sessions == 0, 15, "the unbind")

        with worker(database_url, smpp_url, "second", tmp_path):
            wait_until(
                lambda: len({m.destination for m in simulator.submitted}) == COUNT,
                30,
                "every message at the SMSC",
            )
    sent = Counter(m.destination for m in simulator.submitted)
    assert max(sent.values()) == 1  # a clean hand-over sends nothing twice
    states, leases = asyncio.run(snapshot(database_url, account_id))
    assert sum(states.values()) == COUNT and not states.get(State.QUEUED)
    assert leases == {"smsc1": ("second", 0)}
