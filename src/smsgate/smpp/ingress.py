"""A customer's submit_sm as a ``MessageRequest``, or the command_status that
refuses it: the SMPP dialect's translation, pure so it is tested field by field.

Long messages: a customer may send one submit_sm whose ``message_payload``
holds the whole text (the gateway splits and concatenates it as for every
dialect), or parts of its own (a concatenation UDH with esm_class UDHI, or
the SAR TLVs). Parts are kept as parts, not reassembled: each is accepted
as a message of its own with its own id (so every submit_sm is answered
without waiting for parts that may never come), and goes to the carrier
under the customer's reference, part count and number, so the handset
joins it with its siblings. Other UDH elements of a text are dropped.
Binary (data_coding 2 or 4) keeps its UDH and goes octet for octet.

Replies: an account whose ``repliable`` option is on sends a submit_sm
without a source_addr from the gateway's reply numbers, as EAPI does without
a sender, so the handset's answer is that account's and comes back over its
SMPP sessions; a source_addr of its own wins.
"""

from __future__ import annotations

from smsgate.core.encoding import decode_gsm7
from smsgate.core.model import MessageFlag, MessageRequest, RejectCode
from smsgate.smpp.pdu import ESM_UDHI, ShortMessage, Status, Tag
from smsgate.smpp.smpp_time import parse_smpp_time
from smsgate.smpp.wire import concatenation

TON_INTERNATIONAL = 1
_BINARY_CODINGS = frozenset({0x02, 0x04})

# Why the core refused a message, as the status its submit_sm_resp carries.
STATUS_OF_REJECTION: dict[RejectCode, Status] = {
    RejectCode.INVALID_NUMBER: Status.RINVDSTADR,
    RejectCode.NETWORK_NOT_ALLOWED: Status.RINVDSTADR,
    RejectCode.INVALID_SENDER: Status.RINVSRCADR,
    RejectCode.EMPTY_MESSAGE: Status.RINVMSGLEN,
    RejectCode.INVALID_SEND_TIME: Status.RINVSCHED,
    RejectCode.TOO_LONG: Status.RINVMSGLEN,
    RejectCode.MALFORMED: Status.RSUBMITFAIL,
}


def read_submit(
    sm: ShortMessage, *, now_ms: int, default_sender: str, repliable: bool = False
) -> MessageRequest | Status:
    """The message ``sm`` asks for, or why it cannot be one; ``repliable`` is
    the account's default for a submit_sm that names no source."""
    if not sm.destination_addr:
        return Status.RINVDSTADR
    payload = sm.tlvs.get(Tag.MESSAGE_PAYLOAD)
    if payload is not None and sm.short_message:
        return Status.RINVPARLEN  # section 5.3.2.32: one or the other
    data = sm.short_message if payload is None else payload
    coding = sm.data_coding
    binary = coding in _BINARY_CODINGS or (coding & 0xF4) == 0xF4
    if binary:
        # The core sends binary with UDHI set: give a headerless one an empty UDH.
        octets = data if sm.esm_class & ESM_UDHI else b"\x00" + data
        text, part_of = "", None
    else:
        if sm.esm_class & ESM_UDHI and (not data or data[0] + 1 > len(data)):
            return Status.RINVESMCLASS
        data, part_of = concatenation(sm, data)
        decoded = _text(data, coding)
        if decoded is None:
            return Status.RSUBMITFAIL
        text, octets = decoded, None
    try:
        send_at = parse_smpp_time(sm.schedule_delivery_time, now_ms)
    except ValueError:
        return Status.RINVSCHED
    try:
        expires = parse_smpp_time(sm.validity_period, now_ms)
    except ValueError:
        return Status.RINVEXPIRY
    if expires is not None and expires <= max(now_ms, send_at or 0):
        return Status.RINVEXPIRY
    return MessageRequest(
        recipient=_number(sm.destination_addr, sm.dest_addr_ton),
        text=text,
        part_of=part_of,
        sender=sm.source_addr or default_sender,
        send_at_ms=send_at if send_at is not None and send_at > now_ms else None,
        want_report=bool(sm.registered_delivery & 0x03),
        binary=octets,
        expires_at_ms=expires,
        flags=int(MessageFlag.REPLIABLE) if repliable and not sm.source_addr else 0,
    )


def _text(data: bytes, coding: int) -> str | None:
    """The text of a non-binary data_coding, None when it cannot be read."""
    try:
        if coding in (0x08, 0x18) or (coding & 0xEC) == 0x08:
            return data.decode("utf-16-be") if len(data) % 2 == 0 else None
        if coding == 0x01:
            return data.decode("ascii")
        if coding == 0x03:
            return data.decode("latin-1")
        if coding == 0x00 or (coding & 0xF4) == 0xF0 or (coding & 0xEC) == 0x00:
            return decode_gsm7(data)
    except (UnicodeDecodeError, ValueError):
        return None
    return None


def _number(address: str, ton: int) -> str:
    """International numbers carry no ``+`` on SMPP; the core reads them with one."""
    if ton == TON_INTERNATIONAL and address.isdigit():
        return "+" + address
    return address
