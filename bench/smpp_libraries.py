"""Why smsgate has its own SMPP client session layer: submit_sm throughput of
aiosmpplib 0.7.4 (the asyncio SMPP library on PyPI) against SmppConnector.

Workload: ``--messages`` (default 20,000) single-part GSM7 submit_sm, the same
recipients and texts as bench/smpp_delivery.py, over one transceiver bind on
loopback TCP to ``smsgate smsc-sim`` in its own process (its own core). A fresh
simulator is started for every row, so no client inherits another's session,
receipts or ids. The figure is submit_sm sent and submit_sm_resp received:
first submit to last response, at most ``--windows`` (default 10,100)
unanswered at any time. The messages are built before timing starts, as a
worker has its claimed batch before it submits.

The rows:

- aiosmpplib (stock): ``ESME`` as shipped, with its ``SimpleCorrelator``.
  aiosmpplib has no send window (its sender writes whatever its broker
  holds), so the window is ours: an asyncio.Semaphore taken before each
  message is handed to its broker and released when its ``AbstractHook``
  reports the submit_sm_resp (or ``send_error`` reports a failure/expiry).
- aiosmpplib (dict correlator): the same ESME given, through its public
  ``correlator=`` argument, an ``AbstractCorrelator`` on plain dicts with
  expiry from the oldest end. SimpleCorrelator walks every stored request
  and every stored submit->receipt correlation (kept 3 days) on each put and
  get, so it slows as messages accumulate; this row shows how much of
  aiosmpplib's cost that is.
- smsgate SmppConnector: ``submit()`` in chunks of ``--chunk`` messages, two
  chunks in flight so its window is never drained between chunks.
- bare asyncio codec (floor): bench/smpp_delivery.py's FloorClient, a plain
  asyncio.Protocol on smsgate.smpp.pdu; what the socket and codec allow.

A client that does not finish within ``--timeout`` seconds is reported as
stalled, with what it got done by then. Each row is the best of ``--repeat``
runs (each with its own simulator), as one run's figure swings by a third on
a small shared VM; the note lists every run, and the rate over the first and
the last tenth of the messages, which shows a client slowing as they
accumulate.

``--receipts`` asks for a receipt (registered_delivery=1) with every message;
the simulator sends each ``--receipt-delay-ms`` after its submit_sm_resp and
every client must answer it with deliver_sm_resp. The receipts column counts
those each client handed to its application. A probe follows: one receipt
with 10-digit (yyMMddhhmm) and one with 12-digit (yyMMddhhmmss) dates, both
seen in carriers' receipts, pushed to each client by an in-process simulator,
reporting whether the client acknowledged it and whether the session
survived.

    .venv/bin/pip install -e ".[bench]"   # aiosmpplib 0.7.4
    .venv/bin/python bench/smpp_libraries.py [--messages 20000] [--windows 10,100]
    .venv/bin/python bench/smpp_libraries.py --receipts
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import sys
import tempfile
import time
import traceback
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

try:
    from aiosmpplib import (
        ESME,
        NPI,
        TON,
        AbstractCorrelator,
        AbstractHook,
        DeliverSm,
        PhoneNumber,
        SmppCommand,
        SmppCommandStatus,
        SmppMessage,
        SubmitSm,
    )
except ImportError:  # pragma: no cover - the message is the point
    raise SystemExit("this benchmark needs aiosmpplib: pip install aiosmpplib==0.7.4") from None

from smsgate.core.encoding import segment
from smsgate.delivery.connectors.base import Ack
from smsgate.delivery.connectors.smpp import SmppConnector, SmppSettings
from smsgate.runtime import settle_garbage_collector
from smsgate.smpp.pdu import ESM_DELIVERY_RECEIPT, MessageState, Tag, cstring_tlv, int_tlv
from smsgate.smpp.simulator import SimulatorConfig, SmscSimulator
from smsgate.store.records import (
    InboundMessage,
    OutboundMessage,
    Receipt,
    Refused,
    SubmitOutcome,
    Submitted,
)

# bench/ is not a package: the simulator runner, the floor and the workload are
# bench/smpp_delivery.py's, imported rather than copied.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_net import free_port
from smpp_delivery import (
    PASSWORD,
    SENDER,
    SYSTEM_ID,
    Simulator,
    cpu_seconds,
    floor_rate,
    recipient,
    text,
)

AIOSMPPLIB = "aiosmpplib"
AIOSMPPLIB_TESTED = "0.7.4"
HOST = "127.0.0.1"
BIND_SECONDS = 10.0
CLOSE_SECONDS = 5.0
PROBE_SECONDS = 3.0
REPEAT_UNDER_SECONDS = 5.0
RECEIPT_GRACE_SECONDS = 5.0  # after the receipt delay, for the last receipts to arrive
# Both spellings of a receipt's dates that carriers send (SMPP 3.4 appendix B has 10 digits).
RECEIPT_DATES = (("yyMMddhhmm", "%y%m%d%H%M"), ("yyMMddhhmmss", "%y%m%d%H%M%S"))


# ---------------------------------------------------------------- counting


class Tally:
    """What one client got back, counted where its responses are reported.

    ``marks`` holds the time of every tenth of ``count`` answered, so a rate
    that falls as messages accumulate shows as a slow last tenth.
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self.expected = 0  # answers that end the current send()
        self.answered = 0
        self.refused = 0
        self.retry = 0  # RetryLater outcomes (SmppConnector)
        self.receipts = 0
        self.started = 0.0
        self.ended = 0.0
        self.marks: list[float] = []
        self.granularity = 1  # answers counted together (a submit() chunk)
        self._step = max(count // 10, 1)
        self._done: asyncio.Event = asyncio.Event()
        self._receipt_seen: asyncio.Event = asyncio.Event()

    def start(self) -> None:
        self.marks.clear()
        self.started = time.perf_counter()

    def expect(self, more: int) -> None:
        self.expected = self.answered + more
        self._done.clear()
        if more <= 0:
            self._done.set()

    def answer(self, ok: bool) -> None:
        self.answered += 1
        if not ok:
            self.refused += 1
        if self.answered % self._step == 0:
            self.marks.append(time.perf_counter())
        if self.answered >= self.expected:
            self.ended = time.perf_counter()
            self._done.set()

    async def all_answered(self) -> None:
        await self._done.wait()

    def receipt(self) -> None:
        self.receipts += 1
        self._receipt_seen.set()

    async def all_receipts(self, within: float) -> None:
        """Until every accepted message's receipt is in, or ``within`` seconds are over."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while self.receipts < self.answered - self.refused:
                    self._receipt_seen.clear()
                    await self._receipt_seen.wait()

    def tenths(self) -> str:
        """Rate over the first and the last tenth of ``count`` answered (the last one
        reached, if it stalled). Empty when the answers came in chunks too coarse for it."""
        marks = self.marks
        if len(marks) < 2 or self._step % self.granularity:
            return ""
        first = self._step / (marks[0] - self.started)
        last = self._step / (marks[-1] - marks[-2])
        return f"tenth 1 {first:,.0f}, tenth {len(marks)} {last:,.0f} msg/s"


class LogCapture(logging.Handler):
    """aiosmpplib reports trouble only through its logger: count it, keep the first lines."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0
        self.first: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if len(self.first) < 2:
            self.first.append(record.getMessage()[:100])


class Client(Protocol):
    """One SMPP client under test, as the measurement drives it."""

    tally: Tally

    async def open(self) -> None: ...

    def prepare(self, indices: range, report: bool) -> None:
        """Build the messages ``indices`` in the client's own message objects."""
        ...

    async def send(self) -> None:
        """Submit what was prepared; return once every one is answered."""
        ...

    async def close(self) -> None: ...

    def notes(self) -> list[str]: ...


ClientFactory = Callable[[int, int, int], Client]  # (port, window, count) -> client


# ---------------------------------------------------------------- aiosmpplib


class WindowHook(AbstractHook):
    """The send window and counters aiosmpplib lacks, fed by its hook callbacks.

    ``received`` is awaited by its reader for every PDU it parsed, with the
    response already correlated (``log_id`` copied from the request), and
    ``send_error`` for a request that failed or whose response expired, so a
    semaphore released there bounds the unanswered submit_sm exactly. Only
    messages still in ``pending`` release it: a response arriving after its
    request expired must not widen the window.
    """

    def __init__(self, tally: Tally, window: int) -> None:
        self.tally = tally
        self.window = asyncio.Semaphore(window)
        self.pending: set[str] = set()
        self.bound: asyncio.Event = asyncio.Event()
        self.send_errors: list[str] = []

    async def sending(self, smpp_message: SmppMessage, pdu: bytes, client_id: str) -> None:
        pass

    async def received(self, smpp_message: SmppMessage | None, pdu: bytes, client_id: str) -> None:
        if smpp_message is None:
            return
        command = smpp_message.smpp_command
        if command in (SmppCommand.SUBMIT_SM_RESP, SmppCommand.GENERIC_NACK):
            ok = smpp_message.command_status == SmppCommandStatus.ESME_ROK
            self._answered(getattr(smpp_message, "log_id", ""), ok)
        elif isinstance(smpp_message, DeliverSm) and smpp_message.is_receipt():
            self.tally.receipt()
        elif (
            command == SmppCommand.BIND_TRANSCEIVER_RESP
            and smpp_message.command_status == SmppCommandStatus.ESME_ROK
        ):
            self.bound.set()

    async def send_error(self, smpp_message: SmppMessage, error: Exception, client_id: str) -> None:
        if len(self.send_errors) < 2:
            self.send_errors.append(f"{type(error).__name__}: {error}")
        self._answered(getattr(smpp_message, "log_id", ""), False)

    def _answered(self, log_id: str, ok: bool) -> None:
        if log_id in self.pending:
            self.pending.discard(log_id)
            self.window.release()
            self.tally.answer(ok)


class DictCorrelator(AbstractCorrelator):
    """aiosmpplib's correlator contract on plain dicts: O(1) per request.

    Requests are kept by sequence number until their response, receipts'
    correlations by the SMSC's message id until the receipt; each store also
    keeps a deque in insertion (= age) order, and expiry pops only from its
    old end, so it costs nothing while nothing is due. Expired requests are
    reported through ``expired`` -> ``hook.send_error``, as SimpleCorrelator
    does. Segmented (SAR) submit_sm and deliver_sm are not tracked: this
    workload is single-part, and aiosmpplib (auto_message_payload, its
    default) never splits a submit_sm itself, so ``get_segmented`` always
    answers "not a segment" and MO segments pass through unjoined.
    """

    def __init__(self, max_ttl_response: float = 15.0, max_ttl_delivery: float = 259200.0) -> None:
        self._response_ttl = max_ttl_response
        self._delivery_ttl = max_ttl_delivery
        self._requests: dict[int, SmppMessage] = {}
        self._request_ages: deque[tuple[float, int, SmppMessage]] = deque()
        self._deliveries: dict[str, SubmitSm] = {}
        self._delivery_ages: deque[tuple[float, str, SubmitSm]] = deque()

    def get_cumulated_status(self, ref_num: int) -> int:
        raise KeyError(ref_num)  # no segmented message is ever stored

    async def expired(self, smpp_message: SmppMessage) -> None:
        if isinstance(smpp_message, SubmitSm):
            error = TimeoutError("No response to command received within timeout")
            await self.hook.send_error(smpp_message, error, self.client_id)

    async def put(self, smpp_message: SmppMessage) -> None:
        now = time.monotonic()
        await self._expire(now)
        self._requests[smpp_message.sequence_num] = smpp_message
        self._request_ages.append((now, smpp_message.sequence_num, smpp_message))

    async def put_delivery(self, smsc_message_id: str, submit_sm: SubmitSm) -> None:
        now = time.monotonic()
        self._deliveries[smsc_message_id] = submit_sm
        self._delivery_ages.append((now, smsc_message_id, submit_sm))

    async def put_delivery_segmented(self, deliver_sm: DeliverSm) -> DeliverSm | None:
        return deliver_sm

    async def get(self, response: SmppMessage) -> SmppMessage | None:
        await self._expire(time.monotonic())
        return self._requests.pop(response.sequence_num, None)

    async def get_segmented(self, smpp_seq_num: int, remove: bool = False) -> tuple[None, int]:
        return None, 0

    async def get_delivery(self, receipt: DeliverSm) -> SubmitSm | None:
        message_id = str(receipt.parse_receipt().get("id", ""))
        return self._deliveries.pop(message_id, None)

    async def _expire(self, now: float) -> None:
        ages = self._request_ages
        while ages and now - ages[0][0] > self._response_ttl:
            _, sequence, message = ages.popleft()
            if self._requests.get(sequence) is message:  # not answered, not a reused number
                del self._requests[sequence]
                await self.expired(message)
        receipts = self._delivery_ages
        while receipts and now - receipts[0][0] > self._delivery_ttl:
            _, message_id, submit_sm = receipts.popleft()
            if self._deliveries.get(message_id) is submit_sm:
                del self._deliveries[message_id]


class AiosmpplibClient:
    """aiosmpplib's ESME, fed through its broker at most ``window`` ahead of its responses."""

    def __init__(
        self, port: int, window: int, count: int, correlator: AbstractCorrelator | None
    ) -> None:
        self.tally = Tally(count)
        self._hook = WindowHook(self.tally, window)
        self._log = LogCapture()
        self._esme = ESME(
            smsc_host=HOST,
            smsc_port=port,
            system_id=SYSTEM_ID,
            password=PASSWORD,
            hook=self._hook,
            correlator=correlator,
            log_level=logging.ERROR,
            log_handler=self._log,
        )
        self._task: asyncio.Task[None] | None = None
        self._prepared: list[SubmitSm] = []

    async def open(self) -> None:
        self._task = asyncio.create_task(self._esme.start(), name="aiosmpplib-esme")
        async with asyncio.timeout(BIND_SECONDS):
            await self._hook.bound.wait()

    def prepare(self, indices: range, report: bool) -> None:
        self._prepared = [
            SubmitSm(
                short_message=text(i),
                source=PhoneNumber(SENDER, TON.ALPHANUMERIC, NPI.UNKNOWN),
                destination=PhoneNumber(recipient(i).lstrip("+"), TON.INTERNATIONAL, NPI.ISDN),
                registered_delivery=1 if report else 0,
                log_id=str(i),
            )
            for i in indices
        ]

    async def send(self) -> None:
        hook, broker = self._hook, self._esme.broker
        self.tally.expect(len(self._prepared))
        for message in self._prepared:
            await hook.window.acquire()
            hook.pending.add(message.log_id)
            await broker.enqueue(message)
        await self.tally.all_answered()

    async def close(self) -> None:
        # stop() unbinds and waits for the session to end; a stalled ESME may
        # never get there, so it is then cancelled.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_SECONDS):
                await self._esme.stop()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def notes(self) -> list[str]:
        notes = []
        if self._hook.send_errors:
            notes.append(f"send_error: {self._hook.send_errors[0]}")
        if self._log.count:
            notes.append(f"{self._log.count:,} errors logged, first: {self._log.first[0]}")
        return notes


# ---------------------------------------------------------------- smsgate


class ConnectorClient:
    """smsgate's SmppConnector, driven as the dispatcher drives it: submit() per chunk."""

    def __init__(self, port: int, window: int, count: int, chunk: int) -> None:
        self.tally = Tally(count)
        self.tally.granularity = chunk
        self._chunk = chunk
        self._connector = SmppConnector(
            SmppSettings(
                name="smsc-sim",
                host=HOST,
                port=port,
                system_id=SYSTEM_ID,
                password=PASSWORD,
                window=window,
            )
        )
        self._prepared: list[OutboundMessage] = []

    def _receipt(self, receipt: Receipt, ack: Ack | None = None) -> None:
        self.tally.receipt()
        if ack is not None:
            ack()

    def _inbound(self, message: InboundMessage, ack: Ack | None = None) -> None:
        if ack is not None:
            ack()

    async def open(self) -> None:
        await self._connector.start(self._receipt, self._inbound)
        if not await self._connector.wait_bound(BIND_SECONDS):
            raise SystemExit("SmppConnector did not bind to smsc-sim")

    def prepare(self, indices: range, report: bool) -> None:
        self._prepared = [outbound(i, report) for i in indices]

    async def send(self) -> None:
        messages, size = self._prepared, self._chunk
        self.tally.expect(len(messages))
        in_flight: deque[asyncio.Task[None]] = deque()
        try:
            for start in range(0, len(messages), size):
                batch = messages[start : start + size]
                in_flight.append(asyncio.create_task(self._connector.submit(batch, self._record)))
                if len(in_flight) == 2:
                    await in_flight.popleft()
            while in_flight:
                await in_flight.popleft()
        finally:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)

    def _record(self, outcome: SubmitOutcome, ack: Ack) -> None:
        """Counts each outcome and acknowledges it at once: no store behind it."""
        if isinstance(outcome, Submitted | Refused):
            self.tally.answer(isinstance(outcome, Submitted))
        else:
            self.tally.retry += 1
        ack()

    async def close(self) -> None:
        await self._connector.stop()

    def notes(self) -> list[str]:
        return [f"{self.tally.retry:,} RetryLater"] if self.tally.retry else []


def outbound(i: int, report: bool) -> OutboundMessage:
    """Message ``i`` of the workload as a worker claims it from the store."""
    body = text(i)
    shape = segment(body)
    return OutboundMessage(
        id=i + 1,
        account_id=1,
        recipient=recipient(i),
        sender=SENDER,
        body=body,
        encoding=shape.encoding.value,
        segments=shape.segments,
        priority=1,
        want_report=report,
        flags=0,
        routing_group=None,
        attempts=1,
    )


# ---------------------------------------------------------------- throughput


@dataclass
class Row:
    client: str
    window: int
    rate: float | None
    receipts: str
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stalled: bool = False
    cpu_us: float | None = None  # this process's CPU per answered message


async def measure(
    label: str, factory: ClientFactory, port: int, window: int, args: argparse.Namespace
) -> Row:
    count: int = args.messages
    client = factory(port, window, count)
    tally = client.tally
    await client.open()
    try:
        client.prepare(range(count), args.receipts)
        gc.collect()
        cpu_started = cpu_seconds()
        tally.start()
        stalled = False
        try:
            async with asyncio.timeout(args.timeout):
                await client.send()
        except TimeoutError:
            stalled = True
        seconds = (time.perf_counter() if stalled else tally.ended) - tally.started
        cpu = cpu_seconds() - cpu_started
        if args.receipts:
            await tally.all_receipts(args.receipt_delay_ms / 1000 + RECEIPT_GRACE_SECONDS)
    finally:
        await client.close()
    notes = []
    if stalled:
        notes.append(f"{tally.answered:,} answered in {seconds:.1f} s (stalled)")
    notes.append(tally.tenths())
    if tally.refused:
        notes.append(f"{tally.refused:,} refused")
    notes.extend(client.notes())
    receipts = "no"
    if args.receipts:
        receipts = f"{tally.receipts:,}/{tally.answered - tally.refused:,}"
    rate = tally.answered / seconds if seconds else None
    cpu_us = cpu / tally.answered * 1e6 if tally.answered else None
    return Row(label, window, rate, receipts, notes, seconds, stalled, cpu_us)


async def measure_floor(port: int, window: int, args: argparse.Namespace) -> Row:
    """bench/smpp_delivery.py's floor; it waits for all receipts, so they all came if it returns."""
    count: int = args.messages
    cpu_started = cpu_seconds()
    try:
        rate = await floor_rate(port, count, window, args.receipts, args.timeout)
    except (TimeoutError, ConnectionError) as exc:
        note = f"did not finish in {args.timeout:g} s ({exc!r})"
        return Row(FLOOR, window, None, "?", [note], args.timeout, stalled=True)
    receipts = f"{count:,}/{count:,}" if args.receipts else "no"
    cpu_us = (cpu_seconds() - cpu_started) / count * 1e6  # with its bind, unbind (and receipts)
    return Row(FLOOR, window, rate, receipts, seconds=count / rate, cpu_us=cpu_us)


STOCK = f"aiosmpplib {AIOSMPPLIB_TESTED} (stock)"
DICT = f"aiosmpplib {AIOSMPPLIB_TESTED} (dict correlator)"
OURS = "smsgate SmppConnector"
FLOOR = "bare asyncio codec (floor)"


def factories(args: argparse.Namespace) -> dict[str, ClientFactory]:
    chunk: int = args.chunk
    return {
        STOCK: lambda port, window, count: AiosmpplibClient(port, window, count, None),
        DICT: lambda port, window, count: AiosmpplibClient(port, window, count, DictCorrelator()),
        OURS: lambda port, window, count: ConnectorClient(port, window, count, chunk),
    }


def run_once(
    work: Callable[[int], Coroutine[Any, Any, Row]], args: argparse.Namespace, log: Path
) -> Row:
    """One run: a fresh simulator process and a fresh event loop. The simulator logs
    every bind, so a client that lost its session and bound again shows, whatever
    the client itself reports."""
    port = free_port()
    simulator = Simulator(port, args.receipt_delay_ms, log)
    try:
        simulator.wait_listening()
        row = asyncio.run(work(port))
    finally:
        simulator.stop()
        gc.collect()
    binds = log.read_text().count(" bound as ")
    if binds != 1:
        row.notes.append(f"{binds} binds (session dropped)")
    return row


def run_row(
    work: Callable[[int], Coroutine[Any, Any, Row]], args: argparse.Namespace, tmp: Path, n: int
) -> Row:
    """The best of ``--repeat`` runs: on a shared 2-core VM one run's figure swings by a
    third. A run that stalled or took over REPEAT_UNDER_SECONDS is not repeated: it is
    not noise that made it slow, and the script has to finish in a few minutes."""
    runs: list[Row] = []
    for attempt in range(args.repeat):
        row = run_once(work, args, tmp / f"smsc-sim-{n}-{attempt}.log")
        runs.append(row)
        if row.stalled or row.seconds > REPEAT_UNDER_SECONDS:
            break
    best = max(runs, key=lambda r: r.rate or 0.0)
    if len(runs) > 1:
        best.notes.insert(0, "runs " + "/".join(f"{r.rate or 0:,.0f}" for r in runs))
    return best


# ---------------------------------------------------------------- receipt probe


@dataclass
class ProbeRow:
    client: str
    dates: str
    acked: bool
    handed_over: int
    binds: int
    usable: bool
    note: str


def receipt_text(message_id: str, date_format: str) -> str:
    moment = time.strftime(date_format, time.gmtime())
    return (
        f"id:{message_id} sub:001 dlvrd:001 submit date:{moment} done date:{moment}"
        " stat:DELIVRD err:000 text:probe"
    )


def aiosmpplib_parse_error(short_message: str) -> str:
    """What aiosmpplib's own receipt parser does with ``short_message``, called directly:
    where it raises, for the probe's note."""
    try:
        DeliverSm(short_message=short_message, esm_class=ESM_DELIVERY_RECEIPT).parse_receipt()
    except Exception as exc:
        frames = traceback.extract_tb(exc.__traceback__)
        own = [f for f in frames if f"{AIOSMPPLIB}/" in f.filename.replace("\\", "/")]
        where = own[-1] if own else frames[-1]
        source = Path(where.filename).name
        return (
            f"{type(exc).__name__}: {exc} in DeliverSm.{where.name}"
            f" ({AIOSMPPLIB}/{source}:{where.lineno}: {where.line})"
        )
    return ""


async def probe(label: str, factory: ClientFactory, dates: str, date_format: str) -> ProbeRow:
    """Submit one message, push a receipt for it with ``date_format`` dates, then see
    whether it was acknowledged and whether a second message still gets through."""
    # The message asks for a receipt, as a real one would (a client may ignore
    # receipts for ids it never asked about); the simulator's own comes too late
    # to be seen, so the one pushed here is the only one.
    simulator = SmscSimulator(SimulatorConfig(port=0, receipt_delay_ms=600_000))
    await simulator.start()
    client = factory(simulator.port, 1, 2)
    try:
        await client.open()
        client.prepare(range(1), report=True)
        async with asyncio.timeout(PROBE_SECONDS):
            await client.send()
        message_id = simulator.submitted[0].message_id
        short_message = receipt_text(message_id, date_format)
        tlvs = {
            Tag.RECEIPTED_MESSAGE_ID: cstring_tlv(message_id),
            Tag.MESSAGE_STATE: int_tlv(MessageState.DELIVERED, 1),
        }
        await simulator.send_mo(
            recipient(0).lstrip("+"),
            SENDER,
            short_message.encode("ascii"),
            esm_class=ESM_DELIVERY_RECEIPT,
            tlvs=tlvs,
        )
        with contextlib.suppress(TimeoutError):
            await simulator.wait_until(lambda: simulator.deliver_sm_resps > 0, PROBE_SECONDS)
        client.prepare(range(1, 2), report=False)
        try:
            async with asyncio.timeout(PROBE_SECONDS):
                await client.send()
            usable = True
        except TimeoutError:
            usable = False
        await asyncio.sleep(0.2)  # a reconnect in progress shows up in the bind count
        row = ProbeRow(
            label,
            dates,
            simulator.deliver_sm_resps > 0,
            client.tally.receipts,
            len(simulator.bound),
            usable,
            "",
        )
    finally:
        await client.close()
        await simulator.stop()
    notes = []
    if row.binds > 1:
        notes.append(f"session dropped and rebound {row.binds - 1}x")
    if label.startswith(AIOSMPPLIB) and not row.acked:
        notes.append(aiosmpplib_parse_error(short_message))
    row.note = "; ".join(notes)
    return row


# ---------------------------------------------------------------- reporting


def print_rows(rows: list[Row]) -> None:
    print(f"{'client':<36} {'window':>6}  {'receipts':<15} {'msg/s':>8} {'cpu µs/msg':>10}  note")
    for row in rows:
        rate = f"{row.rate:8,.0f}" if row.rate is not None else f"{'-':>8}"
        cpu = f"{row.cpu_us:10,.0f}" if row.cpu_us is not None else f"{'-':>10}"
        note = "; ".join(n for n in row.notes if n)
        print(f"{row.client:<36} {row.window:>6}  {row.receipts:<15} {rate} {cpu}  {note}")


def print_probe(rows: list[ProbeRow]) -> None:
    print()
    print("receipt probe: one receipt pushed after one submit_sm, then one more submit_sm")
    print(
        f"{'client':<36} {'dates':<13} {'acked':<5} {'handed':>6} {'binds':>5}"
        f"  {'next submit':<11}  note"
    )
    for row in rows:
        print(
            f"{row.client:<36} {row.dates:<13} {'yes' if row.acked else 'NO':<5}"
            f" {row.handed_over:>6} {row.binds:>5}  {'ok' if row.usable else 'STALLED':<11}"
            f"  {row.note}"
        )


def library_version() -> str:
    version = metadata.version(AIOSMPPLIB)
    if version != AIOSMPPLIB_TESTED:
        return f"{version} (this benchmark was written against {AIOSMPPLIB_TESTED})"
    return version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument(
        "--windows",
        type=lambda value: [int(w) for w in value.split(",")],
        default=[10, 100],
        help="comma-separated send windows (default 10,100)",
    )
    parser.add_argument("--receipts", action="store_true", help="registered_delivery=1")
    parser.add_argument("--receipt-delay-ms", type=float, default=200)
    parser.add_argument("--timeout", type=float, default=20, help="per client and window")
    parser.add_argument("--chunk", type=int, default=500, help="messages per submit()")
    parser.add_argument("--repeat", type=int, default=3, help="runs per row, the best is shown")
    parser.add_argument(
        "--clients",
        default="stock,dict,ours,floor",
        help="which rows, comma-separated: stock, dict, ours, floor",
    )
    args = parser.parse_args()
    chosen = set(args.clients.split(","))
    labels = {"stock": STOCK, "dict": DICT, "ours": OURS}
    made = factories(args)
    receipts = f"on, {args.receipt_delay_ms:g} ms after the resp" if args.receipts else "off"
    print(
        f"submit_sm throughput, {args.messages:,} messages per row, receipts {receipts},"
        f" timeout {args.timeout:g} s; aiosmpplib {library_version()},"
        f" Python {sys.version.split()[0]}, asyncio loop"
    )
    load = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    print(
        f"load average {load:.2f} on {cores} cores at the start"
        + (" (other work is competing: expect noisy figures)" if load > cores / 2 else "")
    )
    print(
        "aiosmpplib's window: a semaphore released from AbstractHook.received/send_error;"
        " its correlator replaced through ESME(correlator=AbstractCorrelator): feasible"
    )
    print()
    settle_garbage_collector()  # as a worker process does; the same for every row
    rows: list[Row] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        n = 0
        for key, label in labels.items():
            if key not in chosen:
                continue
            for window in args.windows:
                n += 1

                async def work(port: int, label: str = label, window: int = window) -> Row:
                    return await measure(label, made[label], port, window, args)

                rows.append(run_row(work, args, Path(tmp), n))
        if "floor" in chosen:
            for window in args.windows:
                n += 1
                rows.append(
                    run_row(
                        lambda port, window=window: measure_floor(port, window, args),
                        args,
                        Path(tmp),
                        n,
                    )
                )
    print_rows(rows)
    if args.receipts:
        probes = [
            asyncio.run(probe(label, made[label], dates, date_format))
            for label in (STOCK, OURS)
            for dates, date_format in RECEIPT_DATES
        ]
        print_probe(probes)
    print(f"\n(whole run {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
