"""What a claimed message becomes on the wire to the carrier."""

from __future__ import annotations

from smsgate.core.encoding import decode_gsm7, encode_gsm7
from smsgate.core.model import PartOf
from smsgate.smpp.pdu import ESM_UDHI, Tag, int_tlv
from smsgate.smpp.smpp_time import parse_smpp_time
from smsgate.smpp.wire import concatenation, submit_bodies
from tests.smpp.test_connector import outbound


def test_an_expiry_travels_as_the_validity_period_of_every_part() -> None:
    expires = 1_780_000_123_400
    bodies = submit_bodies(outbound(7, "+254712345678", "x" * 200, expires_at=expires), reference=9)
    assert len(bodies) == 2
    for body in bodies:
        assert parse_smpp_time(body.validity_period, 0) == expires
    [plain] = submit_bodies(outbound(8, "+254712345678", "hello"), reference=10)
    assert plain.validity_period == ""


def test_a_customers_own_part_goes_under_its_own_reference() -> None:
    [part] = submit_bodies(outbound(9, "+254712345678", "end", part_of="300/3/3"), reference=5)
    assert part.esm_class == ESM_UDHI
    assert part.short_message == bytes((6, 8, 4, 1, 44, 3, 3)) + encode_gsm7("end")
    [narrow] = submit_bodies(outbound(10, "+254712345678", "你好", part_of="7/2/1"), reference=5)
    assert narrow.short_message == bytes((5, 0, 3, 7, 2, 1)) + "你好".encode("utf-16-be")
    assert narrow.data_coding == 8
    [sar] = submit_bodies(
        outbound(9, "+254712345678", "end", part_of="300/3/3"), reference=5, sar=True
    )
    assert sar.esm_class == 0 and sar.short_message == encode_gsm7("end")
    assert sar.tlvs == {
        Tag.SAR_MSG_REF_NUM: int_tlv(300, 2),
        Tag.SAR_TOTAL_SEGMENTS: int_tlv(3, 1),
        Tag.SAR_SEGMENT_SEQNUM: int_tlv(3, 1),
    }
    # Read back as the SMSC reads it: the same place, the same text.
    text, place = concatenation(part, part.short_message)
    assert (decode_gsm7(text), place) == ("end", PartOf(300, 3, 3))
