"""The independent ESMEs (npm smpp, Net::SMPP, smpplib) bind to smsgate's SMSC
simulator over TCP, submit GSM, UCS-2 and long messages and get their receipts.

These clients are what tests of smsgate's own SMPP server will drive; here
they are shown to work against the simulator, in-process and as
``smsgate smsc-sim``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from smsgate.smpp.pdu import ESM_UDHI, ShortMessage, Status
from smsgate.smpp.receipt_text import parse_receipt_text
from smsgate.smpp.simulator import SimulatorConfig, SmscSimulator, SubmittedMessage
from smsgate.smpp.wire import read_inbound
from tests.smpp.test_gateway_over_smpp import SimulatorThread
from tests.support.peers import ESME_IMPLEMENTATIONS, IMPLEMENTATIONS, EventLog, Peers
from tests.support.waiting import wait_until

LONG = "Karibu sana! Ofa ya leo: " * 15  # 375 GSM characters: three parts
MESSAGES = [
    {"to": "254712345678", "text": "Hello {world} ~ 100% @home"},
    {"to": "254712345679", "text": "Habari 你好", "coding": "ucs2"},
    {"to": "254712345680", "text": LONG},
    {"to": "254712345005", "text": "Reply please"},
]


@pytest.fixture
def simulator() -> Iterator[SmscSimulator]:
    with SimulatorThread(SimulatorConfig(port=0, receipt_delay_ms=5)) as running:
        yield running


def text_of(message: SubmittedMessage) -> str:
    body = ShortMessage(
        short_message=message.short_message,
        data_coding=message.data_coding,
        esm_class=message.esm_class,
        tlvs=dict(message.tlvs),
    )
    return read_inbound(body).text


def receipts(esme: EventLog) -> list[dict[str, object]]:
    return [e for e in esme.of("deliver_sm") if int(e["esm_class"]) & 0x04]


@pytest.mark.parametrize("impl", ESME_IMPLEMENTATIONS)
def test_submits_gsm_ucs2_and_long_messages_and_receives_receipts_and_mo(
    impl: str, simulator: SmscSimulator, peers: Peers
) -> None:
    esme = peers.esme(impl, simulator.port, window=3, messages=MESSAGES)
    assert esme.ready["status"] == Status.ROK
    answered = esme.wait_for("submit_sm_resp", 6)  # 1 + 1 + 3 parts + 1
    delivered = esme.wait_for("deliver_sm", 7)  # 6 receipts and the reply
    wait_until(lambda: simulator.deliver_sm_resps == 7, what="every deliver_sm acknowledged")

    by_destination: dict[str, list[SubmittedMessage]] = {}
    for message in simulator.submitted:
        by_destination.setdefault(message.destination, []).append(message)
    [gsm] = by_destination["254712345678"]
    assert (gsm.data_coding, gsm.esm_class, text_of(gsm)) == (0, 0, MESSAGES[0]["text"])
    [ucs2] = by_destination["254712345679"]
    assert (ucs2.data_coding, text_of(ucs2)) == (8, MESSAGES[1]["text"])
    parts = by_destination["254712345680"]
    assert {p.esm_class for p in parts} == {ESM_UDHI}
    udh = [p.short_message[:6] for p in parts]
    assert [h[4:6] for h in udh] == [b"\x03\x01", b"\x03\x02", b"\x03\x03"]
    assert len({h[3] for h in udh}) == 1  # one reference for the three parts
    assert "".join(text_of(p) for p in parts) == LONG
    assert {m.registered_delivery for m in simulator.submitted} == {1}

    given = {m.message_id for m in simulator.submitted}
    assert {e["status"] for e in answered} == {Status.ROK}
    assert {e["message_id"] for e in answered} == given
    reported = [parse_receipt_text(str(e["text"])) for e in receipts(esme)]
    assert {r.message_id for r in reported if r is not None} == given
    assert {r.stat for r in reported if r is not None} == {"DELIVRD"}
    for event in receipts(esme):
        tlvs = event["tlvs"]
        assert isinstance(tlvs, dict)
        assert bytes.fromhex(tlvs["0x001e"]).rstrip(b"\0").decode() in given
    [reply] = [e for e in delivered if e["esm_class"] == 0]
    assert (reply["source"], reply["text"]) == ("254712345005", "Re: Reply please")


@pytest.mark.parametrize("impl", ESME_IMPLEMENTATIONS)
def test_a_receiver_bind_gets_what_a_transmitter_bind_sent(
    impl: str, simulator: SmscSimulator, peers: Peers
) -> None:
    receiver = peers.esme(impl, simulator.port, mode="receiver")
    transmitter = peers.esme(
        impl, simulator.port, mode="transmitter", messages=[{"to": "254712345678", "text": "hi"}]
    )
    assert receiver.ready["status"] == transmitter.ready["status"] == Status.ROK
    [answer] = transmitter.wait_for("submit_sm_resp")
    [receipt] = receiver.wait_for("deliver_sm")
    parsed = parse_receipt_text(str(receipt["text"]))
    assert parsed is not None and parsed.message_id == answer["message_id"]
    assert sorted(simulator.bound) == ["receiver", "transmitter"]
    assert transmitter.of("deliver_sm") == []


@pytest.mark.parametrize("impl", ESME_IMPLEMENTATIONS)
def test_wrong_credentials_are_refused(impl: str, simulator: SmscSimulator, peers: Peers) -> None:
    assert peers.esme(impl, simulator.port, password="nope").ready["status"] == Status.RINVPASWD
    assert peers.esme(impl, simulator.port, system_id="who").ready["status"] == Status.RINVSYSID
    assert simulator.bound == []


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_the_window_bounds_unanswered_submit_sm(impl: str, peers: Peers) -> None:
    config = SimulatorConfig(port=0, receipt_delay_ms=5, respond_delay_ms=20)
    with SimulatorThread(config) as simulator:
        messages = [{"to": f"2547123456{n:02d}", "text": f"n{n}"} for n in range(10, 18)]
        esme = peers.esme(impl, simulator.port, window=3, messages=messages)
        esme.wait_for("submit_sm_resp", 8)
        outstanding, most = 0, 0
        for event in esme.events:
            if event["event"] == "submit_sm":
                outstanding += 1
                most = max(most, outstanding)
            elif event["event"] == "submit_sm_resp":
                outstanding -= 1
        assert most == 3
        assert len(simulator.submitted) == 8


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_unbinds_cleanly_on_a_signal(impl: str, simulator: SmscSimulator, peers: Peers) -> None:
    esme = peers.esme(impl, simulator.port, enquire_link_ms=50)
    esme.wait_for("enquire_link_resp", 2)  # the simulator answers its enquire_link
    assert esme.stop() == 0
    assert len(esme.of("unbind_resp")) == 1
    [unbound] = esme.of("unbound")
    assert unbound["in_flight"] == 0
    wait_until(lambda: simulator.sessions == 0, what="the simulator to see the session end")


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_stops_by_itself_after_a_count_or_a_time(
    impl: str, simulator: SmscSimulator, peers: Peers
) -> None:
    messages = [{"to": "254712345678", "text": "one"}, {"to": "254712345679", "text": "two"}]
    counted = peers.esme(impl, simulator.port, messages=messages, responses=2, delivers=2)
    assert counted.exited() == 0
    assert counted.of("unbound")[0]["responses"] == 2
    assert counted.of("unbound")[0]["delivers"] == 2
    timed = peers.esme(impl, simulator.port, seconds=0.2)
    assert timed.exited() == 0
    assert timed.of("unbound")[0]["submitted"] == 0


@pytest.fixture(scope="module")
def smsc_sim_command() -> Iterator[int]:
    """``smsgate smsc-sim --port 0`` as its own process; the port it chose."""
    process = subprocess.Popen(
        [sys.executable, "-m", "smsgate", "smsc-sim", "--port", "0", "--receipt-delay-ms", "10"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        found = re.search(r"listening on 127\.0\.0\.1:(\d+)", banner)
        assert found, banner
        yield int(found.group(1))
    finally:
        process.terminate()
        process.wait(10)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_binds_to_the_smsc_sim_command(impl: str, smsc_sim_command: int, peers: Peers) -> None:
    esme = peers.esme(
        impl, smsc_sim_command, messages=[{"to": "254712345678", "text": "hi"}], delivers=1
    )
    assert esme.exited() == 0
    [answer] = esme.of("submit_sm_resp")
    [receipt] = esme.of("deliver_sm")
    parsed = parse_receipt_text(str(receipt["text"]))
    assert parsed is not None and (parsed.message_id, parsed.stat) == (
        answer["message_id"],
        "DELIVRD",
    )
