"""One end of an SMPP connection: framing, batched writes, sequence numbers
and the answers to PDUs that cannot be read, shared by the carrier simulator
and the customer-facing server so both speak the stream the same way.

Writes made while handling one read are joined into one transport write: at
tens of thousands of PDUs a second, a write per response costs more than
the responses themselves.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import cast

from smsgate.smpp.pdu import (
    MAX_PDU_SIZE,
    BindResp,
    CommandId,
    Framer,
    MessageIdResp,
    Pdu,
    PduError,
    QuerySmResp,
    Status,
    decode,
    encode,
)

log = logging.getLogger(__name__)

RESPONSE_BIT = 0x80000000
WRITE_HIGH_WATER = 1 << 20  # stop reading a peer that does not read its responses
# Answers that ask for no answer back.
_NO_ANSWER = frozenset({CommandId.ENQUIRE_LINK_RESP, CommandId.GENERIC_NACK})


class PduEndpoint(asyncio.Protocol):
    """The transport half of an SMPP peer; subclasses say what a PDU means.

    ``close_on_malformed``: whether a whole frame whose body cannot be decoded
    ends the connection. Framing is by command_length, so the stream is still
    in step after such a frame; the server keeps the connection (generic_nack
    only), the simulator mimics carriers that drop it.
    """

    close_on_malformed = True
    log_prefix = "smpp"

    def __init__(self, *, max_pdu_size: int = MAX_PDU_SIZE) -> None:
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._framer = Framer(max_pdu_size)
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._closing = False
        self._sequences = itertools.count(1)
        self.closed: asyncio.Future[None] = self._loop.create_future()
        self._unbind_resp: asyncio.Future[None] | None = None
        self.peer = "?"
        self.peer_host = ""

    @property
    def is_open(self) -> bool:
        return self._transport is not None and not self._closing and not self.closed.done()

    # ---------------------------------------------------------- hooks

    def _opened(self) -> None:
        """The connection is up."""

    def _lost(self, exc: Exception | None) -> None:
        """The connection is gone; pending work must be released."""

    def _handle(self, pdu: Pdu) -> None:
        raise NotImplementedError

    # ---------------------------------------------------------- transport

    def connection_made(self, base: asyncio.BaseTransport) -> None:
        # A stream transport; uvloop's behave as asyncio.Transport without subclassing it.
        self._transport = transport = cast(asyncio.Transport, base)
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.peer_host = str(peer[0])
            self.peer = f"{peer[0]}:{peer[1]}"
        else:
            self.peer = str(peer)
        self._opened()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._out.clear()
        if not self.closed.done():
            self.closed.set_result(None)
        self._unbound()
        self._lost(exc)

    def pause_writing(self) -> None:
        # The peer is not reading its responses: stop reading its requests
        # until it catches up, instead of buffering without bound.
        if self._transport is not None and not self._transport.is_closing():
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        try:
            frames = self._framer.feed(data)
        except PduError as exc:
            self._out_of_step(exc)
        else:
            for frame in frames:
                self._receive(frame)
                if self._closing:
                    break
        self.flush()

    # ------------------------------------------------------------ writing

    def _write(self, frame: bytes) -> None:
        if self._closing:
            return
        self._out.append(frame)
        if not self._flush_scheduled:
            # Flushed at the end of the current read, or on the next loop turn
            # for writes made from timers: one write per batch, not per PDU.
            self._flush_scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Hand everything written so far to the transport in one write."""
        self._flush_scheduled = False
        transport = self._transport
        if transport is None or transport.is_closing():
            self._out.clear()
            return
        if self._out:
            transport.write(b"".join(self._out))
            self._out.clear()
        if self._closing:
            transport.close()  # after the write: the last response still leaves

    def respond(
        self,
        request: Pdu,
        status: int = Status.ROK,
        body: BindResp | MessageIdResp | QuerySmResp | None = None,
    ) -> None:
        command = request.command_id | RESPONSE_BIT
        self._write(encode(Pdu(command, request.sequence, status, body)))

    def _next_sequence(self) -> int:
        sequence = next(self._sequences)
        if sequence > 0x7FFFFFFF:  # sequence numbers wrap within 31 bits
            self._sequences = itertools.count(2)
            sequence = 1
        return sequence

    def _close_after_flush(self) -> None:
        """Stop handling input; the transport closes once pending writes are out."""
        if self._closing or self._transport is None:
            return
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self.flush)
        self._closing = True

    async def unbind_and_close(self, grace: float, *, bound: bool) -> None:
        """End the connection as a server does when it stops: unbind a bound
        peer and wait for its unbind_resp (or its going), then close, and
        abort what does not close within ``grace``."""
        if bound and self.is_open:
            self._unbind_resp = self._loop.create_future()
            self._write(encode(Pdu(CommandId.UNBIND, self._next_sequence(), 0, None)))
            self.flush()
            await asyncio.wait({self._unbind_resp, self.closed}, timeout=grace)
        if not self.closed.done():
            self._close_after_flush()
            self.flush()
            await asyncio.wait({self.closed}, timeout=grace)
            if not self.closed.done():
                self.abort()

    def _unbound(self) -> None:
        if self._unbind_resp is not None and not self._unbind_resp.done():
            self._unbind_resp.set_result(None)

    def abort(self) -> None:
        self._closing = True
        self._out.clear()
        if self._transport is not None:
            self._transport.abort()

    # ------------------------------------------------------------ reading

    def _receive(self, frame: bytes) -> None:
        try:
            pdu = decode(frame)
        except PduError as exc:
            if exc.command_status == Status.RINVCMDID:
                # A whole PDU of a kind not supported: the stream is still in step.
                log.info("%s: %s sent unsupported command: %s", self.log_prefix, self.peer, exc)
                self._nack(exc.sequence or 0, Status.RINVCMDID)
            elif self.close_on_malformed:
                self._out_of_step(exc)
            else:
                log.info("%s: malformed PDU from %s: %s", self.log_prefix, self.peer, exc)
                self._malformed_request(exc)
            return
        self._handle(pdu)

    def _handle_link(self, pdu: Pdu) -> None:
        """What every peer answers alike: enquire_link, unbind and unbind_resp;
        a request the subclass did not take (deliver_sm from an ESME, a
        response nothing asked for) is nacked."""
        command = pdu.command_id
        if command == CommandId.ENQUIRE_LINK:
            self.respond(pdu)
        elif command == CommandId.UNBIND:
            self.respond(pdu)
            log.info("%s: %s unbound", self.log_prefix, self.peer)
            self._close_after_flush()
        elif command == CommandId.UNBIND_RESP:
            self._unbound()
        elif command not in _NO_ANSWER:
            self._nack(pdu.sequence, Status.RINVCMDID)

    def _malformed_request(self, exc: PduError) -> None:
        """A readable frame with an unreadable body: answered, connection kept."""
        self._nack(exc.sequence or 0, exc.command_status or Status.RSYSERR)

    def _nack(self, sequence: int, status: int) -> None:
        self._write(encode(Pdu(CommandId.GENERIC_NACK, sequence, status, None)))

    def _out_of_step(self, exc: PduError) -> None:
        """Nack with the codec's status hint and close: after a bad length the
        byte stream cannot be trusted to be in step any more."""
        log.warning("%s: malformed PDU from %s: %s", self.log_prefix, self.peer, exc)
        self._nack(exc.sequence or 0, exc.command_status or Status.RSYSERR)
        self._close_after_flush()
