"""How fast one worker process delivers queued messages to an SMSC over SMPP.

Workload: ``--messages`` (default 100,000) single-part GSM7 messages queued
with ``Store.accept`` in batches of 30,000 on a fresh SQLite file (or the
database in SMSGATE_BENCH_DATABASE_URL; for PostgreSQL use
``...?search_path=schema`` with an empty scratch schema). Queueing happens in a
child process before timing starts, so the peak RSS reported is the worker's.

The SMSC is ``smsgate smsc-sim`` in a separate process (its own core and GIL).
This process then runs what a worker runs: a Dispatcher (``--batch-size``)
over an SmppConnector (one transceiver bind, ``--window`` outstanding
submit_sm) and its DeliveryRecorder, which also takes the receipts the simulator
sends ``--receipt-delay-ms`` after each submit_sm_resp (``--no-receipts``
queues the messages with want_report=False, so none are asked for). The store
is polled every 0.2 s until no message is queued (asked only once the worker's
own counters say so: the query costs the measured core real time). The figure
is the drain: first claim to the last submission recorded (claim -> submit_sm
-> submit_sm_resp -> state recorded); the time until every receipt is
recorded is printed too, with the wall time spent in each store call.

The floor, measured in the same run against the same simulator: a bare
asyncio client on ``smsgate.smpp.pdu`` that binds as a transceiver and
pipelines the same number of submit_sm with the same window as fast as it
can, counting the responses (and answering the receipts' deliver_sm).

    .venv/bin/python bench/smpp_delivery.py [--messages 100000] [--window 100]
    .venv/bin/python bench/smpp_delivery.py --profile /tmp/worker.pstats
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import multiprocessing
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from callbacks import serve as serve_receiver
from local_net import free_port
from smsgate.api.dialects import advanta
from smsgate.core.encoding import Encoding
from smsgate.core.model import PreparedMessage
from smsgate.core.states import State
from smsgate.delivery.connectors.base import ClaimCheck, SubmissionSink
from smsgate.delivery.connectors.smpp import SmppConnector, SmppSettings
from smsgate.delivery.dispatcher import Dispatcher
from smsgate.delivery.routing import Router
from smsgate.notify.callbacks import Notifier
from smsgate.runtime import settle_garbage_collector
from smsgate.smpp.pdu import (
    Bind,
    CommandId,
    Framer,
    Pdu,
    ShortMessage,
    Status,
    decode,
    encode,
)
from smsgate.smpp.wire import NPI_E164, TON_ALPHANUMERIC, TON_INTERNATIONAL
from smsgate.store.records import (
    InboundMessage,
    OutboundMessage,
    Receipt,
    ReceiptTally,
    SubmitOutcome,
)
from smsgate.store.repo import Store

ACCEPT_BATCH = 30_000
COST = 100
SENDER = "BENCH"
SYSTEM_ID, PASSWORD = "smsgate", "secret"  # smsc-sim's defaults
POLL_SECONDS = 0.2
FINAL_STATES = (State.DELIVERED, State.UNDELIVERABLE, State.EXPIRED, State.REJECTED, State.FAILED)


def recipient(i: int) -> str:
    # Ends in 9: no default sandbox rule (000-005 endings) applies, so every
    # message is accepted and delivered.
    return f"+2547{i % 10_000_000:07d}9"


def text(i: int) -> str:
    return f"Dear customer {i}, your order {i} has shipped."


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """CPU time of this process, every thread (aiosqlite's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------- the simulator


class Simulator:
    """``smsgate smsc-sim`` in its own process, so it never takes the worker's core."""

    def __init__(self, port: int, receipt_delay_ms: float, log_path: Path) -> None:
        self.port = port
        self._log_path = log_path
        self._log = log_path.open("w")
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "smsgate",
                "smsc-sim",
                "--port",
                str(port),
                "--receipt-delay-ms",
                str(receipt_delay_ms),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_listening(self, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while "listening" not in self._log_path.read_text():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"smsc-sim did not start:\n{self._log_path.read_text()}")
            time.sleep(0.05)

    def cpu_seconds(self) -> float:
        """CPU time of the simulator process so far (Linux /proc), 0 if unknown."""
        try:
            fields = Path(f"/proc/{self._process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(10)
        self._log.close()


# ---------------------------------------------------------------- the queue


def prepared(start: int, stop: int, want_report: bool) -> list[PreparedMessage]:
    return [
        PreparedMessage(
            recipient=recipient(i),
            network_id=1,
            sender=SENDER,
            text=text(i),
            encoding=Encoding.GSM7,
            segments=1,
            cost=COST,
            client_ref=str(i),
            due_at=0,
            state=State.QUEUED,
            want_report=want_report,
        )
        for i in range(start, stop)
    ]


async def queue_messages(
    url: str, count: int, want_report: bool, callback_url: str | None = None
) -> None:
    store = await Store.open(url)
    try:
        waiting = await store.count_by_state()
        if waiting.get(State.QUEUED) or waiting.get(State.SCHEDULED):
            raise SystemExit(
                f"the database already holds waiting messages ({waiting}); use a fresh one"
            )
        account = await store.create_account(
            name=f"bench-smpp-{os.getpid()}",
            region="KE",
            timezone="Africa/Nairobi",
            senders=[SENDER],
            dlr_callback_url=callback_url,
        )
        await store.add_credit(account.id, count * COST, "bench")
        for start in range(0, count, ACCEPT_BATCH):
            batch = prepared(start, min(start + ACCEPT_BATCH, count), want_report)
            await store.accept(account.id, dialect="advanta", messages=batch)
    finally:
        await store.close()


def queue_in_child(
    url: str, count: int, want_report: bool, callback_url: str | None = None
) -> None:
    asyncio.run(queue_messages(url, count, want_report, callback_url))


# ---------------------------------------------------------------- the floor


class FloorClient(asyncio.Protocol):
    """submit_sm straight from the codec: at most ``window`` unanswered, topped up
    after every read, each read's requests (and deliver_sm_resp) in one write."""

    def __init__(self, count: int, window: int, registered_delivery: int) -> None:
        loop = asyncio.get_running_loop()
        self._count = count
        self._window = window
        self._registered_delivery = registered_delivery
        self._framer = Framer()
        self._transport: asyncio.Transport | None = None
        self._sending = False
        self.sent = 0
        self.answered = 0
        self.refused = 0
        self.receipts = 0
        self.started = 0.0
        self.bound: asyncio.Future[int] = loop.create_future()
        self.finished: asyncio.Future[float] = loop.create_future()
        self.all_receipts: asyncio.Future[None] = loop.create_future()
        self.unbound: asyncio.Future[None] = loop.create_future()
        if not registered_delivery:
            self.all_receipts.set_result(None)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self._transport = cast(asyncio.Transport, transport)
        self._transport.write(
            encode(Pdu(CommandId.BIND_TRANSCEIVER, 1, 0, Bind(SYSTEM_ID, PASSWORD)))
        )

    def connection_lost(self, exc: Exception | None) -> None:
        for future in (self.bound, self.finished, self.all_receipts, self.unbound):
            if not future.done():
                future.set_exception(ConnectionError(f"connection lost: {exc}"))

    def start(self) -> None:
        self._sending = True
        self.started = time.perf_counter()
        out: list[bytes] = []
        self._top_up(out)
        self._write(out)

    def unbind(self) -> None:
        self._write([encode(Pdu(CommandId.UNBIND, 0x7FFFFFFF, 0, None))])

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        out: list[bytes] = []
        for frame in self._framer.feed(data):
            pdu = decode(frame)
            command = pdu.command_id
            if command == CommandId.SUBMIT_SM_RESP:
                self.answered += 1
                if pdu.command_status != Status.ROK:
                    self.refused += 1
            elif command == CommandId.DELIVER_SM:
                self.receipts += 1
                out.append(encode(Pdu(CommandId.DELIVER_SM_RESP, pdu.sequence, 0, None)))
            elif command == CommandId.BIND_TRANSCEIVER_RESP:
                self.bound.set_result(pdu.command_status)
            elif command == CommandId.ENQUIRE_LINK:
                out.append(encode(Pdu(CommandId.ENQUIRE_LINK_RESP, pdu.sequence, 0, None)))
            elif command == CommandId.UNBIND_RESP and not self.unbound.done():
                self.unbound.set_result(None)
        if self._sending:
            self._top_up(out)
            if self.answered == self._count and not self.finished.done():
                self.finished.set_result(time.perf_counter())
        if self.receipts >= self._count and not self.all_receipts.done():
            self.all_receipts.set_result(None)
        self._write(out)

    def _top_up(self, out: list[bytes]) -> None:
        while self.sent < self._count and self.sent - self.answered < self._window:
            i = self.sent
            self.sent += 1
            body = ShortMessage(
                source_addr=SENDER,
                source_addr_ton=TON_ALPHANUMERIC,
                source_addr_npi=0,
                destination_addr=recipient(i).lstrip("+"),
                dest_addr_ton=TON_INTERNATIONAL,
                dest_addr_npi=NPI_E164,
                registered_delivery=self._registered_delivery,
                short_message=text(i).encode("ascii"),
            )
            out.append(encode(Pdu(CommandId.SUBMIT_SM, i + 2, 0, body)))

    def _write(self, out: list[bytes]) -> None:
        if out and self._transport is not None:
            self._transport.write(b"".join(out))


async def floor_rate(port: int, count: int, window: int, want_report: bool, limit: float) -> float:
    """Messages per second of the bare client; waits for its receipts before unbinding,
    so none is left over at the simulator for the worker's bind."""
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(
        lambda: FloorClient(count, window, 1 if want_report else 0), "127.0.0.1", port
    )
    try:
        async with asyncio.timeout(10):
            status = await client.bound
        if status != Status.ROK:
            raise SystemExit(f"floor bind refused: 0x{status:X}")
        async with asyncio.timeout(limit):
            client.start()
            finished = await client.finished
            await client.all_receipts
            client.unbind()
            await client.unbound
    finally:
        client.close()
    if client.refused:
        raise SystemExit(f"the simulator refused {client.refused} of the floor's submit_sm")
    return count / (finished - client.started)


# ---------------------------------------------------------------- the worker


@dataclass
class Phases:
    """Where the worker's wall time went, taken by wrapping the store and connector."""

    seconds: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    first_claim: float | None = None
    last_submission: float = 0.0
    last_receipt: float = 0.0
    last_push: float = 0.0
    outcomes: int = 0  # outcomes recorded
    matched: int = 0  # receipts matched

    def add(self, name: str, started: float, ended: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + ended - started
        self.calls[name] = self.calls.get(name, 0) + 1


def instrument(store: Store, connector: SmppConnector, phases: Phases) -> None:
    claim_due = store.claim_due
    record_delivery = store.record_delivery
    submit = connector.submit

    async def timed_claim(owner: str, limit: int, lease_ms: int) -> list[OutboundMessage]:
        started = time.perf_counter()
        claimed = await claim_due(owner, limit, lease_ms)
        phases.add("store.claim_due", started, time.perf_counter())
        if claimed and phases.first_claim is None:
            phases.first_claim = started
        return claimed

    async def timed_submit(
        messages: Sequence[OutboundMessage], record: SubmissionSink, claims: ClaimCheck
    ) -> None:
        started = time.perf_counter()
        await submit(messages, record, claims)
        phases.add("connector.submit", started, time.perf_counter())

    async def timed_record(
        owner: str,
        outcomes: Sequence[SubmitOutcome],
        claims: Mapping[int, int],
        receipts: Sequence[Receipt],
        inbound: Sequence[InboundMessage],
    ) -> ReceiptTally:
        started = time.perf_counter()
        tally = await record_delivery(owner, outcomes, claims, receipts, inbound)
        ended = time.perf_counter()
        phases.add("store.record_delivery", started, ended)
        if outcomes:
            phases.outcomes += len(outcomes)
            phases.last_submission = ended
        if tally.matched:
            phases.matched += tally.matched
            phases.last_receipt = ended
        return tally

    # Instance attributes shadow the methods for this run only.
    store.claim_due = timed_claim  # type: ignore[method-assign]
    store.record_delivery = timed_record  # type: ignore[method-assign]
    connector.submit = timed_submit  # type: ignore[method-assign]


@dataclass
class Drain:
    seconds: float
    receipts_seconds: float | None
    states: dict[State, int]
    phases: Phases
    rss_before_mib: float
    rss_peak_mib: float
    worker_cpu: float
    main_thread_cpu: float
    simulator_cpu: float
    cpu_wall: float
    profile: cProfile.Profile | None


async def wait_until(
    likely: Callable[[], bool],
    check: Callable[[], Awaitable[bool]],
    deadline: float,
    what: str,
) -> None:
    """Poll every 0.2 s until ``check()`` (a store query) holds. It is only asked
    once ``likely()`` (a counter of this process) says it may: at 100,000 rows one
    count_by_state costs the worker some 40 ms of CPU, so asking it every 0.2 s
    would take a fifth of the core being measured."""
    while not (likely() and await check()):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(POLL_SECONDS)


async def drain(
    url: str, port: int, simulator_cpu: Callable[[], float], args: argparse.Namespace
) -> Drain:
    store = await Store.open(url, migrate=False)
    connector = SmppConnector(
        SmppSettings(
            name="smsc-sim",
            host="127.0.0.1",
            port=port,
            system_id=SYSTEM_ID,
            password=PASSWORD,
            window=args.window,
        )
    )
    dispatcher = Dispatcher(
        store, Router([], {}, connector), owner="bench-worker", batch_size=args.batch_size
    )
    recorder = dispatcher.recorder
    phases = Phases()
    instrument(store, connector, phases)
    await connector.start(recorder, recorder.inbound)
    if not await connector.wait_bound(10):
        raise SystemExit("the connector did not bind to smsc-sim")
    settle_garbage_collector()  # as ``smsgate worker`` does once it is up
    if os.environ.get("BENCH_SWITCH"):
        sys.setswitchinterval(float(os.environ["BENCH_SWITCH"]))
    rss_before = peak_rss_mib()
    profile = cProfile.Profile() if args.profile else None
    deadline = time.monotonic() + args.timeout
    stopping = asyncio.Event()
    cpu_started, simulator_started = cpu_seconds(), simulator_cpu()
    main_thread_started = time.thread_time()
    wall_started = time.perf_counter()
    if profile is not None:
        profile.enable()
    tasks = [
        asyncio.create_task(dispatcher.run(stopping), name="dispatcher"),
        asyncio.create_task(recorder.run(stopping), name="receipts"),
    ]
    notifier = None
    if args.callbacks:  # the pushes share the worker's loop and writer, as in production
        notifier = Notifier(store, {advanta.DIALECT: advanta.CALLBACKS})
        tasks.append(asyncio.create_task(notifier.run(stopping), name="notifier"))
    states: dict[State, int] = {}

    async def none_queued() -> bool:
        nonlocal states
        states = await store.count_by_state()
        return not states.get(State.QUEUED)

    count: int = args.messages

    async def all_final() -> bool:
        nonlocal states
        states = await store.count_by_state()
        return sum(states.get(s, 0) for s in FINAL_STATES) >= count

    try:
        await wait_until(
            lambda: phases.outcomes >= count, none_queued, deadline, "the queue to drain"
        )
        if not args.no_receipts:
            await wait_until(
                lambda: phases.matched >= count,
                all_final,
                deadline,
                "every receipt to be recorded",
            )
        if notifier is not None:
            pushes = notifier

            async def pushed() -> bool:
                return pushes.delivered >= count

            await wait_until(lambda: pushes.delivered >= count, pushed, deadline, "every push")
            phases.last_push = time.perf_counter()
    finally:
        if profile is not None:
            profile.disable()
        worker_cpu = cpu_seconds() - cpu_started
        main_thread_cpu = time.thread_time() - main_thread_started
        simulator_used = simulator_cpu() - simulator_started
        cpu_wall = time.perf_counter() - wall_started
        stopping.set()
        dispatcher.wake()
        await asyncio.gather(tasks[0], return_exceptions=True)
        await connector.stop()
        await recorder.idle()
        await asyncio.gather(*tasks[1:], return_exceptions=True)
        await store.close()
    assert phases.first_claim is not None
    return Drain(
        seconds=phases.last_submission - phases.first_claim,
        receipts_seconds=None if args.no_receipts else phases.last_receipt - phases.first_claim,
        states=states,
        phases=phases,
        rss_before_mib=rss_before,
        rss_peak_mib=peak_rss_mib(),
        worker_cpu=worker_cpu,
        main_thread_cpu=main_thread_cpu,
        simulator_cpu=simulator_used,
        cpu_wall=cpu_wall,
        profile=profile,
    )


# ---------------------------------------------------------------- reporting


def rate(count: int, seconds: float) -> str:
    return f"{seconds:7.2f} s  {count / seconds:9,.0f} msg/s"


def report(args: argparse.Namespace, engine: str, result: Drain, floor: float) -> None:
    count = args.messages
    receipts = "off" if args.no_receipts else f"on, {args.receipt_delay_ms:g} ms after the resp"
    print(
        f"smpp delivery of {count:,} messages, window {args.window}, batch {args.batch_size},"
        f" receipts {receipts}, {engine}, {args.loop} loop"
    )
    print(f"  drain (first claim -> last submission recorded) {rate(count, result.seconds)}")
    if result.receipts_seconds is not None:
        every = rate(count, result.receipts_seconds)
        print(f"  every receipt recorded                          {every}")
    if args.callbacks:
        pushed = rate(count, result.phases.last_push - (result.phases.first_claim or 0))
        print(f"  every delivery report pushed to the receiver    {pushed}")
    print(
        f"  worker peak RSS {result.rss_peak_mib:6.0f} MiB"
        f" ({result.rss_before_mib:.0f} MiB bound, before the drain)"
    )
    print(
        f"  CPU in those {result.cpu_wall:.1f} s: worker {result.worker_cpu:.1f} s"
        f" ({result.main_thread_cpu:.1f} s of it on the event loop's thread;"
        f" {1e6 * result.worker_cpu / count:.0f} µs a message),"
        f" smsc-sim {result.simulator_cpu:.1f} s"
    )
    print("  wall time inside (receipts are recorded concurrently with the dispatcher):")
    for name, seconds in sorted(result.phases.seconds.items()):
        calls = result.phases.calls[name]
        each = seconds / calls * 1000
        print(f"    {name:26s} {seconds:6.2f} s in {calls:4d} calls ({each:5.1f} ms each)")
    states = ", ".join(f"{state.value} {n:,}" for state, n in sorted(result.states.items()))
    print(f"  final states: {states}")
    print(f"  floor (bare asyncio client on smsgate.smpp.pdu, same window) {floor:9,.0f} msg/s")
    print(f"  ratio floor/drain {floor * result.seconds / count:5.1f}x")


def print_profile(profile: cProfile.Profile, path: str, limit: int) -> None:
    profile.dump_stats(path)
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats(order).print_stats(limit)
        print(f"\nworker profile by {order} (full stats in {path}):")
        print(out.getvalue().split("\n", 6)[-1].rstrip())


def run(coroutine: Awaitable[Any], loop: str) -> Any:
    if loop == "uvloop":
        import uvloop

        return uvloop.run(coroutine)  # type: ignore[arg-type]
    return asyncio.run(coroutine)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--receipt-delay-ms", type=float, default=200)
    parser.add_argument("--no-receipts", action="store_true", help="queue want_report=False")
    parser.add_argument(
        "--callbacks",
        action="store_true",
        help="push each final state to a local receiver from the same worker",
    )
    parser.add_argument("--timeout", type=float, default=600, help="give up after this long")
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="uvloop",
        help="event loop of the worker (smsgate worker runs on uvloop where it is installed)",
    )
    parser.add_argument("--profile", metavar="PSTATS", help="cProfile the worker's drain")
    parser.add_argument("--profile-lines", type=int, default=30)
    args = parser.parse_args()
    want_report = not args.no_receipts
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("SMSGATE_BENCH_DATABASE_URL") or f"sqlite:///{tmp}/bench.sqlite3"
        engine = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
        receiver = None
        callback_url = None
        if args.callbacks:
            receiver_port = free_port()
            receiver = multiprocessing.get_context("spawn").Process(
                target=serve_receiver, args=(receiver_port,), daemon=True
            )
            receiver.start()
            callback_url = f"http://127.0.0.1:{receiver_port}/dlr"
        child = multiprocessing.get_context("spawn").Process(
            target=queue_in_child, args=(url, args.messages, want_report, callback_url)
        )
        child.start()
        child.join()
        if child.exitcode != 0:
            raise SystemExit(f"queueing the messages failed (exit code {child.exitcode})")
        port = free_port()
        simulator = Simulator(port, args.receipt_delay_ms, Path(tmp) / "smsc-sim.log")
        try:
            simulator.wait_listening()
            floor = run(
                floor_rate(port, args.messages, args.window, want_report, args.timeout),
                args.loop,
            )
            gc.collect()
            result: Drain = run(drain(url, port, simulator.cpu_seconds, args), args.loop)
        finally:
            simulator.stop()
            if receiver is not None:
                receiver.terminate()
    report(args, engine, result, floor)
    if result.profile is not None:
        print_profile(result.profile, args.profile, args.profile_lines)


if __name__ == "__main__":
    main()
