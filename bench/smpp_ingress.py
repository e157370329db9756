"""How many submit_sm a second smsgate's SMPP server accepts durably from one client.

Workload: ``--messages`` (default 100,000) single-part GSM texts from one
transceiver bind keeping ``--window`` (default 100) submit_sm unanswered:
the bare codec client of bench/smpp_delivery.py, in a child process of its
own (its own core and GIL). This process runs what ``smsgate smpp-server``
runs: the SMPP server over a Gateway and a Store on a fresh SQLite file (or
SMSGATE_BENCH_DATABASE_URL, an empty PostgreSQL schema). The figure is
submit_sm_resp per second; afterwards the stored messages are counted
against the ROK answers.

With ``--receipts`` the client asks for a receipt of every message and the
same process also runs the delivery workers, as ``smsgate serve --smpp``
does: each message goes to the sandbox carrier and its receipt comes back
to the client as a deliver_sm, while the client keeps submitting. Printed
besides: when the last receipt arrived.

The floor, measured in the same run: the bare codec alone, in this process,
encoding a submit_sm, decoding it, encoding its submit_sm_resp and decoding
that, per message (the least work any SMPP server does per accepted message).

    .venv/bin/python bench/smpp_ingress.py [--messages 100000] [--window 100] [--receipts]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

from local_net import free_port
from smpp_delivery import PASSWORD, SENDER, SYSTEM_ID, FloorClient, recipient
from smsgate.config import Settings
from smsgate.credentials import CredentialKind, hash_password
from smsgate.event_loop import run_service
from smsgate.gateway import Gateway
from smsgate.runtime import Runtime, start_smpp_server
from smsgate.smpp.pdu import CommandId, MessageIdResp, Pdu, ShortMessage, decode, encode
from smsgate.smpp.server import SmppServer
from smsgate.store.records import NewCredential
from smsgate.store.repo import Store


def codec_rate(count: int) -> float:
    """Messages a second through the codec alone: submit_sm and its resp, both ways."""
    started = time.perf_counter()
    for i in range(count):
        body = ShortMessage(
            source_addr=SENDER, destination_addr=recipient(i).lstrip("+"), short_message=b"x" * 40
        )
        decode(encode(Pdu(CommandId.SUBMIT_SM, i + 1, 0, body)))
        decode(encode(Pdu(CommandId.SUBMIT_SM_RESP, i + 1, 0, MessageIdResp(str(i)))))
    return count / (time.perf_counter() - started)


def client(port: int, count: int, window: int, receipts: bool, answer: Connection) -> None:
    """The child: wait for the server, pipeline ``count`` submit_sm, report the
    rates (of answers, and of receipts when asked for) and the ROK count."""

    async def run() -> tuple[float, float, int]:
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + 60
        while True:
            try:
                _, esme = await loop.create_connection(
                    lambda: FloorClient(count, window, int(receipts)), "127.0.0.1", port
                )
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
        try:
            async with asyncio.timeout(10):
                status = await esme.bound
            if status:
                raise SystemExit(f"bind refused: 0x{status:X}")
            esme.start()
            finished = await esme.finished
            async with asyncio.timeout(120):
                await esme.all_receipts
            last_receipt = time.perf_counter()
            esme.unbind()
            await esme.unbound
        finally:
            esme.close()
        return (
            count / (finished - esme.started),
            count / (last_receipt - esme.started),
            count - esme.refused,
        )

    answer.send(asyncio.run(run()))


async def serve(url: str, port: int, done: Connection, *, data_dir: Path, receipts: bool) -> int:
    """Run the server (and with ``receipts`` the workers) until the child
    reports; the number of messages stored."""
    settings = Settings(
        database_url=url,
        smpp_server_port=port,
        data_dir=data_dir,
        sandbox_latency_ms=1.0,
        sandbox_receipt_delay_ms=0.0,
    )
    if receipts:
        runtime = await Runtime.open(settings)
        store = runtime.store
    else:
        store = await Store.open(url)
    await store.create_account(
        name="bench",
        region="KE",
        timezone="Africa/Nairobi",
        credentials=[
            NewCredential(CredentialKind.SMPP_PASSWORD, SYSTEM_ID, hash_password(PASSWORD))
        ],
        credit=10**12,
        options={"max_messages_per_second": 10**7, "message_burst": 10**7},
    )
    loop = asyncio.get_running_loop()

    async def until_the_child_reports(server: SmppServer) -> None:
        while not done.poll():
            await loop.run_in_executor(None, done.poll, 0.2)
        await server.stop()

    if receipts:
        async with runtime.workers():
            started = await start_smpp_server(runtime, enabled=True)
            assert started is not None
            await until_the_child_reports(started)
    else:
        server = SmppServer(Gateway(store, settings), settings)
        await server.start()
        await until_the_child_reports(server)
    stored = sum((await store.count_by_state()).values())
    await (runtime.close() if receipts else store.close())
    return stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--receipts", action="store_true", help="ask for, and return, receipts")
    args = parser.parse_args()
    floor = codec_rate(min(args.messages, 50_000))
    with tempfile.TemporaryDirectory() as scratch:
        url = os.environ.get("SMSGATE_BENCH_DATABASE_URL") or (
            f"sqlite:///{Path(scratch) / 'ingress.sqlite3'}"
        )
        port = free_port()
        ours, theirs = multiprocessing.Pipe()
        child = multiprocessing.Process(
            target=client, args=(port, args.messages, args.window, args.receipts, theirs)
        )
        child.start()
        stored = run_service(
            serve(url, port, ours, data_dir=Path(scratch) / "data", receipts=args.receipts)
        )
        rate, receipt_rate, accepted = ours.recv()
        child.join(10)
    engine = url.split(":", 1)[0]
    returned = ", receipts returned by the same process" if args.receipts else ""
    print(
        f"SMPP ingress, one client, window {args.window}, {args.messages:,} submit_sm,"
        f" {engine}{returned}"
    )
    print(f"  accepted durably          {rate:12,.0f} submit_sm/s")
    if args.receipts:
        print(f"  every receipt back        {receipt_rate:12,.0f} msg/s (first submit_sm to last)")
    print(f"  floor (bare codec, both ways, one process) {floor:12,.0f} msg/s")
    print(f"  ratio accepted/floor      {rate / floor:12.2f}")
    print(f"  answered ROK {accepted:,}; stored {stored:,}")
    if stored != accepted:
        raise SystemExit("stored messages do not match the accepted submit_sm")


if __name__ == "__main__":
    main()
