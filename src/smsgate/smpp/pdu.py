"""SMPP 3.4 PDUs: bytes to dataclasses and back, and the framing of a TCP stream.

Only the operations a bulk gateway exchanges with an SMSC are modelled (bind,
submit_sm, deliver_sm, query_sm, cancel_sm, enquire_link, unbind, generic_nack
and their responses); anything else is refused with ``ESME_RINVCMDID`` so a session can answer it
with generic_nack instead of guessing at its layout.

Every failure to decode is a :class:`PduError` that carries the command_status
the peer should be told, plus the command_id and sequence when the header was
readable, so the session code can answer a malformed request on the same
sequence number rather than drop the connection blind.

Both directions sit on the hot path of bulk traffic (tens of thousands of PDUs
a second), so fixed-size runs of fields are packed and unpacked with
precompiled :class:`struct.Struct` objects, C-strings are located with
``bytes.find`` bounded by the field's maximum size, and body layouts are walked
inline rather than through one helper call per field.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum
from struct import Struct
from typing import Final, TypeAlias


class CommandId(IntEnum):
    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_RECEIVER_RESP = 0x80000001
    BIND_TRANSMITTER = 0x00000002
    BIND_TRANSMITTER_RESP = 0x80000002
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    QUERY_SM = 0x00000003
    QUERY_SM_RESP = 0x80000003
    CANCEL_SM = 0x00000008
    CANCEL_SM_RESP = 0x80000008
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015


class Status(IntEnum):
    """command_status values (SMPP 3.4 section 5.1.3), without the ``ESME_`` prefix."""

    ROK = 0x00
    RINVMSGLEN = 0x01
    RINVCMDLEN = 0x02
    RINVCMDID = 0x03
    RINVBNDSTS = 0x04
    RALYBND = 0x05
    RSYSERR = 0x08
    RINVSRCADR = 0x0A
    RINVDSTADR = 0x0B
    RINVMSGID = 0x0C
    RBINDFAIL = 0x0D
    RINVPASWD = 0x0E
    RINVSYSID = 0x0F
    RCANCELFAIL = 0x11
    RMSGQFUL = 0x14
    RINVSERTYP = 0x15
    RINVESMCLASS = 0x43
    RSUBMITFAIL = 0x45
    RINVSYSTYP = 0x53
    RTHROTTLED = 0x58
    RINVSCHED = 0x61
    RINVEXPIRY = 0x62
    RQUERYFAIL = 0x67
    RINVOPTPARSTREAM = 0xC0
    RINVPARLEN = 0xC2
    RUNKNOWNERR = 0xFF


class Tag(IntEnum):
    """Optional parameter (TLV) tags the gateway reads or writes."""

    RECEIPTED_MESSAGE_ID = 0x001E
    SAR_MSG_REF_NUM = 0x020C
    SAR_TOTAL_SEGMENTS = 0x020E
    SAR_SEGMENT_SEQNUM = 0x020F
    NETWORK_ERROR_CODE = 0x0423
    MESSAGE_PAYLOAD = 0x0424
    MESSAGE_STATE = 0x0427


class MessageState(IntEnum):
    """Values of the message_state TLV in a delivery receipt."""

    ENROUTE = 1
    DELIVERED = 2
    EXPIRED = 3
    DELETED = 4
    UNDELIVERABLE = 5
    ACCEPTED = 6
    UNKNOWN = 7
    REJECTED = 8


ESM_UDHI: Final = 0x40
"""esm_class bit: short_message starts with a user data header."""
ESM_DELIVERY_RECEIPT: Final = 0x04
"""esm_class message type of a deliver_sm that carries an SMSC delivery receipt."""

HEADER_SIZE: Final = 16
MAX_PDU_SIZE: Final = 64 * 1024
"""Largest command_length accepted; bounds the memory one peer can make us buffer."""

_RESPONSE_BIT: Final = 0x80000000


class PduError(ValueError):
    """Bytes that are not a PDU this codec understands, or a PDU it cannot encode.

    ``command_status`` is the status to answer the peer with; ``command_id``
    and ``sequence`` are set when the header was readable.
    """

    def __init__(
        self,
        message: str,
        command_status: int = Status.RSYSERR,
        *,
        command_id: int | None = None,
        sequence: int | None = None,
    ) -> None:
        super().__init__(message)
        self.command_status = command_status
        self.command_id = command_id
        self.sequence = sequence


@dataclass(slots=True)
class Bind:
    """Body of bind_receiver, bind_transmitter and bind_transceiver."""

    system_id: str
    password: str
    system_type: str = ""
    interface_version: int = 0x34
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""


@dataclass(slots=True)
class BindResp:
    """Body of the bind responses (a trailing sc_interface_version TLV is dropped)."""

    system_id: str


@dataclass(slots=True)
class ShortMessage:
    """Body of submit_sm and deliver_sm, which share one layout."""

    source_addr: str = ""
    destination_addr: str = ""
    short_message: bytes = b""
    data_coding: int = 0
    esm_class: int = 0
    registered_delivery: int = 0
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    dest_addr_ton: int = 1
    dest_addr_npi: int = 1
    service_type: str = ""
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    replace_if_present_flag: int = 0
    sm_default_msg_id: int = 0
    tlvs: dict[int, bytes] = field(default_factory=dict)


@dataclass(slots=True)
class MessageIdResp:
    """Body of submit_sm_resp and deliver_sm_resp (the latter's id is always empty)."""

    message_id: str


@dataclass(slots=True)
class QuerySm:
    """Body of query_sm: the id submit_sm_resp gave, and the message's source."""

    message_id: str
    source_addr: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0


@dataclass(slots=True)
class QuerySmResp:
    """Body of query_sm_resp. ``final_date`` is empty until the state is final;
    ``error_code`` is the network's (GSM) error, 0 when none."""

    message_id: str
    final_date: str
    message_state: int
    error_code: int = 0


@dataclass(slots=True)
class CancelSm:
    """Body of cancel_sm. smsgate cancels by ``message_id`` alone (section
    4.9.1 also allows every message from a source to a destination)."""

    message_id: str
    service_type: str = ""
    source_addr: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    destination_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0


Body: TypeAlias = Bind | BindResp | ShortMessage | MessageIdResp | QuerySm | QuerySmResp | CancelSm


@dataclass(slots=True)
class Pdu:
    command_id: int
    sequence: int
    command_status: int = 0
    body: Body | None = None


# Maximum sizes of C-octet string fields, terminating NUL included (SMPP 3.4 section 4).
_SYSTEM_ID: Final = 16
_PASSWORD: Final = 9
_SYSTEM_TYPE: Final = 13
_ADDRESS_RANGE: Final = 41
_SERVICE_TYPE: Final = 6
_ADDRESS: Final = 21
_TIME: Final = 17
_MESSAGE_ID: Final = 65
_MAX_SHORT_MESSAGE: Final = 254
_MAX_TLV_VALUE: Final = 0xFFFF

_HEADER: Final = Struct(">IIII")
_LENGTH: Final = Struct(">I")
_TON_NPI: Final = Struct(">BB")
_BIND_INTS: Final = Struct(">BBB")  # interface_version, addr_ton, addr_npi
_SM_FLAGS: Final = Struct(">BBB")  # esm_class, protocol_id, priority_flag
# registered_delivery, replace_if_present_flag, data_coding, sm_default_msg_id, sm_length
_SM_TAIL: Final = Struct(">BBBBB")
_TLV: Final = Struct(">HH")

# Which body layout each command carries.
_NO_BODY, _BIND, _BIND_RESP, _SHORT_MESSAGE, _MESSAGE_ID_RESP, _FIELDS = range(6)
_KINDS: Final[dict[int, int]] = {
    CommandId.GENERIC_NACK: _NO_BODY,
    CommandId.BIND_RECEIVER: _BIND,
    CommandId.BIND_RECEIVER_RESP: _BIND_RESP,
    CommandId.BIND_TRANSMITTER: _BIND,
    CommandId.BIND_TRANSMITTER_RESP: _BIND_RESP,
    CommandId.SUBMIT_SM: _SHORT_MESSAGE,
    CommandId.SUBMIT_SM_RESP: _MESSAGE_ID_RESP,
    CommandId.DELIVER_SM: _SHORT_MESSAGE,
    CommandId.DELIVER_SM_RESP: _MESSAGE_ID_RESP,
    CommandId.UNBIND: _NO_BODY,
    CommandId.UNBIND_RESP: _NO_BODY,
    CommandId.BIND_TRANSCEIVER: _BIND,
    CommandId.BIND_TRANSCEIVER_RESP: _BIND_RESP,
    CommandId.ENQUIRE_LINK: _NO_BODY,
    CommandId.ENQUIRE_LINK_RESP: _NO_BODY,
    CommandId.QUERY_SM: _FIELDS,
    CommandId.QUERY_SM_RESP: _FIELDS,
    CommandId.CANCEL_SM: _FIELDS,
    CommandId.CANCEL_SM_RESP: _NO_BODY,
}
_COMMANDS: Final[dict[int, CommandId]] = {int(c): c for c in CommandId}
_STATUSES: Final[dict[int, Status]] = {int(s): s for s in Status}


# The bodies off the bulk path, as (attribute, C-string limit or 0 for one
# octet, status when unreadable) in wire order; walked field by field.
_Layout: TypeAlias = tuple[tuple[str, int, int], ...]
_LAYOUTS: Final[dict[int, tuple[type[QuerySm | QuerySmResp | CancelSm], _Layout]]] = {
    CommandId.QUERY_SM: (
        QuerySm,
        (
            ("message_id", 65, Status.RINVMSGID),
            ("source_addr_ton", 0, Status.RINVSRCADR),
            ("source_addr_npi", 0, Status.RINVSRCADR),
            ("source_addr", 21, Status.RINVSRCADR),
        ),
    ),
    CommandId.QUERY_SM_RESP: (
        QuerySmResp,
        (
            ("message_id", 65, Status.RINVMSGID),
            ("final_date", 17, Status.RINVCMDLEN),
            ("message_state", 0, Status.RINVCMDLEN),
            ("error_code", 0, Status.RINVCMDLEN),
        ),
    ),
    CommandId.CANCEL_SM: (
        CancelSm,
        (
            ("service_type", 6, Status.RINVSERTYP),
            ("message_id", 65, Status.RINVMSGID),
            ("source_addr_ton", 0, Status.RINVSRCADR),
            ("source_addr_npi", 0, Status.RINVSRCADR),
            ("source_addr", 21, Status.RINVSRCADR),
            ("dest_addr_ton", 0, Status.RINVDSTADR),
            ("dest_addr_npi", 0, Status.RINVDSTADR),
            ("destination_addr", 21, Status.RINVDSTADR),
        ),
    ),
}


# ---------------------------------------------------------------------- encoding


def _cstring(text: str, limit: int, name: str, status: int) -> bytes:
    """``text`` with its NUL, refused when the peer would have to reject or cut it."""
    try:
        raw = text.encode("latin-1")
    except UnicodeEncodeError:
        raise PduError(f"{name} is not latin-1 text", status) from None
    if len(raw) >= limit or b"\x00" in raw:
        raise PduError(f"{name} must be under {limit} octets without NUL: {text!r}", status)
    return raw + b"\x00"


def _encode_short_message(sm: ShortMessage) -> bytes:
    message = sm.short_message
    if len(message) > _MAX_SHORT_MESSAGE:
        raise PduError(
            f"short_message of {len(message)} octets; longer text goes in message_payload",
            Status.RINVMSGLEN,
        )
    parts = [
        _cstring(sm.service_type, _SERVICE_TYPE, "service_type", Status.RINVSERTYP),
        _TON_NPI.pack(sm.source_addr_ton, sm.source_addr_npi),
        _cstring(sm.source_addr, _ADDRESS, "source_addr", Status.RINVSRCADR),
        _TON_NPI.pack(sm.dest_addr_ton, sm.dest_addr_npi),
        _cstring(sm.destination_addr, _ADDRESS, "destination_addr", Status.RINVDSTADR),
        _SM_FLAGS.pack(sm.esm_class, sm.protocol_id, sm.priority_flag),
        _cstring(sm.schedule_delivery_time, _TIME, "schedule_delivery_time", Status.RINVSCHED),
        _cstring(sm.validity_period, _TIME, "validity_period", Status.RINVEXPIRY),
        _SM_TAIL.pack(
            sm.registered_delivery,
            sm.replace_if_present_flag,
            sm.data_coding,
            sm.sm_default_msg_id,
            len(message),
        ),
        message,
    ]
    for tag, value in sm.tlvs.items():
        if len(value) > _MAX_TLV_VALUE:
            raise PduError(f"TLV 0x{tag:04X} value of {len(value)} octets", Status.RINVPARLEN)
        parts.append(_TLV.pack(tag, len(value)))
        parts.append(value)
    return b"".join(parts)


def _encode_bind(bind: Bind) -> bytes:
    return b"".join(
        (
            _cstring(bind.system_id, _SYSTEM_ID, "system_id", Status.RINVSYSID),
            _cstring(bind.password, _PASSWORD, "password", Status.RINVPASWD),
            _cstring(bind.system_type, _SYSTEM_TYPE, "system_type", Status.RINVSYSTYP),
            _BIND_INTS.pack(bind.interface_version, bind.addr_ton, bind.addr_npi),
            _cstring(bind.address_range, _ADDRESS_RANGE, "address_range", Status.RBINDFAIL),
        )
    )


def _encode_fields(command_id: int, body: object) -> bytes:
    kind, layout = _LAYOUTS[command_id]
    if not isinstance(body, kind):
        raise _wrong_body(command_id, body)
    parts = []
    for name, limit, status in layout:
        value = getattr(body, name)
        parts.append(_cstring(value, limit, name, status) if limit else bytes((value,)))
    return b"".join(parts)


def _wrong_body(command_id: int, body: object) -> PduError:
    return PduError(
        f"command 0x{command_id:08X} cannot carry a {type(body).__name__} body",
        Status.RSYSERR,
    )


def encode(pdu: Pdu) -> bytes:
    """The wire form of ``pdu``; :class:`PduError` if a field does not fit SMPP 3.4.

    A response with ``body=None`` is sent header-only when its status is an
    error (the spec omits the body then) and with an empty C-string body when
    it is ``ESME_ROK``, which is the spec form of a deliver_sm_resp.
    """
    command_id = pdu.command_id
    kind = _KINDS.get(command_id)
    if kind is None:
        raise PduError(f"unsupported command_id 0x{command_id:08X}", Status.RINVCMDID)
    body = pdu.body
    try:
        if kind == _SHORT_MESSAGE:
            if not isinstance(body, ShortMessage):
                raise _wrong_body(command_id, body)
            payload = _encode_short_message(body)
        elif kind == _MESSAGE_ID_RESP:
            if isinstance(body, MessageIdResp):
                payload = _cstring(body.message_id, _MESSAGE_ID, "message_id", Status.RINVMSGID)
            elif body is None:
                payload = b"" if pdu.command_status else b"\x00"
            else:
                raise _wrong_body(command_id, body)
        elif kind == _NO_BODY:
            if body is not None:
                raise _wrong_body(command_id, body)
            payload = b""
        elif kind == _BIND:
            if not isinstance(body, Bind):
                raise _wrong_body(command_id, body)
            payload = _encode_bind(body)
        elif kind == _FIELDS:
            if body is None and pdu.command_status:
                payload = b""  # an error response omits its body
            else:
                payload = _encode_fields(command_id, body)
        else:  # _BIND_RESP
            if isinstance(body, BindResp):
                payload = _cstring(body.system_id, _SYSTEM_ID, "system_id", Status.RINVSYSID)
            elif body is None:
                payload = b"" if pdu.command_status else b"\x00"
            else:
                raise _wrong_body(command_id, body)
        length = HEADER_SIZE + len(payload)
        if length > MAX_PDU_SIZE:
            raise PduError(f"PDU of {length} octets exceeds {MAX_PDU_SIZE}", Status.RINVCMDLEN)
        return _HEADER.pack(length, command_id, pdu.command_status, pdu.sequence) + payload
    except struct.error as exc:
        raise PduError(f"integer field out of range: {exc}", Status.RSYSERR) from None


# ---------------------------------------------------------------------- decoding


def _unterminated(name: str, limit: int, status: int) -> PduError:
    return PduError(f"{name} has no NUL within its {limit} octets", status)


def _decode_tlvs(frame: bytes, pos: int, size: int) -> dict[int, bytes]:
    tlvs: dict[int, bytes] = {}
    while pos < size:
        if pos + 4 > size:
            raise PduError("truncated TLV header", Status.RINVOPTPARSTREAM)
        tag, length = _TLV.unpack_from(frame, pos)
        pos += 4
        end = pos + length
        if end > size:
            raise PduError(f"TLV 0x{tag:04X} runs past the PDU", Status.RINVOPTPARSTREAM)
        tlvs[tag] = frame[pos:end]
        pos = end
    return tlvs


def _decode_short_message(frame: bytes, size: int) -> ShortMessage:
    find = frame.find
    pos = HEADER_SIZE
    end = find(b"\x00", pos, pos + _SERVICE_TYPE)
    if end < 0:
        raise _unterminated("service_type", _SERVICE_TYPE, Status.RINVSERTYP)
    service_type = frame[pos:end].decode("latin-1")
    source_ton, source_npi = _TON_NPI.unpack_from(frame, end + 1)
    pos = end + 3
    end = find(b"\x00", pos, pos + _ADDRESS)
    if end < 0:
        raise _unterminated("source_addr", _ADDRESS, Status.RINVSRCADR)
    source = frame[pos:end].decode("latin-1")
    dest_ton, dest_npi = _TON_NPI.unpack_from(frame, end + 1)
    pos = end + 3
    end = find(b"\x00", pos, pos + _ADDRESS)
    if end < 0:
        raise _unterminated("destination_addr", _ADDRESS, Status.RINVDSTADR)
    destination = frame[pos:end].decode("latin-1")
    esm_class, protocol_id, priority = _SM_FLAGS.unpack_from(frame, end + 1)
    pos = end + 4
    end = find(b"\x00", pos, pos + _TIME)
    if end < 0:
        raise _unterminated("schedule_delivery_time", _TIME, Status.RINVSCHED)
    schedule = frame[pos:end].decode("latin-1")
    pos = end + 1
    end = find(b"\x00", pos, pos + _TIME)
    if end < 0:
        raise _unterminated("validity_period", _TIME, Status.RINVEXPIRY)
    validity = frame[pos:end].decode("latin-1")
    registered, replace, data_coding, default_id, sm_length = _SM_TAIL.unpack_from(frame, end + 1)
    pos = end + 6
    stop = pos + sm_length
    if stop > size:
        raise PduError(
            f"sm_length {sm_length} exceeds the {size - pos} octets left", Status.RINVMSGLEN
        )
    return ShortMessage(
        source,
        destination,
        frame[pos:stop],
        data_coding,
        esm_class,
        registered,
        source_ton,
        source_npi,
        dest_ton,
        dest_npi,
        service_type,
        protocol_id,
        priority,
        schedule,
        validity,
        replace,
        default_id,
        _decode_tlvs(frame, stop, size) if stop < size else {},
    )


def _decode_bind(frame: bytes, size: int) -> Bind:
    find = frame.find
    pos = HEADER_SIZE
    end = find(b"\x00", pos, pos + _SYSTEM_ID)
    if end < 0:
        raise _unterminated("system_id", _SYSTEM_ID, Status.RINVSYSID)
    system_id = frame[pos:end].decode("latin-1")
    pos = end + 1
    end = find(b"\x00", pos, pos + _PASSWORD)
    if end < 0:
        raise _unterminated("password", _PASSWORD, Status.RINVPASWD)
    password = frame[pos:end].decode("latin-1")
    pos = end + 1
    end = find(b"\x00", pos, pos + _SYSTEM_TYPE)
    if end < 0:
        raise _unterminated("system_type", _SYSTEM_TYPE, Status.RINVSYSTYP)
    system_type = frame[pos:end].decode("latin-1")
    version, ton, npi = _BIND_INTS.unpack_from(frame, end + 1)
    pos = end + 4
    end = find(b"\x00", pos, pos + _ADDRESS_RANGE)
    if end < 0:
        raise _unterminated("address_range", _ADDRESS_RANGE, Status.RBINDFAIL)
    if end + 1 != size:
        raise PduError(f"{size - end - 1} octets after the bind body", Status.RINVCMDLEN)
    return Bind(
        system_id, password, system_type, version, ton, npi, frame[pos:end].decode("latin-1")
    )


def _decode_fields(command_id: int, frame: bytes, size: int) -> QuerySm | QuerySmResp | CancelSm:
    kind, layout = _LAYOUTS[command_id]
    values: dict[str, str | int] = {}
    pos = HEADER_SIZE
    for name, limit, status in layout:
        if not limit:
            if pos >= size:
                raise PduError(f"{name} is missing", Status.RINVCMDLEN)
            values[name] = frame[pos]
            pos += 1
            continue
        end = frame.find(b"\x00", pos, min(pos + limit, size))
        if end < 0:
            raise _unterminated(name, limit, status)
        values[name] = frame[pos:end].decode("latin-1")
        pos = end + 1
    if pos < size:
        _decode_tlvs(frame, pos, size)  # checked, then dropped
    return kind(**values)  # type: ignore[arg-type]


def _decode_id(frame: bytes, size: int, name: str, limit: int, status: int) -> str:
    """The one C-string of a response body; TLVs after it are checked, then dropped."""
    end = frame.find(b"\x00", HEADER_SIZE, HEADER_SIZE + limit)
    if end < 0:
        raise _unterminated(name, limit, status)
    if end + 1 < size:
        _decode_tlvs(frame, end + 1, size)
    return frame[HEADER_SIZE:end].decode("latin-1")


def decode(frame: bytes) -> Pdu:
    """One whole PDU, header included, as produced by :class:`Framer`.

    Raises :class:`PduError` (and nothing else) for any malformed input. A
    header-only response decodes with ``body=None`` when its status is an
    error, since the spec omits the body then; a header-only ``ESME_ROK``
    deliver_sm_resp decodes as an empty id because some SMSCs send it so and
    the id is unused anyway. A header-only OK submit_sm_resp or bind response
    is refused: the id it should carry is the whole point of it.
    """
    if type(frame) is not bytes:
        frame = bytes(frame)
    size = len(frame)
    if size < HEADER_SIZE:
        raise PduError(f"PDU of {size} octets is shorter than its header", Status.RINVCMDLEN)
    length, command_id, status, sequence = _HEADER.unpack_from(frame)
    if length != size or size > MAX_PDU_SIZE:
        raise PduError(
            f"command_length {length} but the frame has {size} octets",
            Status.RINVCMDLEN,
            command_id=command_id,
            sequence=sequence,
        )
    command = _COMMANDS.get(command_id)
    if command is None:
        raise PduError(
            f"unsupported command_id 0x{command_id:08X}",
            Status.RINVCMDID,
            command_id=command_id,
            sequence=sequence,
        )
    status = _STATUSES.get(status, status)
    kind = _KINDS[command]
    body: Body | None
    try:
        if kind == _SHORT_MESSAGE:
            body = _decode_short_message(frame, size)
        elif kind == _NO_BODY:
            if size != HEADER_SIZE:
                raise PduError(
                    f"{command.name} has {size - HEADER_SIZE} body octets", Status.RINVCMDLEN
                )
            body = None
        elif size == HEADER_SIZE:
            # Error responses omit the body; so do some SMSCs' deliver_sm_resp.
            if status:
                body = None
            elif command is CommandId.DELIVER_SM_RESP:
                body = MessageIdResp("")
            else:
                raise PduError(f"{command.name} with ESME_ROK lacks its body", Status.RINVCMDLEN)
        elif kind == _MESSAGE_ID_RESP:
            body = MessageIdResp(
                _decode_id(frame, size, "message_id", _MESSAGE_ID, Status.RINVMSGID)
            )
        elif kind == _BIND:
            body = _decode_bind(frame, size)
        elif kind == _FIELDS:
            body = _decode_fields(command, frame, size)
        else:  # _BIND_RESP
            body = BindResp(_decode_id(frame, size, "system_id", _SYSTEM_ID, Status.RINVSYSID))
    except PduError as exc:
        exc.command_id = command_id
        exc.sequence = sequence
        raise
    except struct.error:
        raise PduError(
            f"{command.name} body is truncated",
            Status.RINVCMDLEN,
            command_id=command_id,
            sequence=sequence,
        ) from None
    return Pdu(command, sequence, status, body)


# ---------------------------------------------------------------------- framing


class Framer:
    """Cuts a TCP byte stream into whole PDUs.

    TCP delivers arbitrary slices of the stream, so bytes are buffered until a
    whole command_length is present. A command_length outside
    ``[HEADER_SIZE, max_size]`` means the stream is out of step (or
    hostile) and nothing after it can be trusted: :class:`PduError` is raised
    and the connection should be dropped.
    """

    __slots__ = ("_buffer", "_max_size")

    def __init__(self, max_size: int = MAX_PDU_SIZE) -> None:
        self._buffer = bytearray()
        self._max_size = max_size

    @property
    def pending(self) -> int:
        """Octets held back as the start of an incomplete PDU."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self._buffer
        source: bytes | bytearray
        if buffer:
            buffer += data
            source = buffer
        else:
            source = data
        size = len(source)
        frames: list[bytes] = []
        pos = 0
        unpack = _LENGTH.unpack_from
        limit = self._max_size
        while size - pos >= 4:
            (length,) = unpack(source, pos)
            if length < HEADER_SIZE or length > limit:
                raise PduError(f"command_length {length} out of range", Status.RINVCMDLEN)
            end = pos + length
            if end > size:
                break
            frames.append(bytes(source[pos:end]))
            pos = end
        if source is buffer:
            del buffer[:pos]
        elif pos < size:
            buffer += memoryview(data)[pos:]
        return frames


# ---------------------------------------------------------------------- TLV values


def int_tlv(value: int, size: int) -> bytes:
    """An integer TLV value of ``size`` octets, big-endian."""
    try:
        return value.to_bytes(size, "big")
    except OverflowError:
        raise PduError(f"{value} does not fit {size} octets", Status.RINVPARLEN) from None


def read_int_tlv(raw: bytes) -> int:
    """An integer TLV value of any width; an empty value reads as 0.

    Never raises: a carrier sending an odd-width value must not cost the
    session its connection.
    """
    return int.from_bytes(raw, "big")


def cstring_tlv(text: str) -> bytes:
    """A C-octet string TLV value (text and NUL)."""
    try:
        raw = text.encode("latin-1")
    except UnicodeEncodeError:
        raise PduError(f"{text!r} is not latin-1 text", Status.RINVPARLEN) from None
    if b"\x00" in raw:
        raise PduError(f"{text!r} contains NUL", Status.RINVPARLEN)
    return raw + b"\x00"


def read_cstring_tlv(raw: bytes) -> str:
    """A C-octet string TLV value, tolerating a missing NUL. Never raises."""
    end = raw.find(b"\x00")
    return (raw if end < 0 else raw[:end]).decode("latin-1")
