"""How fast the notifier pushes delivery reports to a customer's receiver.

Workload: ``--pushes`` (default 20,000) partnerID/apikey delivery reports in
the outbox of a fresh SQLite file (or SMSGATE_BENCH_DATABASE_URL), all to one
receiver: a minimal keep-alive HTTP server in its own process that answers
200 at once. The figure is the notifier's drain: first claim to the last
attempt recorded, with the default limits (64 in flight, 8 per receiver).

The floor, in the same run against the same receiver: the same number of
POSTs of a rendered report from a bare aiohttp client with the same
per-receiver concurrency, no database.

    .venv/bin/python bench/callbacks.py [--pushes 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import tempfile
import time

import aiohttp

from local_net import free_port
from smsgate.api.dialects import advanta
from smsgate.core.encoding import Encoding
from smsgate.core.model import PreparedMessage
from smsgate.core.states import Reason, State
from smsgate.notify.callbacks import Notifier
from smsgate.store.records import CarrierPart, Receipt, Submitted
from smsgate.store.repo import Store

PER_RECEIVER = 8
CHUNK = 5_000


class _Answer(asyncio.Protocol):
    """HTTP/1.1 keep-alive: every request answered ``200 ok``."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._buffer = b""

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (end := self._buffer.find(b"\r\n\r\n")) >= 0:
            head = self._buffer[:end].lower()
            length = 0
            for line in head.split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if len(self._buffer) < end + 4 + length:
                return
            self._buffer = self._buffer[end + 4 + length :]
            self._transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


def serve(port: int) -> None:
    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Answer, "127.0.0.1", port)
        await server.serve_forever()

    asyncio.run(main())


async def fill_outbox(store: Store, url: str, count: int) -> None:
    account = await store.create_account(
        name="callbacks", region="KE", timezone="Africa/Nairobi", dlr_callback_url=url
    )
    await store.add_credit(account.id, count * 100)
    for start in range(0, count, CHUNK):
        size = min(CHUNK, count - start)
        messages = [
            PreparedMessage(
                f"+2547150{start + i:05d}9",
                1,
                "SHOP",
                "m",
                Encoding.GSM7,
                1,
                100,
                None,
                0,
                State.QUEUED,
            )
            for i in range(size)
        ]
        await store.accept(account.id, dialect="advanta", messages=messages)
        claimed = await store.claim_due("bench", size, 60_000)
        await store.record_submissions(
            "bench",
            [Submitted(m.id, "c", (CarrierPart(1, f"r{m.id}", f"r{m.id}"),)) for m in claimed],
            {m.id: m.attempts for m in claimed},
        )
        await store.record_receipts(
            [Receipt("c", f"r{m.id}", State.DELIVERED, Reason.NONE, "DELIVRD", 1) for m in claimed]
        )


async def notifier_drain(store: Store, count: int) -> float:
    notifier = Notifier(store, {advanta.DIALECT: advanta.CALLBACKS}, idle_poll=0.05)
    stopping = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(notifier.run(stopping))
    # Watch the notifier's own count: asking the store every few milliseconds
    # would put the bench's queries on the loop and the writer being measured.
    while notifier.delivered < count:
        if time.perf_counter() - started > 600:
            raise SystemExit(f"only {notifier.delivered} of {count} pushes after 600 s")
        await asyncio.sleep(0.01)
    stopping.set()
    await task  # flushes the last attempts to the store
    elapsed = time.perf_counter() - started
    account = (await store.accounts())[-1]
    sent = (await store.callback_states(account.id)).get("sent", 0)
    if sent != count:
        raise SystemExit(f"{sent} of {count} pushes recorded as sent")
    return elapsed


async def floor(url: str, count: int) -> float:
    body = b'{"description":"DeliveredToTerminal","messageid":"1","timeTaken":"1s","timestamp":"x"}'
    connector = aiohttp.TCPConnector(limit=PER_RECEIVER)
    async with aiohttp.ClientSession(connector=connector) as session:
        slots = asyncio.Semaphore(PER_RECEIVER)

        async def push() -> None:
            async with slots, session.post(url, data=body) as response:
                await response.read()

        started = time.perf_counter()
        await asyncio.gather(*(push() for _ in range(count)))
        return time.perf_counter() - started


async def main_async(args: argparse.Namespace, database: str, url: str) -> None:
    store = await Store.open(database)
    try:
        await fill_outbox(store, url, args.pushes)
        bare = await floor(url, args.pushes)
        drained = await notifier_drain(store, args.pushes)
    finally:
        await store.close()
    print(f"callbacks: {args.pushes:,} delivery reports to one local receiver")
    print(f"  notifier drain {drained:6.2f} s  {args.pushes / drained:8,.0f} pushes/s")
    print(f"  floor (bare aiohttp, {PER_RECEIVER} at a time) {args.pushes / bare:8,.0f} pushes/s")
    print(f"  ratio floor/notifier {drained / bare:4.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=20_000)
    args = parser.parse_args()
    port = free_port()
    receiver = multiprocessing.get_context("spawn").Process(target=serve, args=(port,), daemon=True)
    receiver.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            database = (
                os.environ.get("SMSGATE_BENCH_DATABASE_URL") or f"sqlite:///{tmp}/bench.sqlite3"
            )
            url = f"http://127.0.0.1:{port}/dlr"
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            asyncio.run(main_async(args, database, url))
    finally:
        receiver.terminate()
        receiver.join()


if __name__ == "__main__":
    main()
