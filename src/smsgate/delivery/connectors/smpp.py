"""An SMPP 3.4 client (ESME) connector.

One connector keeps one bind (transceiver) or two (transmitter + receiver) to
an SMSC. Three bounds shape its sends:

- the window: at most ``window`` submit_sm unanswered at the SMSC, as SMSCs
  require (fewer while the SMSC is throttling us);
- the uncommitted bound: at most ``uncommitted`` messages whose outcome the
  store has not committed yet. A killed worker can have sent only those
  without the store knowing, so only those can reach the SMSC twice. It is
  separate from the window: tying the two made delivery run at window ÷
  commit latency;
- the pace: ``delivery.throttle.AdaptiveRate`` learns the SMSC's rate from
  ESME_RTHROTTLED / ESME_RMSGQFUL, and a refused part is sent again by the
  connector itself, at that pace, instead of the whole message going back to
  the queue (which sent its earlier parts twice).

A message is sent only while its claim is live (``delivery.claims``).

Receipts are correlated by declared id format, never guessed
(``core.carrier_ids``): the submit_sm_resp id, the receipt text's ``id:``
and the receipted_message_id TLV are each read the one way the settings
declare. A receipt goes to the recorder as soon as it is read, which writes
it in the same transaction as its part's outcome or a later one; the store
matches it against the recorded parts or keeps it as unmatched until its
part is recorded. One for a part answered here but not committed yet names
that message, so a reused id cannot mislead the match. One that came before
the submit_sm_resp it names waits, unacknowledged, until the submit_sm sent
before it are answered, so that it can name its message too. The SMSC's
deliver_sm is acknowledged only once the receipt is committed.

The hot path is shaped for tens of thousands of PDUs a second on one core: a
response completes its part through a callback rather than a task per
message, the PDUs written in one pass of the event loop leave in one send,
and one periodic sweep times out unanswered requests instead of a timer per
request.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from smsgate.core.carrier_ids import carrier_key, handsets_match
from smsgate.core.encoding import Encoding
from smsgate.core.states import Reason, State
from smsgate.delivery.connectors.base import (
    Ack,
    AckCounter,
    ClaimCheck,
    InboundSink,
    ReceiptSink,
    SubmissionSink,
    claim_lapsed,
)
from smsgate.delivery.connectors.smpp_settings import SmppSettings
from smsgate.delivery.throttle import AdaptiveRate, Window
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
    numeric_field,
    parse_receipt_text,
)
from smsgate.smpp.wire import Reassembler, read_inbound, submit_bodies
from smsgate.store.records import (
    CarrierPart,
    ConnectionHealth,
    InboundMessage,
    OutboundMessage,
    Receipt,
    Refused,
    RetryLater,
    SubmitOutcome,
    Submitted,
    TakenParts,
)
from smsgate.store.repo import wall_clock_ms

__all__ = ["NotBound", "SmppConnector", "SmppSettings", "status_word"]

log = logging.getLogger(__name__)

_BIND_COMMANDS = {
    "transceiver": CommandId.BIND_TRANSCEIVER,
    "transmitter": CommandId.BIND_TRANSMITTER,
    "receiver": CommandId.BIND_RECEIVER,
}
MAX_EARLY_RECEIPTS = 10_000
MAX_RESENDS = 50  # per part, of sends the SMSC refused for its rate
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


def _first(delay: float, settings: SmppSettings) -> int:
    """WARNING for the first failure in a row, DEBUG for the retries after it."""
    return logging.WARNING if delay == settings.reconnect_min_seconds else logging.DEBUG


class BindRefused(ConnectionRefusedError):
    """The SMSC answered the bind with an error status (a wrong password…)."""


def status_word(command_status: int) -> str:
    """A command_status as SMPP names it (``ESME_RINVPASWD``), or in hex when
    SMPP 3.4 names no such status."""
    try:
        return f"ESME_{Status(command_status).name}"
    except ValueError:
        return f"0x{command_status:08X}"


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
            raise BindRefused(f"bind_{self._mode} refused: {status_word(response.command_status)}")

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
                    self._receive(frame)
        except (ConnectionError, PduError) as exc:
            log.warning("smpp %s: connection lost: %s", self._settings.name, exc)
        finally:
            self._fail_waiting(NotBound("connection lost"))
            self.closed.set()

    def _receive(self, frame: bytes) -> None:
        """One PDU; an operation this ESME does not support is answered with
        generic_nack and the session goes on (the stream is still in step)."""
        try:
            pdu = decode(frame)
        except PduError as exc:
            if exc.command_status != Status.RINVCMDID:
                raise
            log.info("smpp %s: unsupported PDU from the SMSC: %s", self._settings.name, exc)
            self._write(encode(Pdu(CommandId.GENERIC_NACK, exc.sequence or 0, Status.RINVCMDID)))
            return
        self._dispatch(pdu)

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
        self.receipt_timeout_ms = settings.receipt_timeout_ms
        self._settings = settings
        self._window = Window(settings.window)
        self._uncommitted = Window(settings.uncommitted)
        self.rate = AdaptiveRate(settings.max_per_second)
        self._sessions: list[Session] = []
        self._transmitter: Session | None = None
        self._bound = asyncio.Event()
        self._stopping = asyncio.Event()
        self._maintainer: asyncio.Task[None] | None = None
        self._receipts: ReceiptSink | None = None
        self._inbound: InboundSink | None = None
        self._references = itertools.count(1)
        # Parts whose submit_sm_resp came but whose outcome is not committed
        # yet, by key, newest last (an SMSC that reuses ids can give one key to
        # two of them): a receipt naming one is told its message. Bounded by the
        # uncommitted bound; an entry leaves at the commit.
        self._uncommitted_parts: dict[str, list[_Awaited]] = {}
        # Receipts that came before the submit_sm_resp they may name, by key
        # and in arrival order.
        self._early: dict[str, _Early] = {}
        self._early_order: deque[_Early] = deque()
        # Sequence numbers of submit_sm sent on the current bind whose answers
        # are not processed yet, oldest first.
        self._unprocessed: dict[int, None] = {}
        self._reassembler = Reassembler()
        self._state, self._since = "stopped", wall_clock_ms()
        self._last_error: str | None = None
        self._error_at: int | None = None
        self._sent = self._refused = 0

    @property
    def is_up(self) -> bool:
        return self._bound.is_set()

    def health(self) -> ConnectionHealth:
        return ConnectionHealth(
            self.name,
            self._state,
            self._since,
            self._last_error,
            self._error_at,
            self._window.limit,
            self._window.in_use,
            self._sent,
            self._refused,
            self.rate.rate if self.rate.limited else 0.0,
        )

    def _enter(self, state: str) -> None:
        if state != self._state:
            self._state, self._since = state, wall_clock_ms()

    def _failure(self, error: BaseException) -> None:
        self._last_error, self._error_at = str(error) or type(error).__name__, wall_clock_ms()
        self._enter("failing")

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
        self._enter("stopped")

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
            if self._state != "failing":
                self._enter("binding")
            try:
                await self._bind()
                delay = self._settings.reconnect_min_seconds
                await self._keep_alive()
            except BindRefused as exc:
                self._failure(exc)
                log.log(
                    _first(delay, self._settings),
                    "smpp %s: %s; binding again in %.1fs",
                    self.name,
                    exc,
                    delay,
                )
            except (OSError, TimeoutError, ConnectionError) as exc:
                self._failure(exc)
                log.log(
                    _first(delay, self._settings),
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
        self._unprocessed = {}  # a new bind numbers its requests afresh
        self._enter("bound")
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

    async def submit(
        self, messages: Sequence[OutboundMessage], record: SubmissionSink, claims: ClaimCheck
    ) -> None:
        if not self._bound.is_set():
            raise NotBound(f"smpp {self.name} is not bound")
        batch = _Batch(record, claims)
        for message in messages:
            if not self._uncommitted.take():
                await self._uncommitted.acquire()
            settle = functools.partial(self._settle, batch.committed.owe())
            if not claims.live(message.id):
                record(claim_lapsed(message.id), functools.partial(settle, None))
                continue
            try:
                bodies = submit_bodies(
                    message, reference=next(self._references), sar=self._settings.sar
                )
            except ValueError as exc:  # this message cannot be encoded: it alone fails
                refusal = Refused(
                    message.id, State.REJECTED, Reason.UNROUTABLE, f"cannot be sent: {exc}"
                )
                record(refusal, functools.partial(settle, None))
                continue
            parts = _Parts(message, bodies, settle)
            batch.open_parts += len(bodies)
            for number in range(len(bodies)):
                if batch.resends:
                    await self._resend_refused(batch)
                await self._send_part(batch, parts, number)
        while batch.open_parts:
            if batch.resends:
                await self._resend_refused(batch)
            else:
                batch.changed.clear()
                await batch.changed.wait()
        await batch.committed.all_paid()

    async def _resend_refused(self, batch: _Batch) -> None:
        """Send again the parts the SMSC refused for its rate, oldest first."""
        while batch.resends:
            parts, number = batch.resends.popleft()
            if batch.claims.live(parts.message.id):
                await self._send_part(batch, parts, number)
            else:
                self._part_answered(batch, parts, number, claim_lapsed(parts.message.id))

    async def _send_part(self, batch: _Batch, parts: _Parts, number: int) -> None:
        rate, window = self.rate, self._window
        if rate.limited:
            window.limit = rate.in_flight(self._settings.window)
        if not window.take():
            await window.acquire()
        delay = rate.delay()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            if self._transmitter is None:
                raise NotBound("not bound")
            answer = self._transmitter.send(CommandId.SUBMIT_SM, parts.bodies[number])
        except NotBound as exc:
            self._window.release()
            self._part_answered(batch, parts, number, exc)
            return
        sequence = self._transmitter.last_sequence
        self._unprocessed[sequence] = None
        answer.add_done_callback(
            functools.partial(self._on_submit_sm_resp, batch, parts, number, sequence)
        )

    def _settle(self, paid: Ack, parts: _Parts | None) -> None:
        """A message's outcome is committed: its uncommitted slot is free, and
        the store can tell its parts apart from now on."""
        self._uncommitted.release()
        paid()
        if parts is None:
            return
        for key in parts.keys:
            filed = self._uncommitted_parts.get(key) if key else None
            if not filed:
                continue
            rest = [a for a in filed if a.message_id != parts.message.id]
            if rest:
                self._uncommitted_parts[key] = rest
            else:
                del self._uncommitted_parts[key]

    def _on_submit_sm_resp(
        self,
        batch: _Batch,
        parts: _Parts,
        number: int,
        sequence: int,
        answer: asyncio.Future[Pdu],
    ) -> None:
        self._window.release()
        if answer.cancelled():
            self._part_answered(batch, parts, number, NotBound("cancelled"))
        else:
            self._part_answered(batch, parts, number, answer.exception() or answer.result())
        # Only now is the id it carried filed: until here, a receipt that came
        # before it could still be for it.
        self._unprocessed.pop(sequence, None)
        if self._early_order:
            self._hand_on_stale_early()  # this response may have been the last one owed

    def _part_answered(
        self,
        batch: _Batch,
        parts: _Parts,
        number: int,
        answer: Pdu | BaseException | RetryLater,
    ) -> None:
        """Note one part's fate; once every part has one, the message's outcome."""
        message = parts.message
        if isinstance(answer, RetryLater):
            parts.failed(answer)
        elif isinstance(answer, BaseException):
            parts.failed(RetryLater(message.id, _retry_ms(message), f"connection: {answer}"))
        elif answer.command_status in _SLOW_DOWN:
            self._refused += 1
            self.rate.refused()
            parts.resends += 1
            if parts.resends <= MAX_RESENDS:
                batch.resends.append((parts, number))
                batch.changed.set()
                return
            parts.failed(RetryLater(message.id, 1_000, status_word(answer.command_status), False))
        elif answer.command_status != Status.ROK:
            self._refused += 1
            refusal = status_word(answer.command_status)
            parts.failed(Refused(message.id, State.REJECTED, Reason.CARRIER_REJECTED, refusal))
        else:
            assert isinstance(answer.body, MessageIdResp)
            self._sent += 1
            self.rate.accepted()
            self._taken(parts, number, answer.body.message_id)
        parts.unanswered -= 1
        batch.open_parts -= 1
        if batch.open_parts == 0:
            batch.changed.set()
        if parts.unanswered == 0:
            batch.record(self._outcome(parts), functools.partial(parts.settle, parts))

    def _taken(self, parts: _Parts, number: int, carrier_ref: str) -> None:
        """The SMSC took a part: file its id until the outcome is committed, and
        pick up a receipt that came before this answer."""
        key = carrier_key(carrier_ref, self._settings.submit_id)
        parts.refs[number], parts.keys[number] = carrier_ref, key
        if not parts.message.want_report:
            return
        awaited = _Awaited(parts.message.id, parts.message.recipient)
        self._uncommitted_parts.setdefault(key, []).append(awaited)
        if not self._early:
            return
        early = self._early.pop(key, None)
        if early is not None and handsets_match(early.receipt.handset, awaited.recipient):
            early.claimed = True
            # The outcome goes to the recorder in this same callback, so both
            # are in one transaction, the outcome first.
            self._hand_over(replace(early.receipt, message_id=awaited.message_id), early.ack)
        elif early is not None:
            self._early[key] = early  # for some other message

    def _outcome(self, parts: _Parts) -> SubmitOutcome:
        if parts.outcome is None and len(parts.refs) == 1:  # the common case
            return Submitted(
                parts.message.id, self.name, (CarrierPart(1, parts.refs[0], parts.keys[0]),)
            )
        taken = tuple(
            CarrierPart(number + 1, ref, key)
            for number, (ref, key) in enumerate(zip(parts.refs, parts.keys, strict=True))
            if key
        )
        if parts.outcome is None:
            return Submitted(parts.message.id, self.name, taken)
        if not taken:
            return parts.outcome
        return replace(parts.outcome, taken=TakenParts(self.name, taken, len(parts.bodies)))

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
        (the cheap, common case), else from its text; its id read as declared."""
        tlvs = body.tlvs
        text = body.short_message.decode("latin-1")
        raw_id: str | None = None
        key = ""
        stat = ""
        if Tag.RECEIPTED_MESSAGE_ID in tlvs:
            raw_id = read_cstring_tlv(tlvs[Tag.RECEIPTED_MESSAGE_ID])
            key = carrier_key(raw_id, self._settings.tlv_id_format)
        if Tag.MESSAGE_STATE in tlvs:
            stat = _STAT_OF_MESSAGE_STATE.get(read_int_tlv(tlvs[Tag.MESSAGE_STATE]), "")
        error = _network_error(tlvs)
        if raw_id is None or not stat or (stat == "UNDELIV" and error is None):
            parsed = parse_receipt_text(text)
            if parsed is not None:
                if raw_id is None:
                    raw_id = parsed.message_id
                    key = carrier_key(raw_id, self._settings.text_id_format)
                stat = stat or parsed.stat
                error = numeric_field(parsed.err) if error is None else error
        if raw_id is None:
            log.warning("smpp %s: a receipt without a message id: %r", self.name, text[:100])
            return None
        outcome = STAT_TO_STATE.get(stat)
        if outcome is None:
            return None  # not final (ENROUTE, ACCEPTD): nothing to record
        state, reason = outcome
        if state is State.UNDELIVERABLE and error is not None:
            reason = REASON_OF_MAP_ERROR.get(error, reason)
        now = wall_clock_ms()
        return Receipt(
            self.name,
            key,
            state,
            reason,
            stat,
            now,
            match_since=now - self._settings.validity_ms,
            carrier_ref=raw_id,
            handset=body.source_addr,
            text=text,
            message_id=self._uncommitted_message(key, body.source_addr),
        )

    def _uncommitted_message(self, key: str, handset: str) -> int | None:
        """The message of the newest part filed under ``key`` whose outcome is
        not committed yet, sent to ``handset``: what a receipt names."""
        for awaited in reversed(self._uncommitted_parts.get(key, ())):
            if handsets_match(handset, awaited.recipient):
                return awaited.message_id
        return None

    def _take_receipt(self, receipt: Receipt, ack: Ack) -> None:
        """Hand a receipt on to the recorder, naming its message when that is
        known here (a part answered but not committed yet).

        A receipt for no part known here may have overtaken its
        submit_sm_resp: it waits, unacknowledged, until every submit_sm sent
        before it came is answered. Then (or straight away) it goes on, and
        the store matches it against the recorded parts or keeps it.
        """
        key = receipt.carrier_key
        if receipt.message_id is not None:
            self._hand_over(receipt, ack)
            return
        last_sent = next(reversed(self._unprocessed), None)
        if len(self._early) >= MAX_EARLY_RECEIPTS or last_sent is None or key in self._early:
            self._hand_over(receipt, ack)  # no submit_sm it could have overtaken
            return
        early = _Early(receipt, ack, time.monotonic(), self._unprocessed, last_sent)
        self._early[key] = early
        self._early_order.append(early)

    def _hand_on_stale_early(self) -> None:
        """An early receipt that no unanswered submit_sm can explain (or that
        waited a response timeout) names no part this bind sent: it goes to
        the store, which knows the parts earlier binds sent."""
        stale_before = time.monotonic() - self._settings.response_timeout
        while self._early_order:
            early = self._early_order[0]
            if early.arrived >= stale_before and early.may_be_overtaken():
                return
            self._early_order.popleft()
            if early.claimed:
                continue  # its submit_sm_resp came: it waits for that commit instead
            if self._early.get(early.receipt.carrier_key) is early:
                del self._early[early.receipt.carrier_key]
            self._hand_over(early.receipt, early.ack)

    def _hand_over(self, receipt: Receipt, ack: Ack) -> None:
        if self._receipts is not None:
            self._receipts(receipt, ack)

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


@dataclass(frozen=True, slots=True)
class _Awaited:
    """A part the SMSC took whose outcome is not committed yet."""

    message_id: int
    recipient: str


@dataclass(slots=True)
class _Early:
    """A receipt that came before its submit_sm_resp, and its unsent deliver_sm_resp."""

    receipt: Receipt
    ack: Ack
    arrived: float
    # The bind's submit_sm whose answers are not processed yet, and the last
    # of them sent when the receipt came: it can only be for one of those.
    unprocessed: dict[int, None]
    last_sequence: int
    claimed: bool = False  # its part's answer came; it now waits for that commit

    def may_be_overtaken(self) -> bool:
        oldest = next(iter(self.unprocessed), None)
        return oldest is not None and oldest <= self.last_sequence


class _Batch:
    """One ``submit`` call: where outcomes go, the parts refused for the
    SMSC's rate waiting to be sent again, and the commits still owed."""

    __slots__ = ("changed", "claims", "committed", "open_parts", "record", "resends")

    def __init__(self, record: SubmissionSink, claims: ClaimCheck) -> None:
        self.record = record
        self.claims = claims
        self.committed = AckCounter()
        self.resends: deque[tuple[_Parts, int]] = deque()
        self.open_parts = 0  # sent or to be sent again, without a final answer yet
        self.changed = asyncio.Event()


class _Parts:
    """The parts of one message on the wire, what their responses said, and
    what to call once the message's outcome is committed."""

    __slots__ = ("bodies", "keys", "message", "outcome", "refs", "resends", "settle", "unanswered")

    def __init__(
        self,
        message: OutboundMessage,
        bodies: list[ShortMessage],
        settle: Callable[[_Parts | None], None],
    ) -> None:
        self.message = message
        self.bodies = bodies
        self.settle = settle
        self.refs = [""] * len(bodies)
        self.keys = [""] * len(bodies)
        self.unanswered = len(bodies)
        self.resends = 0
        self.outcome: RetryLater | Refused | None = None

    def failed(self, outcome: RetryLater | Refused) -> None:
        """A retry outranks a refusal: the part that could not be sent may yet go."""
        if self.outcome is None or isinstance(outcome, RetryLater):
            self.outcome = outcome


def _retry_ms(message: OutboundMessage) -> int:
    return int(min(2 ** max(message.attempts - 1, 0), 60) * 1000)


def _network_error(tlvs: dict[int, bytes]) -> int | None:
    """The error code of a network_error_code TLV (network type, then two octets)."""
    raw = tlvs.get(Tag.NETWORK_ERROR_CODE)
    return int.from_bytes(raw[1:3], "big") if raw is not None and len(raw) == 3 else None
