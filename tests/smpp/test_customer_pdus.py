"""What a customer's SMPP platform reads from smsgate's deliver_sm: receipts
that any receipt parser reads back to the same facts, and MO in a coding that
carries the text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from smsgate.core.encoding import decode_gsm7
from smsgate.core.states import Reason, State
from smsgate.smpp.customer_pdus import RECEIPT_STAT, inbound_pdu, receipt_pdu
from smsgate.smpp.pdu import CommandId, Pdu, Tag, decode, encode, read_cstring_tlv
from smsgate.smpp.receipt_text import STAT_TO_STATE, parse_receipt_text, receipt_date_ms

FINAL = sorted(RECEIPT_STAT, key=str)
MINUTE = 60_000


@given(
    message_id=st.integers(1, 2**63 - 1),
    state=st.sampled_from(FINAL),
    reason=st.sampled_from(list(Reason)),
    submitted=st.integers(946_684_800_000, 4_102_444_800_000),
    took=st.integers(0, 10**9),
    preview=st.text(max_size=40),
)
def test_a_receipt_reads_back_as_the_same_message_state_and_times(
    message_id: int, state: State, reason: Reason, submitted: int, took: int, preview: str
) -> None:
    body = receipt_pdu(
        {
            "message_id": message_id,
            "state": state.value,
            "reason": reason.value,
            "recipient": "+254712345678",
            "sender": "SMSGATE",
            "created_at": submitted - 5,
            "submitted_at": submitted,
            "done_at": submitted + took,
            "preview": preview,
        }
    )
    wire = decode(encode(Pdu(CommandId.DELIVER_SM, 7, body=body)))
    assert wire.body == body  # the codec carries it unchanged
    parsed = parse_receipt_text(body.short_message.decode("ascii"))
    assert parsed is not None
    assert (
        parsed.message_id
        == str(message_id)
        == read_cstring_tlv(body.tlvs[Tag.RECEIPTED_MESSAGE_ID])
    )
    assert parsed.stat == RECEIPT_STAT[state][0]
    if state in (State.DELIVERED, State.EXPIRED, State.REJECTED):
        assert STAT_TO_STATE[parsed.stat][0] is state
    assert receipt_date_ms(parsed.submit_date) == submitted // MINUTE * MINUTE
    assert receipt_date_ms(parsed.done_date) == (submitted + took) // MINUTE * MINUTE
    assert parsed.delivered == (1 if state is State.DELIVERED else 0)


@given(st.text(min_size=1, max_size=600))
def test_an_inbound_message_carries_its_text_whole(text: str) -> None:
    body = inbound_pdu({"sender": "+254712345678", "recipient": "22141", "body": text})
    data = body.short_message or body.tlvs[Tag.MESSAGE_PAYLOAD]
    assert len(body.short_message) <= 254
    if body.data_coding == 0:
        assert decode_gsm7(data) == text
    else:
        assert body.data_coding == 8
        assert data.decode("utf-16-be", "surrogatepass") == text
    assert (body.source_addr, body.destination_addr) == ("254712345678", "22141")
