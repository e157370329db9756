"""The SMPP 3.4 codec: round trips, hostile input, stream framing, and spec bytes."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsgate.smpp.pdu import (
    HEADER_SIZE,
    MAX_PDU_SIZE,
    Bind,
    BindResp,
    CancelSm,
    CommandId,
    Framer,
    MessageIdResp,
    Pdu,
    PduError,
    QuerySm,
    QuerySmResp,
    ShortMessage,
    Status,
    Tag,
    cstring_tlv,
    decode,
    encode,
    int_tlv,
    read_cstring_tlv,
    read_int_tlv,
)

# --- strategies -----------------------------------------------------------------------------


def cstrings(size: int) -> st.SearchStrategy[str]:
    """Latin-1 text that fits a C-octet string field of ``size`` octets (NUL included)."""
    return st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=size - 1)


u8 = st.integers(0, 0xFF)
sequences = st.integers(0, 0xFFFFFFFF)
error_statuses = st.one_of(st.sampled_from(list(Status)[1:]), st.integers(1, 0xFFFFFFFF))

binds = st.builds(
    Bind,
    system_id=cstrings(16),
    password=cstrings(9),
    system_type=cstrings(13),
    interface_version=u8,
    addr_ton=u8,
    addr_npi=u8,
    address_range=cstrings(41),
)
short_messages = st.builds(
    ShortMessage,
    source_addr=cstrings(21),
    destination_addr=cstrings(21),
    short_message=st.binary(max_size=254),
    data_coding=u8,
    esm_class=u8,
    registered_delivery=u8,
    source_addr_ton=u8,
    source_addr_npi=u8,
    dest_addr_ton=u8,
    dest_addr_npi=u8,
    service_type=cstrings(6),
    protocol_id=u8,
    priority_flag=u8,
    schedule_delivery_time=cstrings(17),
    validity_period=cstrings(17),
    replace_if_present_flag=u8,
    sm_default_msg_id=u8,
    tlvs=st.dictionaries(st.integers(0, 0xFFFF), st.binary(max_size=300), max_size=4),
)

BIND_COMMANDS = [CommandId.BIND_RECEIVER, CommandId.BIND_TRANSMITTER, CommandId.BIND_TRANSCEIVER]
BIND_RESPONSES = [CommandId(c | 0x80000000) for c in BIND_COMMANDS]
SM_COMMANDS = [CommandId.SUBMIT_SM, CommandId.DELIVER_SM]
ID_RESPONSES = [CommandId.SUBMIT_SM_RESP, CommandId.DELIVER_SM_RESP]
NO_BODY = [
    CommandId.GENERIC_NACK,
    CommandId.UNBIND,
    CommandId.UNBIND_RESP,
    CommandId.ENQUIRE_LINK,
    CommandId.ENQUIRE_LINK_RESP,
    CommandId.CANCEL_SM_RESP,
]
query_sms = st.builds(QuerySm, cstrings(65), cstrings(21), u8, u8)
query_sm_resps = st.builds(QuerySmResp, cstrings(65), cstrings(17), u8, u8)
cancel_sms = st.builds(
    CancelSm, cstrings(65), cstrings(6), cstrings(21), u8, u8, cstrings(21), u8, u8
)


def _responses(
    commands: list[CommandId], body: st.SearchStrategy[object]
) -> st.SearchStrategy[Pdu]:
    ok = st.builds(Pdu, st.sampled_from(commands), sequences, st.just(0), body)
    failed = st.builds(Pdu, st.sampled_from(commands), sequences, error_statuses, body)
    failed_bare = st.builds(Pdu, st.sampled_from(commands), sequences, error_statuses, st.none())
    return st.one_of(ok, failed, failed_bare)


pdus = st.one_of(
    st.builds(Pdu, st.sampled_from(BIND_COMMANDS), sequences, st.just(0), binds),
    _responses(BIND_RESPONSES, st.builds(BindResp, cstrings(16))),
    st.builds(Pdu, st.sampled_from(SM_COMMANDS), sequences, st.just(0), short_messages),
    _responses(ID_RESPONSES, st.builds(MessageIdResp, cstrings(65))),
    st.builds(Pdu, st.sampled_from(NO_BODY), sequences, st.one_of(st.just(0), error_statuses)),
    st.builds(Pdu, st.just(CommandId.QUERY_SM), sequences, st.just(0), query_sms),
    _responses([CommandId.QUERY_SM_RESP], query_sm_resps),
    st.builds(Pdu, st.just(CommandId.CANCEL_SM), sequences, st.just(0), cancel_sms),
)


# --- round trips ----------------------------------------------------------------------------


@given(pdus)
@settings(max_examples=500)
def test_every_pdu_kind_survives_a_round_trip(pdu: Pdu) -> None:
    frame = encode(pdu)
    assert len(frame) == int.from_bytes(frame[:4], "big") <= MAX_PDU_SIZE
    assert decode(frame) == pdu


@given(pdus)
def test_decoded_enums_are_the_named_members(pdu: Pdu) -> None:
    decoded = decode(encode(pdu))
    assert type(decoded.command_id) is CommandId
    if decoded.command_status in set(Status):
        assert type(decoded.command_status) is Status


@pytest.mark.parametrize(
    ("command", "expected"),
    [(CommandId.SUBMIT_SM_RESP, MessageIdResp("")), (CommandId.BIND_RECEIVER_RESP, BindResp(""))],
)
def test_an_ok_response_without_body_is_sent_with_an_empty_id(
    command: CommandId, expected: object
) -> None:
    frame = encode(Pdu(command, 9))
    assert frame[HEADER_SIZE:] == b"\x00"
    assert decode(frame).body == expected


def test_an_error_response_without_body_is_header_only() -> None:
    frame = encode(Pdu(CommandId.SUBMIT_SM_RESP, 3, Status.RTHROTTLED))
    assert len(frame) == HEADER_SIZE
    assert decode(frame) == Pdu(CommandId.SUBMIT_SM_RESP, 3, Status.RTHROTTLED, None)


# --- golden bytes, laid out field by field from the SMPP 3.4 specification ------------------

BIND_TRANSCEIVER_GOLDEN = bytes.fromhex(
    "0000002F"  # command_length 47
    "00000009"  # command_id bind_transceiver
    "00000000"  # command_status
    "00000001"  # sequence_number
    "534D5050335445535400"  # system_id "SMPP3TEST"
    "736563726574303800"  # password "secret08"
    "5355424D49543100"  # system_type "SUBMIT1"
    "34"  # interface_version 3.4
    "01"  # addr_ton international
    "01"  # addr_npi E.164
    "00"  # address_range ""
)

SUBMIT_SM_GOLDEN = bytes.fromhex(
    "0000003C"  # command_length 60
    "00000004"  # command_id submit_sm
    "00000000"  # command_status
    "00000002"  # sequence_number
    "00"  # service_type ""
    "05"  # source_addr_ton alphanumeric
    "00"  # source_addr_npi unknown
    "53484F5000"  # source_addr "SHOP"
    "01"  # dest_addr_ton international
    "01"  # dest_addr_npi E.164
    "34343737303039303031323300"  # destination_addr "447700900123"
    "00"  # esm_class
    "00"  # protocol_id
    "00"  # priority_flag
    "00"  # schedule_delivery_time ""
    "00"  # validity_period ""
    "01"  # registered_delivery: receipt on final outcome
    "00"  # replace_if_present_flag
    "00"  # data_coding SMSC default alphabet
    "00"  # sm_default_msg_id
    "05"  # sm_length
    "48656C6C6F"  # short_message "Hello"
    "020C"  # TLV tag sar_msg_ref_num
    "0002"  # TLV length
    "0001"  # TLV value: reference 1
)


def test_bind_transceiver_matches_the_spec_layout() -> None:
    pdu = Pdu(
        CommandId.BIND_TRANSCEIVER,
        1,
        body=Bind("SMPP3TEST", "secret08", "SUBMIT1", 0x34, addr_ton=1, addr_npi=1),
    )
    assert encode(pdu) == BIND_TRANSCEIVER_GOLDEN
    assert decode(BIND_TRANSCEIVER_GOLDEN) == pdu


def test_submit_sm_matches_the_spec_layout() -> None:
    pdu = Pdu(
        CommandId.SUBMIT_SM,
        2,
        body=ShortMessage(
            source_addr="SHOP",
            source_addr_ton=5,
            source_addr_npi=0,
            destination_addr="447700900123",
            registered_delivery=1,
            short_message=b"Hello",
            tlvs={Tag.SAR_MSG_REF_NUM: b"\x00\x01"},
        ),
    )
    assert encode(pdu) == SUBMIT_SM_GOLDEN
    assert decode(SUBMIT_SM_GOLDEN) == pdu


def test_query_sm_and_its_resp_match_the_spec_layout() -> None:
    query = b"42\x00" + b"\x01\x01" + b"SHOP\x00"
    assert decode(struct.pack(">IIII", 16 + len(query), 3, 0, 7) + query) == Pdu(
        CommandId.QUERY_SM, 7, 0, QuerySm("42", "SHOP", 1, 1)
    )
    resp = Pdu(CommandId.QUERY_SM_RESP, 7, 0, QuerySmResp("42", "261201120000000+", 2, 0))
    assert encode(resp)[16:] == b"42\x00" + b"261201120000000+\x00" + b"\x02\x00"


def test_cancel_sm_matches_the_spec_layout() -> None:
    body = b"\x00" + b"42\x00" + b"\x05\x00SHOP\x00" + b"\x01\x01254712345678\x00"
    assert decode(struct.pack(">IIII", 16 + len(body), 8, 0, 9) + body) == Pdu(
        CommandId.CANCEL_SM, 9, 0, CancelSm("42", "", "SHOP", 5, 0, "254712345678", 1, 1)
    )
    assert encode(Pdu(CommandId.CANCEL_SM_RESP, 9, 0)) == struct.pack(">IIII", 16, 0x80000008, 0, 9)


def test_bind_resp_with_sc_interface_version_tlv_is_read() -> None:
    frame = bytes.fromhex(
        "0000001A"  # command_length 26
        "80000009"  # command_id bind_transceiver_resp
        "00000000"  # command_status
        "00000001"  # sequence_number
        "534D534300"  # system_id "SMSC"
        "0210"  # TLV tag sc_interface_version
        "0001"  # TLV length
        "34"  # TLV value: 3.4
    )
    assert decode(frame) == Pdu(CommandId.BIND_TRANSCEIVER_RESP, 1, 0, BindResp("SMSC"))


def test_enquire_link_is_a_bare_header() -> None:
    frame = encode(Pdu(CommandId.ENQUIRE_LINK, 0x7FFFFFFF))
    assert frame == bytes.fromhex("0000001000000015000000007FFFFFFF")


# --- hostile input ----------------------------------------------------------------------------


def _decode_or_pdu_error(frame: bytes) -> None:
    """``decode`` either yields a PDU that re-encodes stably, or raises PduError."""
    try:
        pdu = decode(frame)
    except PduError as exc:
        assert isinstance(exc.command_status, int)
        return
    try:
        again = encode(pdu)
    except PduError:
        return  # e.g. a 255-octet short_message: readable, but not ours to send
    assert decode(again) == pdu


@given(st.binary(max_size=400))
@settings(max_examples=500)
def test_decode_of_arbitrary_bytes_only_raises_pdu_error(frame: bytes) -> None:
    _decode_or_pdu_error(frame)


@given(st.sampled_from(list(CommandId)), sequences, st.integers(0, 0xFF), st.binary(max_size=300))
@settings(max_examples=1000)
def test_decode_of_arbitrary_bodies_only_raises_pdu_error(
    command: CommandId, sequence: int, status: int, body: bytes
) -> None:
    header = struct.pack(">IIII", HEADER_SIZE + len(body), command, status, sequence)
    _decode_or_pdu_error(header + body)


@given(
    pdus,
    st.lists(
        st.tuples(st.sampled_from(["flip", "insert", "delete", "truncate"]), st.integers(0), u8),
        min_size=1,
        max_size=4,
    ),
    st.booleans(),
)
@settings(max_examples=1000)
def test_decode_of_mutated_frames_only_raises_pdu_error(
    pdu: Pdu, mutations: list[tuple[str, int, int]], fix_length: bool
) -> None:
    frame = bytearray(encode(pdu))
    for kind, where, value in mutations:
        at = where % (len(frame) + 1)
        if kind == "flip" and at < len(frame):
            frame[at] ^= value or 1
        elif kind == "insert":
            frame.insert(at, value)
        elif kind == "delete" and at < len(frame):
            del frame[at]
        elif kind == "truncate":
            del frame[at:]
    if fix_length and len(frame) >= 4:
        frame[:4] = len(frame).to_bytes(4, "big")
    _decode_or_pdu_error(bytes(frame))


def _frame(command: int, body: bytes, status: int = 0, sequence: int = 7) -> bytes:
    return struct.pack(">IIII", HEADER_SIZE + len(body), command, status, sequence) + body


@pytest.mark.parametrize(
    ("frame", "status"),
    [
        (b"", Status.RINVCMDLEN),
        (b"\x00\x00\x00\x10\x00\x00\x00\x15", Status.RINVCMDLEN),
        (_frame(CommandId.ENQUIRE_LINK, b"")[:-1] + b"\x01\x00", Status.RINVCMDLEN),
        (
            b"\x00\x00\x00\x11" + _frame(CommandId.ENQUIRE_LINK, b"")[4:] + b"\x00",
            Status.RINVCMDLEN,
        ),
        (_frame(0x00000003, b""), Status.RINVCMDLEN),  # query_sm without its body
        (_frame(0x00000007, b""), Status.RINVCMDID),  # replace_sm: not supported
        (_frame(0x12345678, b""), Status.RINVCMDID),
        (_frame(CommandId.ENQUIRE_LINK, b"\x00"), Status.RINVCMDLEN),
        (
            _frame(CommandId.BIND_TRANSMITTER, b"A" * 16 + b"\x00pw\x00\x00\x34\x00\x00\x00"),
            Status.RINVSYSID,
        ),
        (
            _frame(CommandId.BIND_TRANSMITTER, b"id\x00" + b"p" * 9 + b"\x00\x00\x34\x00\x00\x00"),
            Status.RINVPASWD,
        ),
        (_frame(CommandId.BIND_TRANSMITTER, b"id\x00pw\x00\x00\x34\x00"), Status.RINVCMDLEN),
        (
            _frame(CommandId.BIND_TRANSMITTER, b"id\x00pw\x00\x00\x34\x00\x00\x00\x00"),
            Status.RINVCMDLEN,
        ),
        (_frame(CommandId.SUBMIT_SM_RESP, b"x" * 65 + b"\x00"), Status.RINVMSGID),
        (_frame(CommandId.SUBMIT_SM_RESP, b"abc"), Status.RINVMSGID),
        (_frame(CommandId.SUBMIT_SM_RESP, b""), Status.RINVCMDLEN),  # OK but no message_id
        (SUBMIT_SM_GOLDEN[:-6], Status.RINVCMDLEN),  # length no longer matches
        (_frame(CommandId.SUBMIT_SM, SUBMIT_SM_GOLDEN[16:-11]), Status.RINVMSGLEN),
        (_frame(CommandId.SUBMIT_SM, SUBMIT_SM_GOLDEN[16:-1]), Status.RINVOPTPARSTREAM),
        (_frame(CommandId.SUBMIT_SM, SUBMIT_SM_GOLDEN[16:-4]), Status.RINVOPTPARSTREAM),
        (_frame(CommandId.SUBMIT_SM, b"CMT\x00\x01\x01" + b"4" * 21), Status.RINVSRCADR),
        (_frame(CommandId.SUBMIT_SM, b"TOOLONG\x00"), Status.RINVSERTYP),
        (_frame(CommandId.SUBMIT_SM, b"\x00\x01\x01"), Status.RINVSRCADR),
        (_frame(CommandId.SUBMIT_SM, b"\x00\x01"), Status.RINVCMDLEN),
    ],
)
def test_malformed_frames_carry_a_status_hint(frame: bytes, status: Status) -> None:
    with pytest.raises(PduError) as caught:
        decode(frame)
    assert caught.value.command_status == status


def test_a_pdu_error_names_the_offending_request() -> None:
    with pytest.raises(PduError) as caught:
        decode(_frame(0x00000103, b"", sequence=42))  # data_sm
    assert (caught.value.command_id, caught.value.sequence) == (0x103, 42)
    assert caught.value.command_status == Status.RINVCMDID


def test_header_only_responses() -> None:
    failed = decode(_frame(CommandId.SUBMIT_SM_RESP, b"", status=Status.RSUBMITFAIL))
    assert failed == Pdu(CommandId.SUBMIT_SM_RESP, 7, Status.RSUBMITFAIL, None)
    refused = decode(_frame(CommandId.BIND_TRANSCEIVER_RESP, b"", status=Status.RINVPASWD))
    assert refused.body is None
    # Some SMSCs acknowledge deliver_sm with a bare header; the id is unused anyway.
    assert decode(_frame(CommandId.DELIVER_SM_RESP, b"")).body == MessageIdResp("")


def test_a_255_octet_short_message_is_read_but_not_sent() -> None:
    body = SUBMIT_SM_GOLDEN[16:-12] + b"\xff" + b"x" * 255  # up to sm_length, then 255
    pdu = decode(_frame(CommandId.DELIVER_SM, body))
    assert isinstance(pdu.body, ShortMessage)
    assert len(pdu.body.short_message) == 255
    with pytest.raises(PduError):
        encode(pdu)


@pytest.mark.parametrize(
    "pdu",
    [
        Pdu(CommandId.BIND_TRANSMITTER, 1, body=Bind("x" * 16, "pw")),
        Pdu(CommandId.BIND_TRANSMITTER, 1, body=Bind("id", "password9")),
        Pdu(CommandId.BIND_TRANSMITTER, 1, body=Bind("id\x00", "pw")),
        Pdu(CommandId.SUBMIT_SM, 1, body=ShortMessage(destination_addr="4477€")),
        Pdu(CommandId.SUBMIT_SM, 1, body=ShortMessage(short_message=b"x" * 255)),
        Pdu(CommandId.SUBMIT_SM, 1, body=ShortMessage(esm_class=256)),
        Pdu(CommandId.SUBMIT_SM, 1, body=ShortMessage(tlvs={Tag.MESSAGE_PAYLOAD: b"x" * 65536})),
        Pdu(CommandId.SUBMIT_SM, 1, body=ShortMessage(tlvs={0x10000: b""})),
        Pdu(CommandId.SUBMIT_SM, 1, body=MessageIdResp("x")),
        Pdu(CommandId.SUBMIT_SM, 1),
        Pdu(CommandId.SUBMIT_SM_RESP, 1, body=MessageIdResp("x" * 65)),
        Pdu(CommandId.ENQUIRE_LINK, 1, body=MessageIdResp("")),
        Pdu(CommandId.ENQUIRE_LINK, -1),
        Pdu(CommandId.ENQUIRE_LINK, 1 << 32),
        Pdu(0x00000103, 1),
    ],
)
def test_encode_refuses_what_a_peer_could_not_read(pdu: Pdu) -> None:
    with pytest.raises(PduError):
        encode(pdu)


def test_encode_accepts_plain_int_command_ids() -> None:
    request = Pdu(CommandId.ENQUIRE_LINK, 5)
    response = Pdu(request.command_id | 0x80000000, request.sequence)
    assert decode(encode(response)) == Pdu(CommandId.ENQUIRE_LINK_RESP, 5)


# --- framing --------------------------------------------------------------------------------


@given(st.lists(pdus, max_size=8), st.lists(st.integers(1, 120), min_size=1))
@settings(max_examples=300)
def test_framer_reassembles_a_stream_cut_anywhere(pdu_list: list[Pdu], cuts: list[int]) -> None:
    frames = [encode(p) for p in pdu_list]
    stream = b"".join(frames)
    framer = Framer()
    out: list[bytes] = []
    at, turn = 0, 0
    while at < len(stream):
        step = cuts[turn % len(cuts)]
        out += framer.feed(stream[at : at + step])
        at += step
        turn += 1
    assert out == frames
    assert framer.pending == 0
    assert [decode(f) for f in out] == pdu_list


def test_framer_holds_a_partial_frame() -> None:
    framer = Framer()
    assert framer.feed(SUBMIT_SM_GOLDEN + BIND_TRANSCEIVER_GOLDEN[:3]) == [SUBMIT_SM_GOLDEN]
    assert framer.pending == 3
    assert framer.feed(b"") == []
    assert framer.feed(BIND_TRANSCEIVER_GOLDEN[3:]) == [BIND_TRANSCEIVER_GOLDEN]
    assert framer.pending == 0


@pytest.mark.parametrize("length", [0, 15, MAX_PDU_SIZE + 1, 0xFFFFFFFF])
def test_framer_refuses_impossible_lengths(length: int) -> None:
    with pytest.raises(PduError) as caught:
        Framer().feed(length.to_bytes(4, "big") + b"\x00" * 12)
    assert caught.value.command_status == Status.RINVCMDLEN


def test_framer_accepts_the_largest_pdu() -> None:
    frame = MAX_PDU_SIZE.to_bytes(4, "big") + b"\x00" * (MAX_PDU_SIZE - 4)
    framer = Framer()
    assert framer.feed(frame[:1000]) == []
    assert framer.feed(frame[1000:]) == [frame]


# --- TLV values -------------------------------------------------------------------------------


@given(
    st.sampled_from([1, 2, 4]).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, 256**n - 1)))
)
def test_int_tlv_round_trip(case: tuple[int, int]) -> None:
    size, value = case
    raw = int_tlv(value, size)
    assert len(raw) == size
    assert read_int_tlv(raw) == value


def test_int_tlv_values() -> None:
    assert int_tlv(2, 1) == b"\x02"
    assert int_tlv(0x1234, 2) == b"\x12\x34"
    assert read_int_tlv(b"") == 0
    with pytest.raises(PduError):
        int_tlv(256, 1)
    with pytest.raises(PduError):
        int_tlv(-1, 2)


@given(cstrings(65))
def test_cstring_tlv_round_trip(text: str) -> None:
    raw = cstring_tlv(text)
    assert raw.endswith(b"\x00")
    assert read_cstring_tlv(raw) == text


def test_cstring_tlv_values() -> None:
    assert cstring_tlv("ab12") == b"ab12\x00"
    assert read_cstring_tlv(b"ab12") == "ab12"  # a carrier that forgot the NUL
    assert read_cstring_tlv(b"ab\x00junk") == "ab"
    with pytest.raises(PduError):
        cstring_tlv("a\x00b")
    with pytest.raises(PduError):
        cstring_tlv("€")


def test_receipt_tlvs_in_a_deliver_sm() -> None:
    body = ShortMessage(
        source_addr="447700900123",
        destination_addr="SHOP",
        esm_class=0x04,
        short_message=b"id:1 stat:DELIVRD",
        tlvs={
            Tag.RECEIPTED_MESSAGE_ID: cstring_tlv("1"),
            Tag.MESSAGE_STATE: int_tlv(2, 1),
            Tag.NETWORK_ERROR_CODE: b"\x03\x00\x00",
        },
    )
    decoded = decode(encode(Pdu(CommandId.DELIVER_SM, 11, body=body))).body
    assert isinstance(decoded, ShortMessage)
    assert read_cstring_tlv(decoded.tlvs[Tag.RECEIPTED_MESSAGE_ID]) == "1"
    assert read_int_tlv(decoded.tlvs[Tag.MESSAGE_STATE]) == 2


def test_framer_rejects_after_good_frames() -> None:
    with pytest.raises(PduError):
        Framer().feed(SUBMIT_SM_GOLDEN + b"\x00\x00\x00\x01")
