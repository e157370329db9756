"""An ESME on the smpplib Python package, reporting events as the peer programs do.

smpplib is a third SMPP implementation smsgate did not write. Wrapped here,
it binds, submits messages given as the same dicts the ESME programs take
(``{"to": ..., "text": ..., "coding": "ucs2"}``) and records the same
``ready``, ``submit_sm``, ``submit_sm_resp`` and ``deliver_sm`` events, so a
test can run one scenario against all three clients. smpplib has no window
of its own: ``window`` bounds the unanswered submit_sm here.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import smpplib.client
import smpplib.command
import smpplib.consts
import smpplib.exceptions
import smpplib.gsm
import smpplib.smpp

from tests.support.peers import EventLog

_ENCODINGS = {
    "gsm": smpplib.consts.SMPP_ENCODING_DEFAULT,
    "ucs2": smpplib.consts.SMPP_ENCODING_ISO10646,
}


def _text(value: Any) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value or "")


class SmpplibEsme(EventLog):
    """A bound smpplib client with a reader thread; :meth:`stop` unbinds."""

    def __init__(
        self,
        port: int,
        *,
        host: str = "127.0.0.1",
        system_id: str = "smsgate",
        password: str = "secret",
        mode: str = "transceiver",
        window: int = 10,
    ) -> None:
        super().__init__()
        self._window = threading.BoundedSemaphore(window)
        self._pending: dict[int, tuple[Any, int]] = {}  # sequence -> (index, part)
        self._index = 0
        self._lock = threading.Lock()
        self.client = smpplib.client.Client(host, port, timeout=5, allow_unknown_opt_params=True)
        self.client.set_message_sent_handler(self._answered)
        self.client.set_message_received_handler(self._received)
        self.client.set_error_pdu_handler(lambda pdu: None)  # refusals are events, not exceptions
        self.client.connect()
        try:
            getattr(self.client, f"bind_{mode}")(system_id=system_id, password=password)
        except smpplib.exceptions.PDUError as exc:
            self.record("ready", impl="smpplib", mode=mode, status=int(exc.args[1]))
            self.client.disconnect()
            self.end()
            return
        self.record("ready", impl="smpplib", mode=mode, status=0)
        self._reader = threading.Thread(target=self._listen, daemon=True)
        self._reader.start()

    def __repr__(self) -> str:
        return "<smpplib esme>"

    def _listen(self) -> None:
        try:
            while True:
                self.client.read_once(auto_send_enquire_link=True)
        except (smpplib.exceptions.ConnectionError, OSError):
            pass
        finally:
            self.record("unbound")
            self.end()

    def _answered(self, pdu: Any) -> None:
        with self._lock:
            index, part = self._pending.pop(pdu.sequence, (None, 0))
        self._window.release()
        self.record(
            "submit_sm_resp",
            sequence=pdu.sequence,
            index=index,
            part=part,
            status=int(pdu.status),
            message_id=_text(pdu.message_id) if pdu.status == 0 else None,
        )

    def _received(self, pdu: Any) -> None:
        payload = pdu.short_message or b""
        if pdu.esm_class & smpplib.consts.SMPP_GSMFEAT_UDHI and payload:
            payload = payload[1 + payload[0] :]
        text = payload.decode("utf-16-be") if pdu.data_coding == 8 else _text(payload)
        self.record(
            "deliver_sm",
            sequence=pdu.sequence,
            source=_text(pdu.source_addr),
            destination=_text(pdu.destination_addr),
            esm_class=pdu.esm_class,
            data_coding=pdu.data_coding,
            short_message=(pdu.short_message or b"").hex(),
            text=text,
            tlvs=self._tlvs(pdu),
        )

    @staticmethod
    def _tlvs(pdu: Any) -> dict[str, str]:
        """The optional parameters smpplib read, re-encoded as the peers report them."""
        out: dict[str, str] = {}
        for name in pdu.params_order:
            value = getattr(pdu, name, None)
            if not pdu.field_is_optional(name) or value is None:
                continue
            param = pdu.params[name]
            if param.type is int:
                raw = int(value).to_bytes(param.size, "big")
            else:
                raw = value if isinstance(value, bytes) else str(value).encode("latin-1")
                if param.type is str and not raw.endswith(b"\0"):
                    raw += b"\0"
            out[f"0x{smpplib.command.get_optional_code(name):04x}"] = raw.hex()
        return out

    def send(self, message: dict[str, Any]) -> None:
        """Submit one message (split into UDH parts when long), keeping the window."""
        encoding = _ENCODINGS[message.get("coding", "gsm")]
        parts, data_coding, esm_class = smpplib.gsm.make_parts(message["text"], encoding)
        index = message.get("id", self._index)
        self._index += 1
        source = message.get("from", "SHOP")
        for number, part in enumerate(parts, start=1):
            if not self._window.acquire(timeout=10):
                raise TimeoutError("smpplib esme: window never opened")
            with self._lock:
                pdu = self.client.send_message(
                    source_addr_ton=1 if source.isdigit() else 5,
                    source_addr=source,
                    dest_addr_ton=1,
                    dest_addr_npi=1,
                    destination_addr=str(message["to"]),
                    short_message=part,
                    data_coding=data_coding,
                    esm_class=esm_class,
                    registered_delivery=message.get("registered_delivery", 1),
                )
                self._pending[pdu.sequence] = (index, number)
                self.record(
                    "submit_sm",
                    sequence=pdu.sequence,
                    index=index,
                    part=number,
                    parts=len(parts),
                    destination=str(message["to"]),
                )

    def stop(self, timeout: float = 5.0) -> int:
        """Unbind (the reader sees the SMSC close) and wait for the reader; 0."""
        if not self._ended:
            with contextlib.suppress(smpplib.exceptions.ConnectionError):
                self.client.send_pdu(smpplib.smpp.make_pdu("unbind", client=self.client))
            self._reader.join(timeout)
        self.client.disconnect()
        return 0

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop(1.0)
