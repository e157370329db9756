"""A blocking SMPP client on smsgate's own PDU codec, for checking what a peer
SMSC really puts on the wire.

It does nothing on its own: no automatic responses, no window, no retries.
A test says what to send and reads back every PDU in the order it arrived, so
it can assert on orders and sequences a full ESME would hide (a receipt that
overtook its submit_sm_resp, a deliver_sm sent again after a rebind).
"""

from __future__ import annotations

import socket
import time
from collections import deque
from collections.abc import Callable

from smsgate.smpp.pdu import (
    Bind,
    CommandId,
    Framer,
    MessageIdResp,
    Pdu,
    ShortMessage,
    decode,
    encode,
)

_BINDS = {
    "transceiver": CommandId.BIND_TRANSCEIVER,
    "transmitter": CommandId.BIND_TRANSMITTER,
    "receiver": CommandId.BIND_RECEIVER,
}


class PlainEsme:
    """One TCP connection to an SMSC; PDUs out and in, nothing more."""

    def __init__(self, host: str, port: int, *, timeout: float = 10.0) -> None:
        self._socket = socket.create_connection((host, port), timeout=timeout)
        self._framer = Framer()
        self._inbox: deque[Pdu] = deque()
        self._sequence = 0
        self.received: list[Pdu] = []
        """Every PDU read so far, in arrival order."""

    def __enter__(self) -> PlainEsme:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._socket.close()

    def send(self, command: int, body: Bind | ShortMessage | None = None) -> int:
        """Write a request; its sequence number."""
        self._sequence += 1
        self._socket.sendall(encode(Pdu(command, self._sequence, 0, body)))
        return self._sequence

    def respond(self, request: Pdu, status: int = 0) -> None:
        body = MessageIdResp("") if request.command_id == CommandId.DELIVER_SM else None
        self._socket.sendall(
            encode(Pdu(request.command_id | 0x80000000, request.sequence, status, body))
        )

    def bind(
        self, system_id: str = "smsgate", password: str = "secret", mode: str = "transceiver"
    ) -> Pdu:
        """Send a bind and return its response (whatever its status)."""
        sequence = self.send(_BINDS[mode], Bind(system_id, password))
        return self.read_until(lambda p: p.sequence == sequence and bool(p.command_id >> 31))

    def submit(self, destination: str, text: bytes = b"hello", **fields: object) -> int:
        """A submit_sm asking for a receipt; its sequence number."""
        values: dict[str, object] = {
            "source_addr": "SHOP",
            "source_addr_ton": 5,
            "destination_addr": destination,
            "registered_delivery": 1,
            "short_message": text,
        }
        values.update(fields)
        return self.send(CommandId.SUBMIT_SM, ShortMessage(**values))  # type: ignore[arg-type]

    @property
    def unread(self) -> int:
        """PDUs received (and in ``received``) that ``read`` has not returned yet."""
        return len(self._inbox)

    def read(self, timeout: float = 10.0) -> Pdu:
        """The next PDU; TimeoutError when none comes within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not self._inbox:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no PDU within {timeout:g}s")
            self._socket.settimeout(remaining)
            try:
                data = self._socket.recv(65536)
            except TimeoutError:
                continue
            if not data:
                raise ConnectionError("the SMSC closed the connection")
            for frame in self._framer.feed(data):
                pdu = decode(frame)
                self._inbox.append(pdu)
                self.received.append(pdu)
        return self._inbox.popleft()

    def read_until(self, predicate: Callable[[Pdu], bool], timeout: float = 10.0) -> Pdu:
        """Read (and keep in ``received``) until a PDU satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        while True:
            pdu = self.read(max(deadline - time.monotonic(), 0.001))
            if predicate(pdu):
                return pdu

    def responses(self, command: int) -> list[Pdu]:
        """The responses to ``command`` received so far."""
        return [p for p in self.received if p.command_id == command | 0x80000000]

    def requests(self, command: int) -> list[Pdu]:
        return [p for p in self.received if p.command_id == command]
