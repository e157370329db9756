"""The independent SMSCs (npm smpp, Net::SMPP) do what their options say.

Each is driven over TCP by a bare client on smsgate's own PDU codec, which
answers nothing by itself, so what is asserted is what the SMSC put on the
wire, in the order it put it there.
"""

from __future__ import annotations

import re
import time
import uuid

import pytest

from smsgate.smpp.pdu import ESM_UDHI, CommandId, MessageIdResp, Pdu, ShortMessage, Status, Tag
from smsgate.smpp.receipt_text import ReceiptText, parse_receipt_text
from tests.support.peers import IMPLEMENTATIONS, Peers
from tests.support.plain_smpp import PlainEsme

pytestmark = pytest.mark.parametrize("impl", IMPLEMENTATIONS)

RESP = CommandId.SUBMIT_SM_RESP
DELIVER = CommandId.DELIVER_SM


def connect(smsc_port: int, mode: str = "transceiver") -> PlainEsme:
    client = PlainEsme("127.0.0.1", smsc_port)
    assert client.bind(mode=mode).command_status == Status.ROK
    return client


def exchange(client: PlainEsme, responses: int, delivers: int, *, ack: bool = True) -> None:
    """Read until that many submit_sm_resp and deliver_sm came, answering each
    deliver_sm (those that came in the same read as the last one too)."""
    while (
        len(client.responses(CommandId.SUBMIT_SM)) < responses
        or len(client.requests(DELIVER)) < delivers
        or client.unread
    ):
        pdu = client.read()
        if pdu.command_id == DELIVER and ack:
            client.respond(pdu)


def message_id(pdu: Pdu) -> str:
    assert isinstance(pdu.body, MessageIdResp), pdu
    return pdu.body.message_id


def receipt(pdu: Pdu) -> ReceiptText:
    assert isinstance(pdu.body, ShortMessage)
    parsed = parse_receipt_text(pdu.body.short_message.decode("ascii"))
    assert parsed is not None, pdu.body.short_message
    return parsed


def tlv(pdu: Pdu, tag: int) -> bytes | None:
    assert isinstance(pdu.body, ShortMessage)
    return pdu.body.tlvs.get(tag)


def numbers(count: int, start: int = 100) -> list[str]:
    """Destinations that end in no sandbox rule: each is delivered."""
    return [f"2547120{n:04d}9" for n in range(start, start + count)]


def test_default_style_numbers_from_one_and_reports_each_after_its_response(
    impl: str, peers: Peers
) -> None:
    smsc = peers.smsc(impl, receipt_delay_ms=300)
    with connect(smsc.port) as client:
        sent_at = time.monotonic()
        for destination in numbers(3):
            client.submit(destination)
        exchange(client, 3, 3)
        elapsed = time.monotonic() - sent_at
        ids = [message_id(p) for p in client.responses(CommandId.SUBMIT_SM)]
        assert ids == ["1", "2", "3"]
        # Every response was out before the first receipt, which waited its delay.
        kinds = [p.command_id for p in client.received if p.command_id in (RESP, DELIVER)]
        assert kinds == [RESP] * 3 + [DELIVER] * 3
        assert elapsed >= 0.3
        receipts = client.requests(DELIVER)
        assert [receipt(p).message_id for p in receipts] == ids
        assert {receipt(p).stat for p in receipts} == {"DELIVRD"}
        for pdu, expected in zip(receipts, ids, strict=True):
            assert isinstance(pdu.body, ShortMessage)
            assert pdu.body.esm_class == 0x04
            assert tlv(pdu, Tag.RECEIPTED_MESSAGE_ID) == expected.encode() + b"\0"
            assert tlv(pdu, Tag.MESSAGE_STATE) == b"\x02"
        enquiry = client.send(CommandId.ENQUIRE_LINK)
        answer = client.read_until(lambda p: p.sequence == enquiry)
        assert answer.command_id == CommandId.ENQUIRE_LINK_RESP
    acked = smsc.wait_for("deliver_sm_resp", 3)
    assert [e["message_id"] for e in acked] == ids
    assert [e["destination"] for e in smsc.wait_for("submit_sm", 3)] == numbers(3)


ID_STYLES = {
    "decimal": [str(n) for n in range(1, 13)],
    "hex": [*"123456789", "a", "b", "c"],
    "upper-hex": [*"123456789", "A", "B", "C"],
    "padded": [f"{n:010d}" for n in range(1, 13)],
}


@pytest.mark.parametrize("style", [*ID_STYLES, "uuid"])
def test_id_styles(impl: str, style: str, peers: Peers) -> None:
    smsc = peers.smsc(impl, id_style=style)
    with connect(smsc.port) as client:
        for destination in numbers(12):
            client.submit(destination, registered_delivery=0)
        exchange(client, 12, 0)
        ids = [message_id(p) for p in client.responses(CommandId.SUBMIT_SM)]
    if style == "uuid":
        assert len(set(ids)) == 12
        assert all(str(uuid.UUID(i)) == i for i in ids)
    else:
        assert ids == ID_STYLES[style]
    assert [e["message_id"] for e in smsc.wait_for("submit_sm", 12)] == ids


def test_wrong_credentials_are_refused_by_name(impl: str, peers: Peers) -> None:
    smsc = peers.smsc(impl, system_id="acme", password="pw1")
    with PlainEsme("127.0.0.1", smsc.port) as client:
        assert client.bind("acme", "wrong").command_status == Status.RINVPASWD
    with PlainEsme("127.0.0.1", smsc.port) as client:
        assert client.bind("other", "pw1").command_status == Status.RINVSYSID
    with PlainEsme("127.0.0.1", smsc.port) as client:
        assert client.bind("acme", "pw1", mode="transmitter").command_status == Status.ROK
        assert client.bind("acme", "pw1").command_status == Status.RALYBND
        # SIGTERM makes the SMSC unbind its sessions before it exits.
        smsc.terminate()
        unbind = client.read_until(lambda p: p.command_id == CommandId.UNBIND)
        client.respond(unbind)
    assert smsc.exited() == 0
    assert [e["status"] for e in smsc.of("bind")] == [
        Status.RINVPASWD,
        Status.RINVSYSID,
        Status.ROK,
        Status.RALYBND,
    ]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"receipt_first": True}, ["1", "resp 1", "2", "resp 2", "3", "resp 3"]),
        ({"receipt_delay_ms": 0}, ["resp 1", "1", "resp 2", "2", "resp 3", "3"]),
    ],
    ids=["receipt-first", "immediate"],
)
def test_receipt_order_around_the_response(
    impl: str, options: dict[str, object], expected: list[str], peers: Peers
) -> None:
    """Before its submit_sm_resp when asked; else right after it when the delay is 0."""
    smsc = peers.smsc(impl, **options)
    with connect(smsc.port) as client:
        for destination in numbers(3):
            client.submit(destination)
        exchange(client, 3, 3)
        order = [
            receipt(p).message_id if p.command_id == DELIVER else f"resp {message_id(p)}"
            for p in client.received
            if p.command_id in (RESP, DELIVER)
        ]
    assert order == expected


@pytest.mark.parametrize(
    ("style", "spelling", "given", "in_text", "in_tlv"),
    [
        ("hex", {"receipt_text_id": "decimal"}, "b", "11", "b"),
        ("upper-hex", {"receipt_tlv_id": "decimal"}, "B", "B", "11"),
        ("decimal", {"receipt_text_id": "hex", "receipt_tlv_id": "hex"}, "11", "b", "b"),
    ],
)
def test_receipt_ids_spelled_differently(
    impl: str,
    style: str,
    spelling: dict[str, str],
    given: str,
    in_text: str,
    in_tlv: str,
    peers: Peers,
) -> None:
    smsc = peers.smsc(impl, id_style=style, receipt_delay_ms=0, **spelling)
    with connect(smsc.port) as client:
        for destination in numbers(11):
            client.submit(destination)
        exchange(client, 11, 11)
        assert message_id(client.responses(CommandId.SUBMIT_SM)[-1]) == given
        last = client.requests(DELIVER)[-1]
        assert receipt(last).message_id == in_text
        assert tlv(last, Tag.RECEIPTED_MESSAGE_ID) == in_tlv.encode() + b"\0"


def test_a_mismatched_spelling_is_refused_at_start(impl: str, peers: Peers) -> None:
    with pytest.raises(AssertionError, match="ended waiting for 1 ready"):
        peers.smsc(impl, id_style="uuid", receipt_text_id="decimal")
    assert peers.started[-1].exited() == 2
    assert "does not fit --id-style uuid" in " ".join(peers.started[-1].stderr)


def test_receipts_without_tlvs_carry_only_the_text(impl: str, peers: Peers) -> None:
    smsc = peers.smsc(impl, receipt_tlvs=False, receipt_delay_ms=0)
    with connect(smsc.port) as client:
        client.submit("254712000000")  # absent subscriber
        exchange(client, 1, 1)
        [pdu] = client.requests(DELIVER)
    assert isinstance(pdu.body, ShortMessage)
    assert pdu.body.tlvs == {}
    assert (receipt(pdu).message_id, receipt(pdu).stat, receipt(pdu).err) == ("1", "UNDELIV", "006")


def test_throttle_refuses_beyond_the_rate(impl: str, peers: Peers) -> None:
    rate, burst = 5, 15
    smsc = peers.smsc(impl, throttle=rate, receipt_delay_ms=0)
    with connect(smsc.port) as client:
        started = time.monotonic()
        for destination in numbers(burst):
            client.submit(destination)
        exchange(client, burst, 0, ack=True)
        elapsed = time.monotonic() - started
        statuses = [p.command_status for p in client.responses(CommandId.SUBMIT_SM)]
    accepted = statuses.count(Status.ROK)
    # A full bucket lets `rate` through at once; it refills at `rate` a second.
    assert rate <= accepted <= rate + int(elapsed * rate) + 1 < burst
    assert set(statuses) == {Status.ROK, Status.RTHROTTLED}
    assert statuses[:rate] == [Status.ROK] * rate
    smsc.wait_for("submit_sm", burst)
    throttled = smsc.of("submit_sm", status=Status.RTHROTTLED)
    assert len(throttled) == burst - accepted
    assert all(e["message_id"] == "" for e in throttled)


def test_counter_restarts_after_n(impl: str, peers: Peers) -> None:
    smsc = peers.smsc(impl, restart_after=3, receipt_delay_ms=0)
    with connect(smsc.port) as client:
        for destination in numbers(7):
            client.submit(destination)
        exchange(client, 7, 7)
        ids = [message_id(p) for p in client.responses(CommandId.SUBMIT_SM)]
        receipted = [receipt(p).message_id for p in client.requests(DELIVER)]
    assert ids == ["1", "2", "3", "1", "2", "3", "1"]
    assert receipted == ids


def test_each_part_of_a_long_message_gets_its_own_id_and_receipt(impl: str, peers: Peers) -> None:
    smsc = peers.smsc(impl, receipt_delay_ms=0)
    parts = [bytes((5, 0, 3, 0x2A, 3, n)) + f"part {n} ".encode() * 10 for n in (1, 2, 3)]
    with connect(smsc.port) as client:
        for part in parts:
            client.submit("254712345678", part, esm_class=ESM_UDHI)
        exchange(client, 3, 3)
        ids = [message_id(p) for p in client.responses(CommandId.SUBMIT_SM)]
        receipted = sorted(receipt(p).message_id for p in client.requests(DELIVER))
    assert ids == ["1", "2", "3"]
    assert receipted == ids
    events = smsc.wait_for("submit_sm", 3)
    assert [bytes.fromhex(e["short_message"]) for e in events] == parts
    assert {e["esm_class"] for e in events} == {ESM_UDHI}


def test_outcome_by_number_ending(impl: str, peers: Peers) -> None:
    smsc = peers.smsc(impl, receipt_delay_ms=0)
    endings = {
        "254712345000": ("UNDELIV", "006", b"\x05"),
        "254712345001": ("UNDELIV", "001", b"\x05"),
        "254712345003": ("EXPIRED", "000", b"\x03"),
        "254712345005": ("DELIVRD", "000", b"\x02"),
        "254712345678": ("DELIVRD", "000", b"\x02"),
    }
    with connect(smsc.port) as client:
        refused = client.submit("254712345004")
        for destination in endings:
            client.submit(destination)
        exchange(client, 6, 6)
        [refusal] = [p for p in client.responses(CommandId.SUBMIT_SM) if p.sequence == refused]
        delivered = client.requests(DELIVER)
    assert refusal.command_status == Status.RSUBMITFAIL
    receipts = {}
    replies = []
    for pdu in delivered:
        assert isinstance(pdu.body, ShortMessage)
        if pdu.body.esm_class == 0x04:
            receipts[pdu.body.source_addr] = pdu
        else:
            replies.append(pdu.body)
    for destination, (stat, err, state) in endings.items():
        parsed = receipt(receipts[destination])
        assert (parsed.stat, parsed.err) == (stat, err), destination
        assert tlv(receipts[destination], Tag.MESSAGE_STATE) == state
    [reply] = replies
    assert (reply.source_addr, reply.destination_addr) == ("254712345005", "SHOP")
    assert reply.short_message == b"Re: hello"


def test_unacknowledged_deliver_sm_is_sent_again_on_the_next_bind(impl: str, peers: Peers) -> None:
    smsc = peers.smsc(impl, receipt_delay_ms=0)
    with connect(smsc.port) as first:
        first.submit("254712345678")
        exchange(first, 1, 1, ack=False)
        original = receipt(first.requests(DELIVER)[0])
    assert smsc.wait_for("close")[0]["unacknowledged"] == 1
    with connect(smsc.port, mode="receiver") as second:
        again = second.read_until(lambda p: p.command_id == DELIVER)
        assert receipt(again) == original
        second.respond(again)
        smsc.wait_for("deliver_sm_resp")
    assert smsc.wait_for("close", 2)[1]["unacknowledged"] == 0
    assert [e["attempt"] for e in smsc.wait_for("deliver_sm", 2)] == [1, 2]


def test_receipts_wait_for_a_receiver_to_bind(impl: str, peers: Peers) -> None:
    smsc = peers.smsc(impl, receipt_delay_ms=0)
    with connect(smsc.port, mode="transmitter") as sender:
        sender.submit("254712345678")
        smsc.wait_for("held")
        with connect(smsc.port, mode="receiver") as receiver:
            held = receiver.read_until(lambda p: p.command_id == DELIVER)
            receiver.respond(held)
            assert receipt(held).message_id == message_id(
                sender.read_until(lambda p: p.command_id == RESP)
            )
            smsc.wait_for("deliver_sm_resp")


def test_mo_on_request(impl: str, peers: Peers) -> None:
    smsc = peers.smsc(impl)
    with connect(smsc.port, mode="receiver") as client:
        smsc.send(
            {"command": "mo", "source": "254712345678", "destination": "22345", "text": "STOP"}
        )
        smsc.send(
            {
                "command": "mo",
                "source": "254712345679",
                "destination": "22345",
                "text": "Привет",
                "coding": "ucs2",
            }
        )
        gsm = client.read_until(lambda p: p.command_id == DELIVER)
        client.respond(gsm)
        ucs2 = client.read_until(lambda p: p.command_id == DELIVER)
        client.respond(ucs2)
    assert isinstance(gsm.body, ShortMessage) and isinstance(ucs2.body, ShortMessage)
    assert (gsm.body.source_addr, gsm.body.destination_addr, gsm.body.esm_class) == (
        "254712345678",
        "22345",
        0,
    )
    assert (gsm.body.data_coding, gsm.body.short_message) == (0, b"STOP")
    assert (ucs2.body.data_coding, ucs2.body.short_message) == (8, "Привет".encode("utf-16-be"))
    assert [e["kind"] for e in smsc.wait_for("deliver_sm_resp", 2)] == ["mo", "mo"]


def test_events_record_what_arrived(impl: str, peers: Peers) -> None:
    smsc = peers.smsc(impl)
    sar = {
        Tag.SAR_MSG_REF_NUM: b"\x00\x07",
        Tag.SAR_TOTAL_SEGMENTS: b"\x02",
        Tag.SAR_SEGMENT_SEQNUM: b"\x01",
    }
    text = "Habari yako".encode("utf-16-be")
    with connect(smsc.port) as client:
        client.submit("254712345678", text, data_coding=8, tlvs=sar, registered_delivery=0)
        exchange(client, 1, 0)
    [event] = smsc.wait_for("submit_sm")
    assert event["destination"] == "254712345678"
    assert event["source"] == "SHOP"
    assert (event["data_coding"], event["esm_class"], event["registered_delivery"]) == (8, 0, 0)
    assert bytes.fromhex(event["short_message"]) == text
    assert event["tlvs"] == {"0x020c": "0007", "0x020e": "02", "0x020f": "01"}
    assert re.fullmatch(r"\d+", event["message_id"]) and event["status"] == 0
