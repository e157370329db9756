"""An SMSC that speaks SMPP 3.4 on a local socket, for developing and testing ESMEs.

Carriers' test SMSCs are shared, rate-limited and slow to reset; this one runs
in-process (tests) or as ``smsgate smsc-sim`` (developers) and is
deterministic: the outcome of each message is chosen by the sandbox rules on
its destination number, exactly as the built-in sandbox carrier chooses it, so
the same numbers exercise the same paths with or without SMPP in between.

It also misbehaves on request in the ways real SMSCs do (throttling, full
queues, receipts that spell the message id differently from submit_sm_resp,
dropped connections, slow responses), because those are the paths an ESME's
error handling has to be tested against.

It is built on asyncio protocols rather than streams: each read is split into
as many PDUs as it holds and every response to that read leaves in one write,
so one connection sustains tens of thousands of submit_sm per second and the
simulator is never the bottleneck of a load test.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from smsgate.core.encoding import Encoding, encode_gsm7
from smsgate.core.sandbox_rules import DEFAULT_SANDBOX_RULES, SandboxRule, rule_for
from smsgate.core.states import State
from smsgate.smpp.customer_pdus import RECEIPT_STAT, addressed, receipt_tlvs
from smsgate.smpp.endpoint import PduEndpoint
from smsgate.smpp.pdu import (
    ESM_DELIVERY_RECEIPT,
    Bind,
    BindResp,
    CommandId,
    MessageIdResp,
    MessageState,
    Pdu,
    ShortMessage,
    Status,
    Tag,
    encode,
)
from smsgate.smpp.receipt_text import MAP_ERROR_OF_REASON, format_receipt_text
from smsgate.smpp.wire import read_inbound

log = logging.getLogger(__name__)

SMSC_SYSTEM_ID = "smsc-sim"
"""The system_id every successful bind_*_resp carries."""

BindMode = Literal["transmitter", "receiver", "transceiver"]
MessageIdStyle = Literal[
    "hex",
    "decimal",
    "sequential_decimal",
    "sequential_hex",
    "zero_padded",
    "upper_hex",
    "uuid",
]
ReceiptIdStyle = Literal["same", "decimal", "hex", "leading_zeros", "upper", "lower"]
MESSAGE_ID_STYLES: tuple[str, ...] = MessageIdStyle.__args__  # type: ignore[attr-defined]
RECEIPT_ID_STYLES: tuple[str, ...] = ReceiptIdStyle.__args__  # type: ignore[attr-defined]

_MAX_SHORT_MESSAGE = 254  # longer texts travel in the message_payload TLV
_UNBIND_TIMEOUT = 1.0

_BIND_MODES: dict[int, BindMode] = {
    CommandId.BIND_TRANSMITTER: "transmitter",
    CommandId.BIND_RECEIVER: "receiver",
    CommandId.BIND_TRANSCEIVER: "transceiver",
}
_SENDS: frozenset[str] = frozenset(("transmitter", "transceiver"))
_RECEIVES: frozenset[str] = frozenset(("receiver", "transceiver"))


@dataclass
class SimulatorConfig:
    """What the simulator accepts and how it (mis)behaves.

    ``rules`` use the sandbox carrier's syntax and outcomes (see
    ``smsgate.core.sandbox_rules``): a ``rejected`` rule refuses the submit_sm
    itself with ESME_RSUBMITFAIL, a ``replies`` rule makes the handset answer
    with an MO after the receipt. ``throttle_every``/``queue_full_every`` refuse
    every Nth submit_sm with ESME_RTHROTTLED/ESME_RMSGQFUL (0: never).
    ``message_id_style`` is how submit_sm_resp ids look: "hex"/"decimal"
    count up from a clock-seeded number (so a restarted simulator never reuses
    one); "sequential_decimal" and "sequential_hex" count 1, 2, 3… as many
    SMSCs do, "zero_padded" writes that count as ten decimal digits,
    "upper_hex" in upper-case hex, and "uuid" gives random UUIDs.
    ``restart_ids_after`` makes the count start again at 1 after that many ids
    (an SMSC restarting its counter). ``receipt_id_style`` spells the id in
    receipts differently from submit_sm_resp ("decimal": the id read as hex,
    written in decimal; "hex": read as decimal, written in hex;
    "leading_zeros": zero-padded; "upper"/"lower": case changed), as real
    SMSCs do. ``receipt_before_resp`` sends each receipt before the
    submit_sm_resp it names. ``max_per_second`` refuses submit_sm beyond that
    rate (a token bucket holding one second's worth) with ESME_RTHROTTLED.
    """

    host: str = "127.0.0.1"
    port: int = 2775  # 0: any free port; SmscSimulator.port tells which
    system_id: str = "smsgate"
    password: str = "secret"
    receipt_delay_ms: float = 200
    rules: tuple[SandboxRule, ...] = DEFAULT_SANDBOX_RULES
    throttle_every: int = 0
    queue_full_every: int = 0
    message_id_style: MessageIdStyle = "hex"
    receipt_id_style: ReceiptIdStyle = "same"
    receipt_tlvs: bool = True  # receipted_message_id and message_state TLVs too
    respond_delay_ms: float = 0
    receipt_before_resp: bool = False
    restart_ids_after: int = 0
    max_per_second: float = 0

    def __post_init__(self) -> None:
        if self.message_id_style not in MESSAGE_ID_STYLES:
            raise ValueError(
                f"message_id_style must be one of {', '.join(MESSAGE_ID_STYLES)},"
                f" not {self.message_id_style!r}"
            )
        if self.receipt_id_style not in RECEIPT_ID_STYLES:
            raise ValueError(
                f"receipt_id_style must be one of {', '.join(RECEIPT_ID_STYLES)},"
                f" not {self.receipt_id_style!r}"
            )
        for name in (
            "throttle_every",
            "queue_full_every",
            "receipt_delay_ms",
            "respond_delay_ms",
            "restart_ids_after",
            "max_per_second",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        # A bind carries at most 15 octets of system_id and 8 of password: longer
        # credentials could never be matched, so say so now rather than at bind.
        for name, limit in (("system_id", 15), ("password", 8)):
            value: str = getattr(self, name)
            if not value.isascii() or len(value) > limit:
                raise ValueError(f"{name} must be at most {limit} ASCII characters")


@dataclass(frozen=True, slots=True)
class SubmittedMessage:
    """One submit_sm as the simulator saw it, refused ones included.

    ``message_id`` is the id given in submit_sm_resp, "" when ``status`` refused it.
    """

    system_id: str
    sequence: int
    source: str
    destination: str
    data_coding: int
    esm_class: int
    registered_delivery: int
    short_message: bytes
    tlvs: Mapping[int, bytes]
    message_id: str
    status: int
    received_at: float = 0.0  # on the loop's clock


@dataclass(slots=True)
class _Outgoing:
    """A deliver_sm (receipt or MO) waiting for its time or for a receiver bind."""

    system_id: str
    origin: _Session | None  # the submitting session, preferred if it is a transceiver
    body: ShortMessage
    is_receipt: bool


class SmscSimulator:
    """The SMSC: a listening socket, its sessions, and what they were sent.

    ``submitted``, ``bound`` and the counters are there for tests to assert on;
    ``wait_until`` waits for any of them without polling in a sleep loop.
    """

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.port = 0
        self.submitted: list[SubmittedMessage] = []
        self.bound: list[str] = []
        self.deliver_sm_resps = 0
        self.receipts_sent = 0
        self.mo_sent = 0
        self._server: asyncio.Server | None = None
        self._sessions: dict[_Session, None] = {}  # an ordered set
        self._submit_count = 0
        # Seeded from the clock so a restarted simulator never reuses an id that
        # a gateway may still hold from its previous run (unless a sequential
        # style asks for exactly that).
        self._seed = time.time_ns() // 1000
        self._issued = 0
        self._bucket = _TokenBucket(self.config.max_per_second)
        self._scheduled: list[tuple[float, int, _Outgoing]] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._delayed: set[asyncio.TimerHandle] = set()
        self._held: dict[str, deque[_Outgoing]] = {}
        self._changed = asyncio.Event()

    # ------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Session(self), self.config.host, self.config.port, backlog=128
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.debug("smsc-sim listening on %s:%d", self.config.host, self.port)

    async def stop(self) -> None:
        """Unbind every bound session (waiting briefly for unbind_resp) and close."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for handle in self._delayed:
            handle.cancel()
        self._delayed.clear()
        self._scheduled.clear()
        await asyncio.gather(*(s.unbind(_UNBIND_TIMEOUT) for s in list(self._sessions)))
        await server.wait_closed()

    async def drop_connections(self) -> None:
        """Close every connection abruptly (no unbind), as a crashing SMSC or a
        broken network would. Receipts and MO not yet sent, or sent but not
        acknowledged, stay queued for the next receiver bind."""
        sessions = list(self._sessions)
        for session in sessions:
            session.abort()
        if sessions:
            await asyncio.wait([s.closed for s in sessions], timeout=5)

    # ---------------------------------------------------------- test helpers

    async def wait_until(
        self,
        predicate: Callable[[], bool],
        timeout: float,  # noqa: ASYNC109 - a plain deadline reads best in a test
        what: str = "the condition",
    ) -> None:
        """Return once ``predicate()`` holds; it is re-checked on every change
        the simulator sees (PDU handled, bind, connection lost)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"smsc-sim: timed out after {timeout:g}s waiting for {what}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def wait_for_submitted(
        self,
        n: int,
        timeout: float = 5.0,  # noqa: ASYNC109 - as wait_until
    ) -> list[SubmittedMessage]:
        """The first ``n`` submit_sm received; TimeoutError if fewer arrive in time."""
        await self.wait_until(lambda: len(self.submitted) >= n, timeout, f"{n} submit_sm")
        return self.submitted[:n]

    @property
    def held(self) -> int:
        """deliver_sm (receipts and MO) kept back because no receiver is bound."""
        return sum(len(queue) for queue in self._held.values())

    @property
    def unacknowledged(self) -> int:
        """deliver_sm not acknowledged yet: held for a receiver, or sent and
        awaiting their deliver_sm_resp."""
        return self.held + sum(len(session.unanswered) for session in self._sessions)

    @property
    def sessions(self) -> int:
        """Open connections, bound or not."""
        return len(self._sessions)

    async def send_mo(
        self,
        source: str,
        destination: str,
        text_bytes: bytes,
        data_coding: int = 0,
        esm_class: int = 0,
        tlvs: Mapping[int, bytes] | None = None,
        *,
        system_id: str | None = None,
    ) -> bool:
        """Push a mobile-originated deliver_sm to a receiver or transceiver bound
        as ``system_id`` (default: the configured one).

        True if it was written to a session now; False if it is held until a
        receiver binds, as an SMSC keeps MO traffic for a disconnected ESME.
        """
        values = dict(tlvs or {})
        if len(text_bytes) > _MAX_SHORT_MESSAGE:
            values[Tag.MESSAGE_PAYLOAD] = text_bytes
            text_bytes = b""
        body = addressed(
            source,
            destination,
            esm_class=esm_class,
            data_coding=data_coding,
            short_message=text_bytes,
            tlvs=values,
        )
        session = self._deliver(_Outgoing(system_id or self.config.system_id, None, body, False))
        if session is None:
            return False
        session.flush()
        return True

    # ------------------------------------------------------ session callbacks

    def _opened(self, session: _Session) -> None:
        self._sessions[session] = None
        self._changed.set()

    def _closed(self, session: _Session, unanswered: list[_Outgoing]) -> None:
        """Forget the session; what it was sent but never acknowledged goes out
        again, as an SMSC retries a deliver_sm that got no deliver_sm_resp."""
        self._sessions.pop(session, None)
        self._changed.set()
        for item in unanswered:
            item.origin = None
            if self._server is None:  # stopping: keep them, send nothing more
                self._held.setdefault(item.system_id, deque()).append(item)
            else:
                self._deliver(item)

    def _bound(self, session: _Session, mode: BindMode) -> None:
        self.bound.append(mode)
        self._changed.set()
        if mode in _RECEIVES:
            held = self._held.pop(session.system_id, None)
            for item in held or ():
                self._send(session, item)

    def _deliver_sm_resp(self) -> None:
        self.deliver_sm_resps += 1
        self._changed.set()

    def _submit(self, session: _Session, pdu: Pdu) -> None:
        if session.mode not in _SENDS:
            session.respond(pdu, Status.RINVBNDSTS)
            return
        body = pdu.body
        if not isinstance(body, ShortMessage):
            session.respond(pdu, Status.RSYSERR)
            return
        self._submit_count += 1
        rule = rule_for(self.config.rules, body.destination_addr)
        status = self._refusal(rule)
        message_id = self._next_id() if status == Status.ROK else ""
        record = SubmittedMessage(
            system_id=session.system_id,
            sequence=pdu.sequence,
            source=body.source_addr,
            destination=body.destination_addr,
            data_coding=body.data_coding,
            esm_class=body.esm_class,
            registered_delivery=body.registered_delivery,
            short_message=body.short_message,
            tlvs=body.tlvs,
            message_id=message_id,
            status=status,
            received_at=asyncio.get_running_loop().time(),
        )
        self.submitted.append(record)
        self._changed.set()
        submit_ms = time.time_ns() // 1_000_000
        delay = self.config.respond_delay_ms / 1000
        if delay <= 0:
            self._answer(session, pdu, body, record, rule, submit_ms)
            return

        def answer_later() -> None:
            self._delayed.discard(handle)
            self._answer(session, pdu, body, record, rule, submit_ms)
            session.flush()

        handle = asyncio.get_running_loop().call_later(delay, answer_later)
        self._delayed.add(handle)

    def _refusal(self, rule: SandboxRule) -> Status:
        count, config = self._submit_count, self.config
        if config.throttle_every and count % config.throttle_every == 0:
            return Status.RTHROTTLED
        if not self._bucket.take():
            return Status.RTHROTTLED
        if config.queue_full_every and count % config.queue_full_every == 0:
            return Status.RMSGQFUL
        if rule.state is State.REJECTED:
            return Status.RSUBMITFAIL
        return Status.ROK

    def restart_ids(self) -> None:
        """Start the id count again, as an SMSC that restarted would."""
        self._issued = 0

    def _next_id(self) -> str:
        config = self.config
        if config.restart_ids_after and self._issued >= config.restart_ids_after:
            self._issued = 0
        self._issued += 1
        count, style = self._issued, config.message_id_style
        if style == "hex":
            return f"{self._seed + count:x}"
        if style == "decimal":
            return str(self._seed + count)
        if style == "sequential_hex":
            return f"{count:x}"
        if style == "upper_hex":
            return f"{count:X}"
        if style == "zero_padded":
            return f"{count:010d}"
        if style == "uuid":
            return str(uuid.uuid4())
        return str(count)

    def _answer(
        self,
        session: _Session,
        pdu: Pdu,
        body: ShortMessage,
        record: SubmittedMessage,
        rule: SandboxRule,
        submit_ms: int,
    ) -> None:
        """submit_sm_resp, then (only once it is written) what follows from it:
        an ESME cannot match a receipt to an id it has not been given yet."""
        if not session.is_open:
            return  # the connection went first: the ESME never learns the id
        if record.status != Status.ROK:
            session.respond(pdu, record.status)
            return
        failed = rule.state is not State.DELIVERED
        report = body.registered_delivery & 0x03
        receipt = None
        if report == 0x01 or report == 0x03 or (report == 0x02 and failed):
            receipt = self._receipt(body, record.message_id, rule, submit_ms)
        if receipt is not None and self.config.receipt_before_resp:
            self._deliver(_Outgoing(session.system_id, session, receipt, True))
            receipt = None
        session.respond(pdu, body=MessageIdResp(record.message_id))
        if receipt is not None:
            self._schedule(_Outgoing(session.system_id, session, receipt, True))
        if rule.replies:
            reply = _reply(body)
            if reply is not None:
                self._schedule(_Outgoing(session.system_id, session, reply, False))

    # ------------------------------------------------------ receipts and MO

    def _receipt(
        self, body: ShortMessage, message_id: str, rule: SandboxRule, submit_ms: int
    ) -> ShortMessage:
        stat, state = RECEIPT_STAT.get(rule.state, ("UNKNOWN", MessageState.UNKNOWN))
        error = MAP_ERROR_OF_REASON.get(rule.reason, 0)
        receipt_id = self._receipt_id(message_id)
        text = format_receipt_text(
            message_id=receipt_id,
            stat=stat,
            err=f"{error:03d}",
            submit_ms=submit_ms,
            done_ms=submit_ms + int(self.config.receipt_delay_ms),
            text=_preview(body),
        )
        tlvs = receipt_tlvs(receipt_id, state, error) if self.config.receipt_tlvs else {}
        return ShortMessage(
            source_addr=body.destination_addr,
            source_addr_ton=body.dest_addr_ton,
            source_addr_npi=body.dest_addr_npi,
            destination_addr=body.source_addr,
            dest_addr_ton=body.source_addr_ton,
            dest_addr_npi=body.source_addr_npi,
            esm_class=ESM_DELIVERY_RECEIPT,
            data_coding=0,
            short_message=text.encode("ascii", "replace"),
            tlvs=tlvs,
        )

    def _receipt_id(self, message_id: str) -> str:
        style = self.config.receipt_id_style
        try:
            if style == "decimal":
                return str(int(message_id, 16))
            if style == "hex":
                return f"{int(message_id):x}"
        except ValueError:
            return message_id  # not a number (a UUID): nothing to respell
        if style == "leading_zeros":
            return "0" * max(1, 20 - len(message_id)) + message_id
        if style == "upper":
            return message_id.upper()
        if style == "lower":
            return message_id.lower()
        return message_id

    def _schedule(self, item: _Outgoing) -> None:
        """Send ``item`` after the receipt delay; one timer serves the whole queue."""
        loop = asyncio.get_running_loop()
        due = loop.time() + self.config.receipt_delay_ms / 1000
        heapq.heappush(self._scheduled, (due, next(self._order), item))
        if self._timer is None or due < self._timer.when():
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_at(due, self._release_due)

    def _release_due(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time() + 0.001  # call_at may fire within the clock's resolution
        touched: dict[_Session, None] = {}
        while self._scheduled and self._scheduled[0][0] <= now:
            _, _, item = heapq.heappop(self._scheduled)
            session = self._deliver(item)
            if session is not None:
                touched[session] = None
        for session in touched:
            session.flush()
        if self._scheduled:
            self._timer = loop.call_at(self._scheduled[0][0], self._release_due)

    def _deliver(self, item: _Outgoing) -> _Session | None:
        """Write ``item`` to a session that may receive it, or hold it until one binds."""
        session = self._receiver_for(item)
        if session is None:
            item.origin = None
            self._held.setdefault(item.system_id, deque()).append(item)
            self._changed.set()
            return None
        self._send(session, item)
        return session

    def _receiver_for(self, item: _Outgoing) -> _Session | None:
        origin = item.origin
        if origin is not None and origin.mode == "transceiver" and origin.is_open:
            return origin
        for session in self._sessions:
            if (
                session.mode in _RECEIVES
                and session.is_open
                and session.system_id == item.system_id
            ):
                return session
        return None

    def _send(self, session: _Session, item: _Outgoing) -> None:
        session.deliver(item)
        if item.is_receipt:
            self.receipts_sent += 1
        else:
            self.mo_sent += 1
        self._changed.set()


class _Session(PduEndpoint):
    """One ESME connection: its bind state, and responses batched per read."""

    log_prefix = "smsc-sim"

    def __init__(self, simulator: SmscSimulator) -> None:
        super().__init__()
        self._sim = simulator
        self.unanswered: dict[int, _Outgoing] = {}  # deliver_sm by sequence
        self.mode: BindMode | None = None
        self.system_id = ""

    def _opened(self) -> None:
        self._sim._opened(self)

    def _lost(self, exc: Exception | None) -> None:
        log.info("smsc-sim: %s disconnected (%s)", self.peer, exc or "closed")
        unanswered, self.unanswered = list(self.unanswered.values()), {}
        self._sim._closed(self, unanswered)

    def deliver(self, item: _Outgoing) -> None:
        """Send a deliver_sm and remember it until its deliver_sm_resp arrives."""
        sequence = self._next_sequence()
        self.unanswered[sequence] = item
        self._write(encode(Pdu(CommandId.DELIVER_SM, sequence, 0, item.body)))

    async def unbind(self, grace: float) -> None:
        """Unbind as the SMSC does when it shuts down: unbind, wait for
        unbind_resp (or the peer closing), then close."""
        await self.unbind_and_close(grace, bound=self.mode is not None)

    def _handle(self, pdu: Pdu) -> None:
        command = pdu.command_id
        if command == CommandId.SUBMIT_SM:
            self._sim._submit(self, pdu)
        elif command == CommandId.DELIVER_SM_RESP:
            self.unanswered.pop(pdu.sequence, None)
            self._sim._deliver_sm_resp()
        elif command in _BIND_MODES:
            self._bind(pdu, _BIND_MODES[command])
        else:
            self._handle_link(pdu)

    def _bind(self, pdu: Pdu, mode: BindMode) -> None:
        bind, config = pdu.body, self._sim.config
        if self.mode is not None:
            status: Status = Status.RALYBND
        elif not isinstance(bind, Bind):
            status = Status.RSYSERR
        elif bind.system_id != config.system_id:
            status = Status.RINVSYSID
        elif bind.password != config.password:
            status = Status.RINVPASWD
        else:
            self.mode, self.system_id = mode, bind.system_id
            self.respond(pdu, body=BindResp(SMSC_SYSTEM_ID))
            log.info("smsc-sim: %s bound as %s (%s)", self.peer, mode, bind.system_id)
            self._sim._bound(self, mode)
            return
        log.warning("smsc-sim: %s bind_%s refused: %s", self.peer, mode, status.name)
        self.respond(pdu, status)


class _TokenBucket:
    """At most ``rate`` submissions a second, in bursts of up to a second's worth."""

    def __init__(self, rate: float) -> None:
        self._rate = rate
        self._capacity = max(rate, 1.0)
        self._tokens = self._capacity
        self._at = time.monotonic()

    def take(self) -> bool:
        if self._rate <= 0:
            return True
        now = time.monotonic()
        self._tokens = min(self._capacity, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


def _is_binary(data_coding: int) -> bool:
    return data_coding in (0x02, 0x04) or data_coding & 0xF4 == 0xF4


def _preview(body: ShortMessage) -> str:
    """The receipt's ``text:`` field: the start of the message, printable ASCII."""
    if _is_binary(body.data_coding):
        return ""
    try:
        text = read_inbound(body).text
    except (ValueError, IndexError):
        return ""
    return "".join(c if " " <= c <= "~" else "?" for c in text[:20])


def _reply(body: ShortMessage) -> ShortMessage | None:
    """The handset's answer to a message under a ``replies`` rule, quoting it.

    Only the first part of a long message is answered, so each message gets
    one reply, as the sandbox carrier gives.
    """
    part = read_inbound(body)
    if part.seq != 1:
        return None
    if part.encoding is Encoding.UCS2:
        payload, data_coding = f"Re: {part.text[:40]}".encode("utf-16-be"), 0x08
    else:
        quoted = "your message" if _is_binary(body.data_coding) else part.text[:40]
        try:
            payload = encode_gsm7(f"Re: {quoted}")
        except ValueError:
            payload = encode_gsm7("Re: your message")
        data_coding = 0x00
    return ShortMessage(
        source_addr=body.destination_addr,
        source_addr_ton=body.dest_addr_ton,
        source_addr_npi=body.dest_addr_npi,
        destination_addr=body.source_addr,
        dest_addr_ton=body.source_addr_ton,
        dest_addr_npi=body.source_addr_npi,
        data_coding=data_coding,
        short_message=payload,
        tlvs={},
    )


__all__ = [
    "SMSC_SYSTEM_ID",
    "SimulatorConfig",
    "SmscSimulator",
    "SubmittedMessage",
]
