"""Delivery to an SMSC that allows only so many messages a second.

Workload: ``--messages`` (default 200) queued on a fresh SQLite file (or
SMSGATE_BENCH_DATABASE_URL), one worker's dispatcher over an SmppConnector
(``--window``) to the simulator limited to ``--rate`` submit_sm a second
(answered ESME_RTHROTTLED beyond it), with the production lease of 30 s, so
a batch waits in the connector far longer than its first lease.

It prints what the acceptance asks about: messages lost (not delivered) and
sent twice (0 and 0 expected), the accepted rate once settled (after the
first ``--settle`` seconds) beside the SMSC's limit, and the share of
submit_sm refused once settled.

    .venv/bin/python bench/throttled_smsc.py [--rate 2] [--messages 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections import Counter

from smsgate.core.encoding import Encoding
from smsgate.core.model import PreparedMessage
from smsgate.core.states import State
from smsgate.delivery.connectors.smpp import SmppConnector, SmppSettings
from smsgate.delivery.dispatcher import Dispatcher
from smsgate.delivery.routing import Router
from smsgate.smpp.pdu import Status
from smsgate.smpp.simulator import SimulatorConfig, SmscSimulator
from smsgate.store.repo import Store


async def queue(store: Store, count: int) -> int:
    account = await store.create_account(name="throttled", region="KE", timezone="Africa/Nairobi")
    await store.add_credit(account.id, count * 100)
    messages = [
        PreparedMessage(
            f"+2547140{i:05d}9", 1, "SHOP", f"m{i}", Encoding.GSM7, 1, 100, None, 0, State.QUEUED
        )
        for i in range(count)
    ]
    await store.accept(account.id, dialect="advanta", messages=messages)
    return account.id


async def run(args: argparse.Namespace, url: str) -> None:
    store = await Store.open(url)
    account_id = await queue(store, args.messages)
    simulator = SmscSimulator(
        SimulatorConfig(port=0, receipt_delay_ms=10, max_per_second=args.rate)
    )
    await simulator.start()
    connector = SmppConnector(
        SmppSettings(
            name="smsc",
            host="127.0.0.1",
            port=simulator.port,
            system_id="smsgate",
            password="secret",
            window=args.window,
        )
    )
    dispatcher = Dispatcher(store, Router([], {}, connector), owner="bench", lease_ms=30_000)
    recorder = dispatcher.recorder
    await connector.start(recorder, recorder.inbound)
    stopping = asyncio.Event()
    tasks = [
        asyncio.create_task(dispatcher.run(stopping)),
        asyncio.create_task(recorder.run(stopping)),
    ]
    started = time.monotonic()
    try:
        while (await store.count_by_state(account_id)).get(State.DELIVERED, 0) < args.messages:
            if time.monotonic() - started > args.timeout:
                raise SystemExit(f"not done after {args.timeout:g} s")
            await asyncio.sleep(0.5)
    finally:
        stopping.set()
        dispatcher.wake()
        await asyncio.gather(*tasks)
        await connector.stop()
        await simulator.stop()
        states = await store.count_by_state(account_id)
        await store.close()
    accepted = [m for m in simulator.submitted if m.status == Status.ROK]
    sent = Counter(m.destination for m in accepted)
    twice = sum(n - 1 for n in sent.values())
    lost = args.messages - states.get(State.DELIVERED, 0)
    first = simulator.submitted[0].received_at
    settled = [m for m in simulator.submitted if m.received_at >= first + args.settle]
    settled_accepted = [m.received_at for m in settled if m.status == Status.ROK]
    refused = sum(1 for m in settled if m.status == Status.RTHROTTLED)
    rate = (len(settled_accepted) - 1) / (settled_accepted[-1] - settled_accepted[0])
    total_refused = sum(1 for m in simulator.submitted if m.status == Status.RTHROTTLED)
    print(
        f"throttled SMSC: {args.messages} messages at a limit of {args.rate:g}/s,"
        f" window {args.window}, lease 30 s"
    )
    print(f"  lost {lost}, sent twice {twice}, took {time.monotonic() - started:.1f} s")
    print(
        f"  settled (after {args.settle:g} s): {rate:.2f} msg/s accepted;"
        f" floor (the SMSC's limit) {args.rate:.2f} msg/s; ratio {rate / args.rate:.2f}"
    )
    print(
        f"  refused once settled: {refused} of {len(settled)} submit_sm"
        f" ({100 * refused / max(len(settled), 1):.1f} %); in all {total_refused}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rate", type=float, default=2.0)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--settle", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("SMSGATE_BENCH_DATABASE_URL") or f"sqlite:///{tmp}/bench.sqlite3"
        asyncio.run(run(args, url))


if __name__ == "__main__":
    main()
