"""An SMPP 3.4 client (ESME) connector.

One connector keeps one bind (transceiver) or two (transmitter + receiver) to
an SMSC. Submissions share a window of outstanding submit_sm: a semaphore
taken per PDU and released by its response, so at most ``window`` requests
are unanswered at any time, as SMSCs require. A second semaphore of the same
size is taken per message and released only when the store has committed
that message's outcome, so a crash loses the fate of at most ``window``
messages the SMSC may already hold: the only ones that can reach it twice.
Responses are matched to requests by sequence number in a dict, so a wide
window costs nothing extra.

The hot path is shaped for tens of thousands of PDUs a second on one core: a
response completes its message through a callback rather than a task per
message, the PDUs written in one pass of the event loop leave in one send,
and one periodic sweep times out unanswered requests instead of a timer per
request.

What can go wrong, and what it becomes:
- ESME_RTHROTTLED / ESME_RMSGQFUL: the message is asked again later, and the
  connector pauses its sends for a moment (the carrier is telling us to slow down);
- any other error status: the carrier refused the message for good;
- the connection drops with requests in flight: those messages are asked
  again later (the carrier may have taken some: at-least-once, bounded by the
  window), and the connector reconnects with backoff.

Receipts name the carrier's id in whatever spelling the SMSC likes (hex or
decimal, with or without leading zeros); every id this connector was given is
filed under its canonical spelling, and a receipt's id is looked up under each
of its ``correlation_keys``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, unquote, urlsplit

from smsgate.core.encoding import Encoding
from smsgate.core.states import Reason, State
from smsgate.delivery.connectors.base import (
    Ack,
    AckCounter,
    InboundSink,
    ReceiptSink,
    SubmissionSink,
)
from smsgate.observe.events import smpp_status_name
from smsgate.smpp.pdu import (
    ESM_DELIVERY_RECEIPT,
    Bind,
    CommandId,
    Framer,
    MessageIdResp,
    MessageState,
    Pdu,
    PduError,
    ShortMessage,
    Status,
    Tag,
    decode,
    encode,
    read_cstring_tlv,
    read_int_tlv,
)
from smsgate.smpp.receipt_text import (
    REASON_OF_MAP_ERROR,
    STAT_TO_STATE,
    correlation_keys,
    numeric_field,
    parse_receipt_text,
)
from smsgate.smpp.wire import Reassembler, read_inbound, submit_bodies
from smsgate.store.records import (
    InboundMessage,
    OutboundMessage,
    Receipt,
    Refused,
    RetryLater,
    SubmitOutcome,
    Submitted,
)
from smsgate.store.repo import wall_clock_ms

log = logging.getLogger(__name__)

_BIND_COMMANDS = {
    "transceiver": CommandId.BIND_TRANSCEIVER,
    "transmitter": CommandId.BIND_TRANSMITTER,
    "receiver": CommandId.BIND_RECEIVER,
}
MAX_REMEMBERED_IDS = 500_000
MAX_EARLY_RECEIPTS = 10_000
_SLOW_DOWN = {Status.RTHROTTLED, Status.RMSGQFUL}
# The message_state TLV's final values, as the stat word a receipt text would carry.
_STAT_OF_MESSAGE_STATE: dict[int, str] = {
    MessageState.DELIVERED: "DELIVRD",
    MessageState.EXPIRED: "EXPIRED",
    MessageState.DELETED: "DELETED",
    MessageState.UNDELIVERABLE: "UNDELIV",
    MessageState.UNKNOWN: "UNKNOWN",
    MessageState.REJECTED: "REJECTD",
}


DeliverHandler = Callable[["Session", Pdu], None]


class NotBound(ConnectionError):
    """No usable bind right now; the messages are retried later."""


@dataclass(frozen=True)
class SmppSettings:
    name: str
    host: str
    port: int
    system_id: str
    password: str
    system_type: str = ""
    bind_mode: str = "transceiver"  # or "transmitter_receiver"
    window: int = 10
    max_per_second: float = 0.0  # 0: as fast as the window allows
    enquire_link_seconds: float = 30.0
    response_timeout: float = 10.0
    reconnect_min_seconds: float = 0.5
    reconnect_max_seconds: float = 30.0
    slow_down_seconds: float = 1.0
    sar: bool = False  # long messages with SAR TLVs instead of a UDH

    @classmethod
    def from_url(cls, url: str) -> SmppSettings:
        """``smpp://system_id:password@host:port?name=smsc1&bind=transceiver&window=10&tps=100``
        (``bind=transmitter_receiver`` for two binds; ``sar=1`` for SAR TLVs)."""
        parts = urlsplit(url)
        if parts.scheme != "smpp" or not parts.hostname or not parts.username:
            raise ValueError("expected smpp://system_id:password@host:port?options")
        options = dict(parse_qsl(parts.query))
        bind_mode = options.get("bind", "transceiver")
        if bind_mode not in ("transceiver", "transmitter_receiver"):
            raise ValueError("bind must be transceiver or transmitter_receiver")
        return cls(
            name=options.get("name", "smpp"),
            host=parts.hostname,
            port=parts.port or 2775,
            system_id=unquote(parts.username),
            password=unquote(parts.password or ""),
            system_type=options.get("system_type", ""),
            bind_mode=bind_mode,
            window=int(options.get("window", 10)),
            max_per_second=float(options.get("tps", 0)),
            enquire_link_seconds=float(options.get("enquire_link", 30)),
            sar=options.get("sar", "0") == "1",
        )


class Session:
    """One TCP connection and its bind: requests out, responses matched back."""

    def __init__(self, settings: SmppSettings, mode: str, on_deliver: DeliverHandler) -> None:
        self._settings = settings
        self._mode = mode
        self._on_deliver = on_deliver
        self._sequences = itertools.count(1)
        # sequence -> (deadline on the loop clock, the future its response completes)
        self._waiting: dict[int, tuple[float, asyncio.Future[Pdu]]] = {}
        self._outgoing: list[bytes] = []
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.closed = asyncio.Event()
        self.last_sequence = 0

    async def open(self) -> None:
        reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(self._settings.host, self._settings.port),
            self._settings.response_timeout,
        )
        self._tasks = [
            asyncio.create_task(self._read(reader), name="smpp-reader"),
            asyncio.create_task(self._sweep(), name="smpp-timeouts"),
        ]
        bind = Bind(self._settings.system_id, self._settings.password, self._settings.system_type)
        response = await self.request(_BIND_COMMANDS[self._mode], bind)
        if response.command_status != Status.ROK:
            await self.close()
            raise ConnectionRefusedError(
                f"bind refused: {smpp_status_name(response.command_status)}"
            )

    def send(
        self, command: CommandId, body: Bind | ShortMessage | None = None
    ) -> asyncio.Future[Pdu]:
        """Write a request; the future gets its response, or NotBound or TimeoutError."""
        if self._writer is None or self.closed.is_set():
            raise NotBound("session is closed")
        sequence = next(self._sequences) & 0x7FFFFFFF
        self.last_sequence = sequence
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Pdu] = loop.create_future()
        self._waiting[sequence] = (loop.time() + self._settings.response_timeout, future)
        self._write(encode(Pdu(command, sequence, 0, body)))
        return future

    def unanswered_since(self, sequence: int) -> bool:
        """Whether a request sent no later than ``sequence`` still awaits its
        response (requests are kept in the order they were sent)."""
        oldest = next(iter(self._waiting), None)
        return oldest is not None and oldest <= sequence

    async def request(self, command: CommandId, body: Bind | ShortMessage | None = None) -> Pdu:
        return await self.send(command, body)

    def respond(self, request: Pdu, body: MessageIdResp | None = None) -> None:
        if self._writer is not None and not self.closed.is_set():
            self._write(encode(Pdu(request.command_id | 0x80000000, request.sequence, 0, body)))

    def _write(self, data: bytes) -> None:
        """Queue ``data`` for the end of this loop pass: one send for all its PDUs."""
        if not self._outgoing:
            asyncio.get_running_loop().call_soon(self._flush)
        self._outgoing.append(data)

    def _flush(self) -> None:
        data = b"".join(self._outgoing)
        self._outgoing.clear()
        if self._writer is not None and not self.closed.is_set():
            self._writer.write(data)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        framer = Framer()
        try:
            while data := await reader.read(65536):
                for frame in framer.feed(data):
                    self._dispatch(decode(frame))
        except (ConnectionError, PduError) as exc:
            log.warning("smpp %s: connection lost: %s", self._settings.name, exc)
        finally:
            self._fail_waiting(NotBound("connection lost"))
            self.closed.set()

    async def _sweep(self) -> None:
        """Fail the requests the SMSC left unanswered past the response timeout.

        One pass over at most a window of entries every fraction of the
        timeout is far cheaper than a timer armed and cancelled per request.
        """
        loop = asyncio.get_running_loop()
        interval = max(self._settings.response_timeout / 4, 0.01)
        while not self.closed.is_set():
            await asyncio.sleep(interval)
            now = loop.time()
            overdue = [seq for seq, (deadline, _) in self._waiting.items() if deadline <= now]
            for sequence in overdue:
                _, future = self._waiting.pop(sequence)
                if not future.done():
                    future.set_exception(TimeoutError("no response from the SMSC"))

    def _dispatch(self, pdu: Pdu) -> None:
        if pdu.command_id & 0x80000000:
            entry = self._waiting.pop(pdu.sequence, None)
            if entry is not None and not entry[1].done():
                entry[1].set_result(pdu)
            return
        if pdu.command_id == CommandId.DELIVER_SM and isinstance(pdu.body, ShortMessage):
            self._on_deliver(self, pdu)
        elif pdu.command_id == CommandId.ENQUIRE_LINK:
            self.respond(pdu)
        elif pdu.command_id == CommandId.UNBIND:
            self.respond(pdu)
            self._flush()
            self._close_transport()

    def _fail_waiting(self, error: Exception) -> None:
        for _, future in self._waiting.values():
            if not future.done():
                future.set_exception(error)
        self._waiting.clear()

    def _close_transport(self) -> None:
        if self._writer is not None:
            self._writer.close()

    async def close(self, *, unbind: bool = False) -> None:
        if unbind and not self.closed.is_set():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.request(CommandId.UNBIND), 2.0)
        if self._outgoing:
            self._flush()
        self._close_transport()
        for task in self._tasks[1:]:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.closed.set()


class SmppConnector:
    shared = True  # one SMSC account for the cluster: bound by one worker at a time

    def __init__(self, settings: SmppSettings) -> None:
        self.name = settings.name
        self._settings = settings
        self._window = asyncio.Semaphore(settings.window)
        self._unsettled = asyncio.Semaphore(settings.window)
        self._sessions: list[Session] = []
        self._transmitter: Session | None = None
        self._bound = asyncio.Event()
        self._stopping = asyncio.Event()
        self._maintainer: asyncio.Task[None] | None = None
        self._receipts: ReceiptSink | None = None
        self._inbound: InboundSink | None = None
        self._references = itertools.count(1)
        # Canonical spelling of each id awaiting its receipt -> the id reported to
        # the store. An entry leaves when its receipt comes, so the map holds the
        # receipts in transit, not the history; the cap covers receipts never sent.
        self._carrier_ids: OrderedDict[str, str] = OrderedDict()
        # Receipts that overtook their submit_sm_resp, under each of their keys,
        # and in arrival order for handing on those whose id never turns up.
        self._early: dict[str, _Early] = {}
        self._early_order: deque[_Early] = deque()
        self._reassembler = Reassembler()
        self._paused_until = 0.0
        self._next_send = 0.0

    @property
    def is_up(self) -> bool:
        return self._bound.is_set()

    # ---------------------------------------------------------------- lifecycle

    async def start(self, receipts: ReceiptSink, inbound: InboundSink) -> None:
        """Bind (and keep binding) in the background; may follow a ``stop``."""
        self._receipts, self._inbound = receipts, inbound
        self._stopping.clear()
        self._maintainer = asyncio.create_task(self._maintain(), name=f"smpp-{self.name}")

    async def stop(self) -> None:
        """Unbind cleanly; in-flight requests have had their chance by now."""
        self._stopping.set()
        if self._maintainer is not None:
            self._maintainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintainer
        self._bound.clear()
        self._transmitter = None
        for session in self._sessions:
            await session.close(unbind=True)
        self._sessions = []

    async def wait_bound(self, within: float) -> bool:
        """Whether the connector is (or becomes) bound within ``within`` seconds."""
        try:
            async with asyncio.timeout(within):
                await self._bound.wait()
        except TimeoutError:
            return False
        return True

    async def _maintain(self) -> None:
        delay = self._settings.reconnect_min_seconds
        while not self._stopping.is_set():
            try:
                await self._bind()
                delay = self._settings.reconnect_min_seconds
                await self._keep_alive()
            except (OSError, TimeoutError, ConnectionError) as exc:
                first = delay == self._settings.reconnect_min_seconds
                log.log(
                    logging.WARNING if first else logging.DEBUG,
                    "smpp %s: %s; reconnecting in %.1fs",
                    self.name,
                    exc,
                    delay,
                )
            self._bound.clear()
            for session in self._sessions:
                await session.close()
            self._sessions, self._transmitter = [], None
            if self._stopping.is_set():
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._settings.reconnect_max_seconds)

    async def _bind(self) -> None:
        modes = (
            ["transceiver"]
            if self._settings.bind_mode == "transceiver"
            else ["transmitter", "receiver"]
        )
        for mode in modes:
            session = Session(self._settings, mode, self._on_deliver)
            self._sessions.append(session)
            await session.open()
        self._transmitter = self._sessions[0]
        self._bound.set()
        log.info("smpp %s: bound (%s)", self.name, self._settings.bind_mode)

    async def _keep_alive(self) -> None:
        """enquire_link on a timer, and early receipts handed on once overdue;
        returns when a session closes."""
        closed = [asyncio.create_task(s.closed.wait()) for s in self._sessions]
        tick = min(self._settings.enquire_link_seconds, self._settings.response_timeout / 2)
        next_enquire = time.monotonic() + self._settings.enquire_link_seconds
        try:
            while True:
                done, _ = await asyncio.wait(closed, timeout=tick)
                if done:
                    raise NotBound("session closed")
                self._hand_on_stale_early()
                if time.monotonic() < next_enquire:
                    continue
                next_enquire = time.monotonic() + self._settings.enquire_link_seconds
                for session in self._sessions:
                    await session.request(CommandId.ENQUIRE_LINK)
        finally:
            for task in closed:
                task.cancel()

    # ---------------------------------------------------------------- sending

    async def submit(self, messages: Sequence[OutboundMessage], record: SubmissionSink) -> None:
        if not self._bound.is_set():
            raise NotBound(f"smpp {self.name} is not bound")
        committed = AckCounter()
        sar = self._settings.sar
        for message in messages:
            bodies = submit_bodies(message, reference=next(self._references), sar=sar)
            await self._unsettled.acquire()
            parts = _Parts(message, len(bodies), functools.partial(self._settle, committed.owe()))
            for number, body in enumerate(bodies):
                await self._window.acquire()
                delay = self._pace_delay()
                if delay > 0:
                    await asyncio.sleep(delay)
                try:
                    if self._transmitter is None:
                        raise NotBound("not bound")
                    answer = self._transmitter.send(CommandId.SUBMIT_SM, body)
                except NotBound as exc:
                    self._window.release()
                    self._part_answered(record, parts, number, exc)
                    continue
                answer.add_done_callback(
                    functools.partial(self._on_submit_sm_resp, record, parts, number)
                )
        await committed.all_paid()

    def _settle(self, paid: Ack) -> None:
        """A message's outcome is committed: its unsettled slot is free again."""
        self._unsettled.release()
        paid()

    def _on_submit_sm_resp(
        self, record: SubmissionSink, parts: _Parts, number: int, answer: asyncio.Future[Pdu]
    ) -> None:
        self._window.release()
        if answer.cancelled():
            self._part_answered(record, parts, number, NotBound("cancelled"))
        else:
            self._part_answered(record, parts, number, answer.exception() or answer.result())
        if self._early_order:
            self._hand_on_stale_early()  # this response may have been the last one owed

    def _part_answered(
        self, record: SubmissionSink, parts: _Parts, number: int, answer: Pdu | BaseException
    ) -> None:
        """Note one part's fate; the last answered part decides the message's."""
        message = parts.message
        if isinstance(answer, BaseException):
            parts.failed(RetryLater(message.id, self._retry_ms(message), f"connection: {answer}"))
        elif answer.command_status in _SLOW_DOWN:
            self._paused_until = time.monotonic() + self._settings.slow_down_seconds
            retry_ms = int(self._settings.slow_down_seconds * 1000)
            reason = Status(answer.command_status).name
            parts.failed(RetryLater(message.id, retry_ms, reason, counts_attempt=False))
        elif answer.command_status != Status.ROK:
            parts.failed(
                Refused(
                    message.id,
                    State.REJECTED,
                    Reason.CARRIER_REJECTED,
                    _status_word(answer.command_status),
                )
            )
        else:
            assert isinstance(answer.body, MessageIdResp)
            parts.ids[number] = answer.body.message_id
        parts.unanswered -= 1
        if parts.unanswered == 0:
            outcome = parts.outcome or Submitted(
                message.id, self.name, self._register(parts.ids, message.want_report)
            )
            record(outcome, parts.settle)

    def _pace_delay(self) -> float:
        """Seconds to hold for the configured rate and any slow-down the SMSC asked for."""
        now = time.monotonic()
        wait = max(self._paused_until - now, 0.0)
        rate = self._settings.max_per_second
        if rate > 0:
            slot = max(self._next_send, now)
            self._next_send = slot + 1.0 / rate
            wait = max(wait, slot - now)
        return wait

    def _retry_ms(self, message: OutboundMessage) -> int:
        return int(min(2 ** max(message.attempts - 1, 0), 60) * 1000)

    # -------------------------------------------------------------- receiving

    def _on_deliver(self, session: Session, pdu: Pdu) -> None:
        """Acknowledge a deliver_sm only once what it carried is stored: until
        then the SMSC still holds it and sends it again if we go away."""
        body = pdu.body
        assert isinstance(body, ShortMessage)

        def ack() -> None:
            session.respond(pdu, MessageIdResp(""))

        if body.esm_class & ESM_DELIVERY_RECEIPT:
            receipt = self._receipt(body)
            if receipt is not None and self._receipts is not None:
                self._take_receipt(receipt, ack)
                return
        else:
            message = self._mo(body)
            if message is not None and self._inbound is not None:
                self._inbound(message, ack)
                return
        ack()  # nothing to store: not final, or a part still missing

    def _receipt(self, body: ShortMessage) -> Receipt | None:
        """The receipt a deliver_sm carries, from its TLVs when they say it all
        (the cheap, common case), else from its text."""
        tlvs = body.tlvs
        raw_id: str | None = None
        stat = ""
        if Tag.RECEIPTED_MESSAGE_ID in tlvs and Tag.MESSAGE_STATE in tlvs:
            raw_id = read_cstring_tlv(tlvs[Tag.RECEIPTED_MESSAGE_ID])
            stat = _STAT_OF_MESSAGE_STATE.get(read_int_tlv(tlvs[Tag.MESSAGE_STATE]), "")
        error = _network_error(tlvs)
        if raw_id is None or not stat or (stat == "UNDELIV" and error is None):
            parsed = parse_receipt_text(body.short_message.decode("latin-1"))
            if parsed is not None:
                raw_id = parsed.message_id if raw_id is None else raw_id
                stat = stat or parsed.stat
                error = numeric_field(parsed.err) if error is None else error
        if raw_id is None:
            log.warning("smpp %s: receipt without a message id", self.name)
            return None
        outcome = STAT_TO_STATE.get(stat)
        if outcome is None:
            return None  # not final (ENROUTE, ACCEPTD): nothing to record
        state, reason = outcome
        if state is State.UNDELIVERABLE and error is not None:
            reason = REASON_OF_MAP_ERROR.get(error, reason)
        return Receipt(self.name, raw_id, state, reason, stat, wall_clock_ms())

    def _take_receipt(self, receipt: Receipt, ack: Ack) -> None:
        """Pass a receipt on under the id its submission was recorded with.

        One whose id is not known yet may have overtaken its submit_sm_resp:
        it is held, unacknowledged, until the id is known, or until every
        submit_sm sent before it came is answered (then it is for a message an
        earlier bind sent, and the recorder matches it as spelled). It is not
        held for long: an SMSC sends only so many deliver_sm unacknowledged.
        """
        assert self._receipts is not None
        keys = correlation_keys(receipt.carrier_ref)
        key = next((k for k in keys if k in self._carrier_ids), None)
        if key is not None:
            self._receipts(replace(receipt, carrier_ref=self._carrier_ids.pop(key)), ack)
        elif len(self._early) > MAX_EARLY_RECEIPTS:
            self._receipts(receipt, ack)
        else:
            sent = self._transmitter
            early = _Early(receipt, ack, time.monotonic(), sent, sent.last_sequence if sent else 0)
            for early_key in keys:
                self._early[early_key] = early
            self._early_order.append(early)
            self._hand_on_stale_early()

    def _hand_on_stale_early(self) -> None:
        """An early receipt that no unanswered submit_sm can explain (or that
        waited a response timeout) never had one here: it is for a message an
        earlier bind (another worker, before a restart) sent. It goes to the
        recorder as spelled, which matches it in the store."""
        stale_before = time.monotonic() - self._settings.response_timeout
        while self._early_order:
            early = self._early_order[0]
            if early.arrived >= stale_before and early.may_be_overtaken():
                return
            self._early_order.popleft()
            keys = correlation_keys(early.receipt.carrier_ref)
            if self._early.get(keys[0]) is not early:
                continue  # released when its id came
            for key in keys:
                self._early.pop(key, None)
            if self._receipts is not None:
                self._receipts(early.receipt, early.ack)

    def _register(self, ids: list[str], want_report: bool) -> str:
        """File a message's part ids under their canonical spelling, if a receipt
        was asked for; release the receipts that overtook them."""
        reported = ids[0]
        released: dict[int, _Early] = {}
        for carrier_id in ids:
            key = correlation_keys(carrier_id)[0]
            if self._early:
                early = self._early.pop(key, None)
                if early is not None:
                    released[id(early)] = early
                    continue  # its receipt is here already: nothing to wait for
            if want_report:
                self._carrier_ids[key] = reported
                if len(self._carrier_ids) > MAX_REMEMBERED_IDS:
                    self._carrier_ids.popitem(last=False)
        for early in released.values():  # held under each of its keys: once each
            for key in correlation_keys(early.receipt.carrier_ref):
                self._early.pop(key, None)
            if self._receipts is not None:
                self._receipts(replace(early.receipt, carrier_ref=reported), early.ack)
        return reported

    def _mo(self, body: ShortMessage) -> InboundMessage | None:
        part = read_inbound(body)
        whole = self._reassembler.add(body.source_addr, body.destination_addr, part)
        if whole is None:
            return None
        return InboundMessage(
            self.name,
            body.source_addr,
            body.destination_addr,
            whole.text,
            Encoding(whole.encoding),
            wall_clock_ms(),
        )


@dataclass(slots=True)
class _Early:
    """A receipt that came before its submit_sm_resp, and its unsent deliver_sm_resp."""

    receipt: Receipt
    ack: Ack
    arrived: float
    transmitter: Session | None  # sending submit_sm when it came, and how far it had got
    last_sequence: int

    def may_be_overtaken(self) -> bool:
        sent = self.transmitter
        return sent is not None and sent.unanswered_since(self.last_sequence)


class _Parts:
    """The parts of one message on the wire, what their responses said, and
    what to call once the message's outcome is committed."""

    __slots__ = ("ids", "message", "outcome", "settle", "unanswered")

    def __init__(self, message: OutboundMessage, count: int, settle: Ack) -> None:
        self.message = message
        self.settle = settle
        self.ids: list[str] = [""] * count
        self.unanswered = count
        self.outcome: SubmitOutcome | None = None

    def failed(self, outcome: RetryLater | Refused) -> None:
        """A retry outranks a refusal: the part that could not be sent may yet go."""
        if self.outcome is None or isinstance(outcome, RetryLater):
            self.outcome = outcome


def _status_word(command_status: int) -> str:
    """How a refusal is recorded as the carrier's status: ``ESME_RSUBMITFAIL``,
    or the code in hex when it is not one SMPP 3.4 names."""
    try:
        return f"ESME_{Status(command_status).name}"
    except ValueError:
        return f"0x{command_status:08X}"


def _network_error(tlvs: dict[int, bytes]) -> int | None:
    """The error code of a network_error_code TLV (network type, then two octets)."""
    raw = tlvs.get(Tag.NETWORK_ERROR_CODE)
    return int.from_bytes(raw[1:3], "big") if raw is not None and len(raw) == 3 else None
