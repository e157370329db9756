"""A customer's submit_sm read as a message request, field by field."""

from __future__ import annotations

from smsgate.core.model import MessageFlag, MessageRequest, PartOf
from smsgate.smpp.ingress import read_submit
from smsgate.smpp.pdu import ESM_UDHI, ShortMessage, Status, Tag

NOW = 1_780_000_000_000


def read(**fields: object) -> MessageRequest | Status:
    values: dict[str, object] = {"source_addr": "SHOP", "destination_addr": "254712345678"}
    values.update(fields)
    return read_submit(ShortMessage(**values), now_ms=NOW, default_sender="SMSGATE")  # type: ignore[arg-type]


def text(**fields: object) -> str:
    request = read(**fields)
    assert isinstance(request, MessageRequest), request
    return request.text


def test_each_text_coding() -> None:
    assert text(short_message=b"Hi \x00 \x1b\x3c", data_coding=0) == "Hi @ ["
    assert text(short_message=b"plain", data_coding=1) == "plain"
    assert text(short_message="café".encode("latin-1"), data_coding=3) == "café"
    assert text(short_message="你好".encode("utf-16-be"), data_coding=8) == "你好"
    assert text(tlvs={Tag.MESSAGE_PAYLOAD: b"long " * 100}) == "long " * 100


def test_a_part_keeps_its_place_and_binary_keeps_its_header() -> None:
    udh = bytes((5, 0, 3, 7, 2, 1))
    part = read(short_message=udh + b"part", esm_class=ESM_UDHI)
    assert isinstance(part, MessageRequest)
    assert (part.text, part.part_of) == ("part", PartOf(7, 2, 1))
    wide = read(short_message=bytes((6, 8, 4, 1, 44, 3, 3)) + b"end", esm_class=ESM_UDHI)
    assert isinstance(wide, MessageRequest) and wide.part_of == PartOf(300, 3, 3)
    sar = read(
        short_message=b"middle",
        tlvs={
            Tag.SAR_MSG_REF_NUM: b"\x12\x34",
            Tag.SAR_TOTAL_SEGMENTS: b"\x03",
            Tag.SAR_SEGMENT_SEQNUM: b"\x02",
        },
    )
    assert isinstance(sar, MessageRequest) and sar.part_of == PartOf(0x1234, 3, 2)
    # A UDH without a concatenation element, a part 0 and a part 1 of 1 are
    # whole messages: their text is all there is.
    for header in (bytes((4, 0x0A, 2, 0, 0)), bytes((5, 0, 3, 7, 2, 0)), bytes((5, 0, 3, 7, 1, 1))):
        whole = read(short_message=header + b"text", esm_class=ESM_UDHI)
        assert isinstance(whole, MessageRequest) and (whole.text, whole.part_of) == ("text", None)
    binary = read(short_message=udh + b"\x01\x02", esm_class=ESM_UDHI, data_coding=4)
    assert isinstance(binary, MessageRequest) and binary.binary == udh + b"\x01\x02"
    bare = read(short_message=b"\x01", data_coding=4)
    assert isinstance(bare, MessageRequest) and bare.binary == b"\x00\x01"


def test_addresses_reports_and_schedule() -> None:
    request = read(short_message=b"x", registered_delivery=1, source_addr="")
    assert isinstance(request, MessageRequest)
    assert (request.recipient, request.sender, request.want_report) == (
        "+254712345678",
        "SMSGATE",
        True,
    )
    later = read(short_message=b"x", schedule_delivery_time="000000010000000R")
    assert isinstance(later, MessageRequest) and later.send_at_ms == NOW + 3_600_000
    assert read(short_message=b"x", registered_delivery=0).want_report is False  # type: ignore[union-attr]


def test_refusals_carry_the_standard_status() -> None:
    assert read(destination_addr="", short_message=b"x") == Status.RINVDSTADR
    assert read(short_message=b"x", tlvs={Tag.MESSAGE_PAYLOAD: b"y"}) == Status.RINVPARLEN
    assert read(short_message=b"\xff", data_coding=0) == Status.RSUBMITFAIL
    assert read(short_message=b"\x00", data_coding=8) == Status.RSUBMITFAIL
    assert read(short_message=b"\x09ab", esm_class=ESM_UDHI) == Status.RINVESMCLASS
    assert read(short_message=b"x", schedule_delivery_time="soon") == Status.RINVSCHED
    assert read(short_message=b"x", validity_period="bad") == Status.RINVEXPIRY
    expired = read(
        short_message=b"x",
        schedule_delivery_time="000000020000000R",
        validity_period="000000010000000R",
    )
    assert expired == Status.RINVEXPIRY


def test_a_validity_period_becomes_the_messages_expiry() -> None:
    relative = read(short_message=b"x", validity_period="000000013000000R")  # 1 h 30 min
    assert isinstance(relative, MessageRequest)
    assert relative.expires_at_ms == NOW + 90 * 60_000
    assert read(short_message=b"x").expires_at_ms is None  # type: ignore[union-attr]


def test_a_sourceless_submit_of_a_repliable_account_goes_from_a_reply_number() -> None:
    def flags(source: str, repliable: bool) -> int:
        request = read_submit(
            ShortMessage(source_addr=source, destination_addr="254712345678", short_message=b"x"),
            now_ms=NOW,
            default_sender="SMSGATE",
            repliable=repliable,
        )
        assert isinstance(request, MessageRequest)
        return request.flags

    assert flags("", repliable=True) == MessageFlag.REPLIABLE
    assert flags("SHOP", repliable=True) == 0  # its own source wins
    assert flags("", repliable=False) == 0
