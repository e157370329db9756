"""Stored messages as submit_sm bodies, and inbound deliver_sm bodies as text.

The store keeps a message as text (or hex octets) with its encoding; the
carrier wants data_coding, esm_class, a user data header for long messages
and registered_delivery. This module is that translation in both directions,
pure so it can be tested byte by byte.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from smsgate.core.encoding import Encoding, decode_gsm7, encode_gsm7, split_parts
from smsgate.core.model import MessageFlag, PartOf
from smsgate.smpp.pdu import ESM_UDHI, ShortMessage, Tag, int_tlv, read_int_tlv
from smsgate.smpp.smpp_time import format_smpp_time
from smsgate.store.records import OutboundMessage

DATA_CODING = {Encoding.GSM7: 0x00, Encoding.UCS2: 0x08, Encoding.BINARY: 0x04}
# data_coding with a message class: 0xF0 group for GSM7/8-bit, 0x18 for UCS2 class 0.
FLASH_DATA_CODING = {Encoding.GSM7: 0x10, Encoding.UCS2: 0x18, Encoding.BINARY: 0x14}
TON_INTERNATIONAL, TON_ALPHANUMERIC, NPI_E164 = 1, 5, 1
_FLASH = int(MessageFlag.FLASH)


def _source(sender: str) -> tuple[str, int, int]:
    """Address, TON and NPI of an originator: digits are a number, the rest a name."""
    digits = sender.lstrip("+")
    if digits.isdigit():
        return digits, TON_INTERNATIONAL, NPI_E164
    return sender, TON_ALPHANUMERIC, 0


def message_parts(message: OutboundMessage, *, reference: int, sar: bool = False) -> list[bytes]:
    """The short_message payload of each part (UDH included when ``sar`` is off)."""
    encoding = Encoding(message.encoding)
    if encoding is Encoding.BINARY:
        return [bytes.fromhex(message.body)]
    encode = encode_gsm7 if encoding is Encoding.GSM7 else _ucs2
    # A customer's own part is one SMS; a long text of ours is split here.
    texts = [message.body] if message.part_of is not None else split_parts(message.body)
    places = _places(message, reference, len(texts), sar)
    return [
        (b"" if sar or place is None else concatenation_udh(place)) + encode(text)
        for text, place in zip(texts, places, strict=True)
    ]


def concatenation_udh(place: PartOf) -> bytes:
    """The user data header of a concatenated part (3GPP TS 23.040 9.2.3.24.1,
    and 9.2.3.24.8 for a 16-bit reference)."""
    reference, total, seq = place.reference, place.total, place.seq
    if place.wide:
        return bytes((0x06, 0x08, 0x04, reference >> 8, reference & 0xFF, total, seq))
    return bytes((0x05, 0x00, 0x03, reference, total, seq))


def submit_bodies(
    message: OutboundMessage, *, reference: int, sar: bool = False
) -> list[ShortMessage]:
    """One submit_sm body per part; ``reference`` ties the parts of one message
    (a customer's own part keeps the customer's reference)."""
    encoding = Encoding(message.encoding)
    flash = bool(message.flags & _FLASH)
    data_coding = (FLASH_DATA_CODING if flash else DATA_CODING)[encoding]
    source, source_ton, source_npi = _source(message.sender)
    payloads = message_parts(message, reference=reference, sar=sar)
    total = len(payloads)
    # The carrier keeps trying no longer than the customer allowed.
    validity = "" if message.expires_at is None else format_smpp_time(message.expires_at)
    places = _places(message, reference, total, sar)
    bodies = []
    for payload, place in zip(payloads, places, strict=True):
        esm_class = 0
        tlvs: dict[int, bytes] = {}
        if encoding is Encoding.BINARY or (place is not None and not sar):
            esm_class = ESM_UDHI
        elif place is not None:
            tlvs = {
                Tag.SAR_MSG_REF_NUM: int_tlv(place.reference, 2),
                Tag.SAR_TOTAL_SEGMENTS: int_tlv(place.total, 1),
                Tag.SAR_SEGMENT_SEQNUM: int_tlv(place.seq, 1),
            }
        bodies.append(
            ShortMessage(
                source_addr=source,
                source_addr_ton=source_ton,
                source_addr_npi=source_npi,
                destination_addr=message.recipient.lstrip("+"),
                dest_addr_ton=TON_INTERNATIONAL,
                dest_addr_npi=NPI_E164,
                esm_class=esm_class,
                data_coding=data_coding,
                registered_delivery=1 if message.want_report else 0,
                validity_period=validity,
                short_message=payload,
                tlvs=tlvs,
            )
        )
    return bodies


def _places(message: OutboundMessage, reference: int, total: int, sar: bool) -> list[PartOf | None]:
    """Where each of the message's ``total`` parts belongs: the customer's own
    place for a part it cut; ours for the parts of a long text, under an 8-bit
    reference in a UDH and a 16-bit one in the SAR TLVs; none for one SMS."""
    if message.part_of is not None:
        return [PartOf.parse(message.part_of)]
    if total == 1:
        return [None]
    ours = reference & (0xFFFF if sar else 0xFF)
    return [PartOf(ours, total, seq) for seq in range(1, total + 1)]


def _ucs2(text: str) -> bytes:
    return text.encode("utf-16-be")


# ------------------------------------------------------------------ inbound


@dataclass(frozen=True, slots=True)
class InboundPart:
    """One deliver_sm of an MO message: its text and, if multipart, its place."""

    text: str
    encoding: Encoding
    reference: int | None = None
    total: int = 1
    seq: int = 1


def read_inbound(body: ShortMessage) -> InboundPart:
    """Text and concatenation info of an MO deliver_sm (UDH or SAR TLVs)."""
    payload, place = concatenation(
        body, body.short_message or body.tlvs.get(Tag.MESSAGE_PAYLOAD, b"")
    )
    reference, total, seq = (
        (None, 1, 1) if place is None else (place.reference, place.total, place.seq)
    )
    coding = body.data_coding
    if coding in (0x08, 0x18) or coding & 0xEC == 0x08:
        text = payload.decode("utf-16-be", "replace")
        return InboundPart(text, Encoding.UCS2, reference, total, seq)
    if coding == 0x03:  # Latin-1
        text = payload.decode("latin-1")
    else:
        try:
            text = decode_gsm7(payload)
        except ValueError:
            text = payload.decode("latin-1")
    return InboundPart(text, Encoding.GSM7, reference, total, seq)


def concatenation(body: ShortMessage, payload: bytes) -> tuple[bytes, PartOf | None]:
    """The text octets of a submit_sm or deliver_sm whose user data is
    ``payload`` (its UDH taken off when esm_class says it has one) and, when
    it is a part of a long message, its place: from the UDH's concatenation
    element or the SAR TLVs. A place that cannot be (a part 0, or beyond the
    count) or a "part 1 of 1" is none."""
    place = None
    if body.esm_class & ESM_UDHI and payload:
        header_length = payload[0]
        header, payload = payload[1 : 1 + header_length], payload[1 + header_length :]
        place = _udh_place(header)
    elif Tag.SAR_MSG_REF_NUM in body.tlvs:
        place = PartOf(
            read_int_tlv(body.tlvs[Tag.SAR_MSG_REF_NUM]),
            read_int_tlv(body.tlvs.get(Tag.SAR_TOTAL_SEGMENTS, b"\x01")),
            read_int_tlv(body.tlvs.get(Tag.SAR_SEGMENT_SEQNUM, b"\x01")),
        )
    if place is not None and not (place.total >= 2 and 1 <= place.seq <= place.total):
        place = None
    return payload, place


def _udh_place(header: bytes) -> PartOf | None:
    """The place a UDH's concatenation element gives, if it has one."""
    at = 0
    while at + 2 <= len(header):
        element, length = header[at], header[at + 1]
        data = header[at + 2 : at + 2 + length]
        if element == 0x00 and length == 3 and len(data) == 3:
            return PartOf(data[0], data[1], data[2])
        if element == 0x08 and length == 4 and len(data) == 4:
            return PartOf((data[0] << 8) | data[1], data[2], data[3])
        at += 2 + length
    return None


@dataclass
class Reassembler:
    """Joins the parts of multipart MO messages; incomplete ones expire.

    Parts of one message share (source, destination, reference, total); they
    may arrive in any order and a part may arrive twice (a carrier retry).
    """

    max_age_seconds: float = 600.0
    _pending: dict[tuple[str, str, int, int], tuple[float, dict[int, InboundPart]]] = field(
        default_factory=dict
    )

    def add(self, source: str, destination: str, part: InboundPart) -> InboundPart | None:
        """The whole message once its last part is in, else None."""
        if part.reference is None or part.total <= 1:
            return part
        now = time.monotonic()
        self._expire(now)
        key = (source, destination, part.reference, part.total)
        _, parts = self._pending.setdefault(key, (now, {}))
        parts[part.seq] = part
        if len(parts) < part.total:
            return None
        del self._pending[key]
        ordered = [parts[seq] for seq in sorted(parts)]
        ucs2 = any(p.encoding is Encoding.UCS2 for p in ordered)
        encoding = Encoding.UCS2 if ucs2 else part.encoding
        return InboundPart("".join(p.text for p in ordered), encoding)

    def _expire(self, now: float) -> None:
        stale = [
            key
            for key, (started, _) in self._pending.items()
            if now - started > self.max_age_seconds
        ]
        for key in stale:
            del self._pending[key]
