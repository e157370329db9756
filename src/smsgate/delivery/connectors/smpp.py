"""An SMPP 3.4 client (ESME) connector.

One connector keeps one bind (transceiver) or two (transmitter + receiver) to
an SMSC. Submissions share a window of outstanding submit_sm: a semaphore
taken per PDU and released by its response, so at most ``window`` requests
are unanswered at any time, as SMSCs require. Responses are matched to
requests by sequence number in a dict, so a wide window costs nothing extra.

What can go wrong, and what it becomes:
- ESME_RTHROTTLED / ESME_RMSGQFUL: the message is asked again later, and the
  connector pauses its sends for a moment (the carrier is telling us to slow down);
- any other error status: the carrier refused the message for good;
- the connection drops with requests in flight: those messages are asked
  again later (the carrier may have taken some: at-least-once, bounded by the
  window), and the connector reconnects with backoff.

Receipts name the carrier's id in whatever spelling the SMSC likes (hex or
decimal, with or without leading zeros); every spelling of the ids this
connector was given maps back to the one it reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, unquote, urlsplit

from smsgate.core.encoding import Encoding
from smsgate.core.states import Reason, State
from smsgate.delivery.connectors.base import InboundSink, ReceiptSink
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
from smsgate.smpp.receipt_text import STAT_TO_STATE, id_variants, parse_receipt_text
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
_STATE_OF_MESSAGE_STATE: dict[int, tuple[State, Reason]] = {
    MessageState.DELIVERED: (State.DELIVERED, Reason.NONE),
    MessageState.EXPIRED: (State.EXPIRED, Reason.VALIDITY_EXPIRED),
    MessageState.DELETED: (State.FAILED, Reason.UNKNOWN),
    MessageState.UNDELIVERABLE: (State.UNDELIVERABLE, Reason.UNKNOWN),
    MessageState.UNKNOWN: (State.FAILED, Reason.UNKNOWN),
    MessageState.REJECTED: (State.REJECTED, Reason.CARRIER_REJECTED),
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
        self._waiting: dict[int, asyncio.Future[Pdu]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()

    async def open(self) -> None:
        reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(self._settings.host, self._settings.port),
            self._settings.response_timeout,
        )
        self._reader_task = asyncio.create_task(self._read(reader), name="smpp-reader")
        bind = Bind(self._settings.system_id, self._settings.password, self._settings.system_type)
        response = await self.request(_BIND_COMMANDS[self._mode], bind)
        if response.command_status != Status.ROK:
            await self.close()
            raise ConnectionRefusedError(f"bind refused with status 0x{response.command_status:X}")

    async def request(self, command: CommandId, body: Bind | ShortMessage | None = None) -> Pdu:
        if self._writer is None or self.closed.is_set():
            raise NotBound("session is closed")
        sequence = next(self._sequences) & 0x7FFFFFFF
        future: asyncio.Future[Pdu] = asyncio.get_running_loop().create_future()
        self._waiting[sequence] = future
        self._writer.write(encode(Pdu(command, sequence, 0, body)))
        try:
            return await asyncio.wait_for(future, self._settings.response_timeout)
        finally:
            self._waiting.pop(sequence, None)

    def respond(self, request: Pdu, body: MessageIdResp | None = None) -> None:
        if self._writer is not None and not self.closed.is_set():
            response = Pdu(request.command_id | 0x80000000, request.sequence, 0, body)
            self._writer.write(encode(response))

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

    def _dispatch(self, pdu: Pdu) -> None:
        if pdu.command_id & 0x80000000:
            future = self._waiting.get(pdu.sequence)
            if future is not None and not future.done():
                future.set_result(pdu)
            return
        if pdu.command_id == CommandId.DELIVER_SM and isinstance(pdu.body, ShortMessage):
            self._on_deliver(self, pdu)
        elif pdu.command_id == CommandId.ENQUIRE_LINK:
            self.respond(pdu)
        elif pdu.command_id == CommandId.UNBIND:
            self.respond(pdu)
            self._close_transport()

    def _fail_waiting(self, error: Exception) -> None:
        for future in self._waiting.values():
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
        self._close_transport()
        if self._reader_task is not None:
            with contextlib.suppress(Exception):
                await self._reader_task
        self.closed.set()


class SmppConnector:
    def __init__(self, settings: SmppSettings) -> None:
        self.name = settings.name
        self._settings = settings
        self._window = asyncio.Semaphore(settings.window)
        self._sessions: list[Session] = []
        self._transmitter: Session | None = None
        self._bound = asyncio.Event()
        self._stopping = asyncio.Event()
        self._maintainer: asyncio.Task[None] | None = None
        self._receipts: ReceiptSink | None = None
        self._inbound: InboundSink | None = None
        self._references = itertools.count(1)
        # Every spelling of a recent id -> the id reported to the store; bounded,
        # since messages sent without a report request never hear back.
        self._carrier_ids: OrderedDict[str, str] = OrderedDict()
        self._early: dict[str, Receipt] = {}  # receipts that overtook their submit_sm_resp
        self._reassembler = Reassembler()
        self._paused_until = 0.0
        self._next_send = 0.0

    @property
    def is_up(self) -> bool:
        return self._bound.is_set()

    # ---------------------------------------------------------------- lifecycle

    async def start(self, receipts: ReceiptSink, inbound: InboundSink) -> None:
        self._receipts, self._inbound = receipts, inbound
        self._maintainer = asyncio.create_task(self._maintain(), name=f"smpp-{self.name}")

    async def stop(self) -> None:
        """Unbind cleanly; in-flight requests have had their chance by now."""
        self._stopping.set()
        if self._maintainer is not None:
            self._maintainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintainer
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
                log.warning("smpp %s: %s; reconnecting in %.1fs", self.name, exc, delay)
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
        """enquire_link on a timer; returns when a session closes."""
        closed = [asyncio.create_task(s.closed.wait()) for s in self._sessions]
        try:
            while True:
                done, _ = await asyncio.wait(closed, timeout=self._settings.enquire_link_seconds)
                if done:
                    raise NotBound("session closed")
                for session in self._sessions:
                    await session.request(CommandId.ENQUIRE_LINK)
        finally:
            for task in closed:
                task.cancel()

    # ---------------------------------------------------------------- sending

    async def submit(self, messages: Sequence[OutboundMessage]) -> list[SubmitOutcome]:
        if not self._bound.is_set():
            raise NotBound(f"smpp {self.name} is not bound")
        return list(await asyncio.gather(*(self._submit_one(m) for m in messages)))

    async def _submit_one(self, message: OutboundMessage) -> SubmitOutcome:
        bodies = submit_bodies(message, reference=next(self._references), sar=self._settings.sar)
        ids: list[str] = []
        for body in bodies:
            try:
                response = await self._send(body)
            except (NotBound, TimeoutError, ConnectionError) as exc:
                return RetryLater(message.id, self._retry_ms(message), f"connection: {exc}")
            status = response.command_status
            if status in _SLOW_DOWN:
                self._paused_until = time.monotonic() + self._settings.slow_down_seconds
                return RetryLater(
                    message.id, int(self._settings.slow_down_seconds * 1000), Status(status).name
                )
            if status != Status.ROK:
                return Refused(
                    message.id,
                    State.REJECTED,
                    Reason.CARRIER_REJECTED,
                    f"submit_sm refused with status 0x{status:X}",
                )
            assert isinstance(response.body, MessageIdResp)
            ids.append(response.body.message_id)
        return Submitted(message.id, self.name, self._register(ids))

    async def _send(self, body: ShortMessage) -> Pdu:
        async with self._window:
            await self._pace()
            transmitter = self._transmitter
            if transmitter is None:
                raise NotBound("not bound")
            return await transmitter.request(CommandId.SUBMIT_SM, body)

    async def _pace(self) -> None:
        """Hold to the configured rate and to any slow-down the SMSC asked for."""
        now = time.monotonic()
        wait = max(self._paused_until - now, 0.0)
        rate = self._settings.max_per_second
        if rate > 0:
            slot = max(self._next_send, now)
            self._next_send = slot + 1.0 / rate
            wait = max(wait, slot - now)
        if wait > 0:
            await asyncio.sleep(wait)

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
                self._receipts(receipt, ack)
                return
        else:
            message = self._mo(body)
            if message is not None and self._inbound is not None:
                self._inbound(message, ack)
                return
        ack()  # nothing to store: not final, held in memory, or a part still missing

    def _receipt(self, body: ShortMessage) -> Receipt | None:
        parsed = parse_receipt_text(body.short_message.decode("latin-1"))
        if Tag.RECEIPTED_MESSAGE_ID in body.tlvs:
            raw_id = read_cstring_tlv(body.tlvs[Tag.RECEIPTED_MESSAGE_ID])
        elif parsed is not None:
            raw_id = parsed.message_id
        else:
            log.warning("smpp %s: receipt without a message id", self.name)
            return None
        stat = parsed.stat.upper() if parsed is not None else ""
        outcome = STAT_TO_STATE.get(stat)
        if Tag.MESSAGE_STATE in body.tlvs:
            message_state = read_int_tlv(body.tlvs[Tag.MESSAGE_STATE])
            outcome = _STATE_OF_MESSAGE_STATE.get(message_state, outcome)
        if outcome is None:
            return None  # not final (ENROUTE, ACCEPTD): nothing to record
        state, reason = outcome
        reported = next(
            (self._carrier_ids[v] for v in id_variants(raw_id) if v in self._carrier_ids), None
        )
        receipt = Receipt(self.name, reported or raw_id, state, reason, stat, wall_clock_ms())
        if reported is None:
            # Overtook its submit_sm_resp: hold it until the id is known, or
            # (once too many are held) let the recorder match it as spelled.
            if len(self._early) > MAX_EARLY_RECEIPTS:
                return receipt
            for variant in id_variants(raw_id):
                self._early[variant] = receipt
            return None
        return receipt

    def _register(self, ids: list[str]) -> str:
        """Remember every spelling of a message's part ids; release early receipts."""
        reported = ids[0]
        released: dict[int, Receipt] = {}
        for carrier_id in ids:
            for variant in id_variants(carrier_id):
                self._carrier_ids[variant] = reported
                if len(self._carrier_ids) > MAX_REMEMBERED_IDS:
                    self._carrier_ids.popitem(last=False)
                early = self._early.pop(variant, None)
                if early is not None:
                    released[id(early)] = early
        for early in released.values():  # held under each of its spellings: once each
            for variant in id_variants(early.carrier_ref):
                self._early.pop(variant, None)
            if self._receipts is not None:
                self._receipts(replace(early, carrier_ref=reported))
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
