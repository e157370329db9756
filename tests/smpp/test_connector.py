"""The SMPP client connector against the SMSC simulator, over real TCP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest

from smsgate.core.encoding import Encoding, segment
from smsgate.core.model import MessageFlag
from smsgate.core.sandbox_rules import parse_sandbox_rules
from smsgate.core.states import Reason, State
from smsgate.delivery.connectors.base import Ack
from smsgate.delivery.connectors.smpp import SmppConnector, SmppSettings
from smsgate.smpp.pdu import ESM_DELIVERY_RECEIPT, ESM_UDHI, CommandId, Pdu, ShortMessage, Tag
from smsgate.smpp.receipt_text import format_receipt_text
from smsgate.smpp.simulator import SimulatorConfig, SmscSimulator
from smsgate.store.records import (
    InboundMessage,
    OutboundMessage,
    Receipt,
    Refused,
    RetryLater,
    SubmitOutcome,
    Submitted,
)


def outbound(message_id: int, recipient: str, body: str, **extra: Any) -> OutboundMessage:
    shape = segment(body)
    values: dict[str, Any] = {
        "id": message_id,
        "account_id": 1,
        "recipient": recipient,
        "sender": "SHOP",
        "body": body,
        "encoding": shape.encoding.value,
        "segments": shape.segments,
        "priority": 1,
        "want_report": True,
        "flags": 0,
        "routing_group": None,
        "attempts": 1,
    }
    values.update(extra)
    return OutboundMessage(**values)


async def until(predicate: Callable[[], bool], what: str, within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


class Harness:
    """Collects what the connector hands over; acknowledges at once unless told
    to hold the acknowledgements (as a recorder does until it has committed)."""

    def __init__(self, simulator: SmscSimulator, connector: SmppConnector) -> None:
        self.simulator = simulator
        self.connector = connector
        self.receipts: list[Receipt] = []
        self.inbound: list[InboundMessage] = []
        self.hold_acks = False
        self.held: list[Ack] = []

    def _take(self, ack: Ack | None) -> None:
        if ack is not None:
            self.held.append(ack) if self.hold_acks else ack()

    async def submit(self, messages: Sequence[OutboundMessage]) -> list[SubmitOutcome]:
        """The connector's outcomes in message order, each committed at once."""
        outcomes: dict[int, SubmitOutcome] = {}

        def record(outcome: SubmitOutcome, ack: Ack) -> None:
            outcomes[outcome.message_id] = outcome
            ack()

        await self.connector.submit(messages, record)
        return [outcomes[m.id] for m in messages]

    def receipt(self, receipt: Receipt, ack: Ack | None = None) -> None:
        self.receipts.append(receipt)
        self._take(ack)

    def mo(self, message: InboundMessage, ack: Ack | None = None) -> None:
        self.inbound.append(message)
        self._take(ack)


def connector_for(simulator: SmscSimulator, **settings: Any) -> SmppConnector:
    """A connector to a started simulator, with its credentials and quick reconnects."""
    values: dict[str, Any] = {
        "name": "smsc",
        "host": "127.0.0.1",
        "port": simulator.port,
        "system_id": simulator.config.system_id,
        "password": simulator.config.password,
        "reconnect_min_seconds": 0.05,
    }
    values.update(settings)
    return SmppConnector(SmppSettings(**values))


async def running(config: SimulatorConfig, **settings: Any) -> Harness:
    simulator = SmscSimulator(config)
    await simulator.start()
    connector = connector_for(simulator, **settings)
    harness = Harness(simulator, connector)
    await connector.start(harness.receipt, harness.mo)
    assert await connector.wait_bound(5)
    return harness


RULES = "000=absent,001=unknown,002=blacklisted,003=expired,004=rejected"


@pytest.fixture
async def smsc() -> AsyncIterator[Harness]:
    harness = await running(
        SimulatorConfig(port=0, receipt_delay_ms=5, rules=parse_sandbox_rules(RULES))
    )
    try:
        yield harness
    finally:
        await harness.connector.stop()
        await harness.simulator.stop()


@pytest.mark.parametrize("bind_mode", ["transceiver", "transmitter_receiver"])
async def test_bind_modes_deliver_and_report(bind_mode: str) -> None:
    harness = await running(SimulatorConfig(port=0, receipt_delay_ms=5), bind_mode=bind_mode)
    try:
        [outcome] = await harness.submit([outbound(1, "+254712345678", "Hello")])
        assert isinstance(outcome, Submitted)
        await until(lambda: len(harness.receipts) == 1, "the receipt")
        assert harness.receipts[0].carrier_ref == outcome.carrier_ref
        assert harness.receipts[0].state is State.DELIVERED
        expected = ["transceiver"] if bind_mode == "transceiver" else ["transmitter", "receiver"]
        assert sorted(harness.simulator.bound) == sorted(expected)
    finally:
        await harness.connector.stop()
        await harness.simulator.stop()


@pytest.mark.parametrize("tlvs", [True, False], ids=["tlvs", "text-only"])
async def test_receipts_for_each_final_state(tlvs: bool) -> None:
    harness = await running(
        SimulatorConfig(
            port=0, receipt_delay_ms=5, rules=parse_sandbox_rules(RULES), receipt_tlvs=tlvs
        )
    )
    try:
        messages = [
            outbound(1, "+254712345011", "ok"),
            outbound(2, "+254712345000", "absent"),
            outbound(3, "+254712345001", "unknown"),
            outbound(4, "+254712345002", "barred"),
            outbound(5, "+254712345003", "expires"),
            outbound(6, "+254712345004", "refused"),
        ]
        outcomes = await harness.submit(messages)
        assert [type(o) for o in outcomes] == [Submitted] * 5 + [Refused]
        await until(lambda: len(harness.receipts) == 5, "five receipts")
        by_ref = {r.carrier_ref: (r.state, r.reason) for r in harness.receipts}
        refs = [o.carrier_ref for o in outcomes if isinstance(o, Submitted)]
        assert [by_ref[ref] for ref in refs] == [
            (State.DELIVERED, Reason.NONE),
            (State.UNDELIVERABLE, Reason.ABSENT_SUBSCRIBER),  # MAP error 6
            (State.UNDELIVERABLE, Reason.UNKNOWN_SUBSCRIBER),  # MAP error 1
            (State.UNDELIVERABLE, Reason.SENDER_BLOCKED),  # MAP error 13
            (State.EXPIRED, Reason.VALIDITY_EXPIRED),
        ]
        assert {r.carrier_status for r in harness.receipts} == {
            "DELIVRD",
            "UNDELIV",
            "EXPIRED",
        }
    finally:
        await harness.connector.stop()
        await harness.simulator.stop()


async def test_an_unanswered_submit_sm_times_out_and_is_retried() -> None:
    harness = await running(
        SimulatorConfig(port=0, respond_delay_ms=3_000), response_timeout=0.2, window=2
    )
    try:
        started = asyncio.get_running_loop().time()
        outcomes = await harness.submit(
            [outbound(i, f"+2547123456{i:02d}", "hi") for i in range(1, 4)]
        )
        assert all(isinstance(o, RetryLater) and o.counts_attempt for o in outcomes)
        assert all("no response" in o.error for o in outcomes if isinstance(o, RetryLater))
        # The window of two was freed by the timeouts: the third went out after them.
        assert asyncio.get_running_loop().time() - started < 2.0
        assert len(harness.simulator.submitted) == 3
    finally:
        await harness.connector.stop()
        await harness.simulator.stop()


async def test_long_messages_are_split_with_a_udh(smsc: Harness) -> None:
    gsm, ucs2 = "a" * 400, "Привет " * 30
    outcomes = await smsc.submit(
        [outbound(1, "+254712345678", gsm), outbound(2, "+254712345679", ucs2)]
    )
    assert all(isinstance(o, Submitted) for o in outcomes)
    parts = smsc.simulator.submitted
    gsm_parts = [p for p in parts if p.destination == "254712345678"]
    ucs2_parts = [p for p in parts if p.destination == "254712345679"]
    assert len(gsm_parts) == segment(gsm).segments == 3
    assert len(ucs2_parts) == segment(ucs2).segments
    assert all(p.esm_class & ESM_UDHI for p in gsm_parts + ucs2_parts)
    assert {p.data_coding for p in gsm_parts} == {0} and {p.data_coding for p in ucs2_parts} == {8}
    text = b"".join(p.short_message[6:] for p in gsm_parts)
    assert text == gsm.encode()
    assert segment(ucs2).encoding is Encoding.UCS2


async def test_mo_single_and_multipart(smsc: Harness) -> None:
    await smsc.simulator.send_mo("254712345678", "254709000999", b"YES")
    first, second = b"\x05\x00\x03\x07\x02\x01Hello, ", b"\x05\x00\x03\x07\x02\x02world"
    await smsc.simulator.send_mo("254712345678", "254709000999", second, esm_class=ESM_UDHI)
    await smsc.simulator.send_mo("254712345678", "254709000999", first, esm_class=ESM_UDHI)
    await until(lambda: len(smsc.inbound) == 2, "two inbound messages")
    assert [m.body for m in smsc.inbound] == ["YES", "Hello, world"]
    assert smsc.inbound[0].sender == "254712345678"
    assert smsc.inbound[0].recipient == "254709000999"


async def test_throttling_asks_for_a_retry() -> None:
    harness = await running(SimulatorConfig(port=0, throttle_every=2), slow_down_seconds=0.05)
    try:
        outcomes = await harness.submit(
            [outbound(i, f"+2547123456{i:02d}", "hi") for i in range(1, 5)]
        )
        retried = [o for o in outcomes if isinstance(o, RetryLater)]
        assert len(retried) == 2 and all("RTHROTTLED" in o.error for o in retried)
        # Being told to slow down is not the message's fault: it costs no attempt.
        assert not any(o.counts_attempt for o in retried)
    finally:
        await harness.connector.stop()
        await harness.simulator.stop()


async def test_a_dropped_connection_retries_what_was_in_flight() -> None:
    harness = await running(SimulatorConfig(port=0, respond_delay_ms=300), window=5)
    try:
        pending = asyncio.create_task(
            harness.submit([outbound(i, f"+2547123456{i:02d}", "hi") for i in range(1, 9)])
        )
        await harness.simulator.wait_for_submitted(5, timeout=5)
        # The window holds the rest back: exactly five are in flight.
        assert len(harness.simulator.submitted) == 5
        await harness.simulator.drop_connections()
        outcomes = await pending
        assert all(isinstance(o, RetryLater) for o in outcomes)
        assert await harness.connector.wait_bound(5)  # and it binds again
    finally:
        await harness.connector.stop()
        await harness.simulator.stop()


async def test_sends_at_most_a_window_ahead_of_committed_outcomes() -> None:
    """What a crash can make the SMSC receive twice is what was sent but not yet
    committed: the connector keeps that to its window, whatever the batch size."""
    harness = await running(SimulatorConfig(port=0, receipt_delay_ms=5), window=5)
    outcomes: list[SubmitOutcome] = []
    uncommitted: list[Ack] = []

    def record(outcome: SubmitOutcome, ack: Ack) -> None:
        outcomes.append(outcome)
        uncommitted.append(ack)

    messages = [outbound(i, f"+2547123456{i:02d}", "hi") for i in range(1, 21)]
    try:
        sending = asyncio.create_task(harness.connector.submit(messages, record))
        await until(lambda: len(outcomes) == 5, "the first window's answers")
        for committed in range(1, 16):
            uncommitted.pop(0)()
            answered = 5 + committed
            await until(lambda: len(outcomes) == answered, "the next answer")  # noqa: B023
            # Answered long ago, but not committed: nothing more went out.
            assert len(harness.simulator.submitted) == answered
        assert not sending.done()  # it returns once every outcome is committed
        while uncommitted:
            uncommitted.pop(0)()
        await sending
        assert all(isinstance(o, Submitted) for o in outcomes)
        assert len(harness.simulator.submitted) == 20
    finally:
        await harness.connector.stop()
        await harness.simulator.stop()


@pytest.mark.parametrize("style", ["decimal", "leading_zeros"])
async def test_receipts_spelling_the_id_differently_still_match(style: str) -> None:
    harness = await running(
        SimulatorConfig(port=0, receipt_delay_ms=5, receipt_id_style=style, receipt_tlvs=False)
    )
    try:
        [outcome] = await harness.submit([outbound(1, "+254712345678", "Hello")])
        assert isinstance(outcome, Submitted)
        await until(lambda: len(harness.receipts) == 1, "the receipt")
        assert harness.receipts[0].carrier_ref == outcome.carrier_ref
    finally:
        await harness.connector.stop()
        await harness.simulator.stop()


async def test_flash_binary_and_sar_on_the_wire() -> None:
    harness = await running(SimulatorConfig(port=0), sar=True)
    try:
        await harness.submit(
            [
                outbound(1, "+254712345601", "flash!", flags=int(MessageFlag.FLASH)),
                outbound(2, "+254712345602", "0605040b8423f0cafe", encoding="binary"),
                outbound(3, "+254712345603", "b" * 200),
                outbound(4, "+254712345604", "quiet", want_report=False),
            ]
        )
        by_destination: dict[str, list[Any]] = {}
        for part in harness.simulator.submitted:
            by_destination.setdefault(part.destination, []).append(part)
        [flash] = by_destination["254712345601"]
        assert flash.data_coding == 0x10
        [binary] = by_destination["254712345602"]
        assert (binary.data_coding, binary.esm_class & ESM_UDHI) == (0x04, ESM_UDHI)
        assert binary.short_message == bytes.fromhex("0605040b8423f0cafe")
        long_parts = by_destination["254712345603"]
        assert len(long_parts) == 2 and not any(p.esm_class & ESM_UDHI for p in long_parts)
        assert [p.tlvs[Tag.SAR_SEGMENT_SEQNUM] for p in long_parts] == [b"\x01", b"\x02"]
        [quiet] = by_destination["254712345604"]
        assert quiet.registered_delivery == 0 and flash.registered_delivery == 1
    finally:
        await harness.connector.stop()
        await harness.simulator.stop()


async def test_a_receipt_is_acknowledged_only_once_stored(smsc: Harness) -> None:
    smsc.hold_acks = True
    await smsc.submit([outbound(1, "+254712345678", "Hello")])
    await until(lambda: len(smsc.receipts) == 1, "the receipt")
    assert smsc.simulator.deliver_sm_resps == 0
    smsc.held.pop()()
    await smsc.simulator.wait_until(
        lambda: smsc.simulator.deliver_sm_resps == 1, timeout=5, what="the deliver_sm_resp"
    )


async def test_a_receipt_that_overtakes_its_submit_sm_resp_is_not_lost() -> None:
    """Some SMSCs send the receipt before the response; it must wait for the id."""
    harness = Harness(
        SmscSimulator(SimulatorConfig(port=0)),
        SmppConnector(
            SmppSettings(name="smsc", host="127.0.0.1", port=9, system_id="x", password="y")
        ),
    )
    connector = harness.connector
    connector._receipts = harness.receipt  # the sinks start() would install
    text = format_receipt_text(message_id="0000ABC1", stat="DELIVRD", submit_ms=0, done_ms=0)
    early = Pdu(
        CommandId.DELIVER_SM,
        7,
        body=ShortMessage(esm_class=ESM_DELIVERY_RECEIPT, short_message=text.encode()),
    )
    acks: list[Pdu] = []

    class Session:
        last_sequence = 7
        answered = False

        def respond(self, request: Pdu, body: object = None) -> None:
            acks.append(request)

        def unanswered_since(self, sequence: int) -> bool:
            return not self.answered and sequence <= self.last_sequence

    session = Session()
    connector._transmitter = session  # type: ignore[assignment]
    connector._on_deliver(session, early)  # type: ignore[arg-type]
    # Held (a submit_sm is unanswered), and not acknowledged: until it is
    # stored the SMSC must keep it.
    assert harness.receipts == [] and acks == []
    assert connector._register(["ABC1"], True) == "ABC1"  # the submit_sm_resp arrives
    assert [(r.carrier_ref, r.state) for r in harness.receipts] == [("ABC1", State.DELIVERED)]
    assert acks == [early]  # stored (the harness commits at once), so acknowledged
    assert connector._carrier_ids == {}  # its receipt came: nothing left to wait for

    # A receipt no answer ever claims is held only until the submit_sm sent
    # before it are all answered, then handed on as spelled.
    text = format_receipt_text(message_id="0000ABC2", stat="DELIVRD", submit_ms=0, done_ms=0)
    stranger = Pdu(
        CommandId.DELIVER_SM,
        8,
        body=ShortMessage(esm_class=ESM_DELIVERY_RECEIPT, short_message=text.encode()),
    )
    connector._on_deliver(session, stranger)  # type: ignore[arg-type]
    assert len(harness.receipts) == 1 and acks == [early]
    session.answered = True
    connector._hand_on_stale_early()  # what each submit_sm_resp does while one is held
    assert harness.receipts[-1].carrier_ref == "0000ABC2" and acks == [early, stranger]


async def test_a_receipt_for_an_earlier_binds_message_is_handed_on_as_spelled() -> None:
    """After a restart or a failover, receipts arrive for messages this bind
    never sent. With no submit_sm unanswered, none can have overtaken its
    response: it goes on to the recorder at once (not after the long response
    timeout), as spelled (the store finds the message by it), and is
    acknowledged only once that is stored."""
    first = await running(SimulatorConfig(port=0, receipt_delay_ms=300))
    [outcome] = await first.submit([outbound(1, "+254712345678", "Hello")])
    assert isinstance(outcome, Submitted)
    await first.connector.stop()  # gone before its receipt: the SMSC holds it
    simulator = first.simulator
    await simulator.wait_until(lambda: simulator.held == 1, 5, "the receipt held")
    second = Harness(simulator, connector_for(simulator, response_timeout=30))
    second.hold_acks = True
    await second.connector.start(second.receipt, second.mo)
    try:
        await until(lambda: len(second.receipts) == 1, "the receipt handed on")
        assert second.receipts[0].carrier_ref == outcome.carrier_ref
        assert simulator.deliver_sm_resps == 0  # not stored yet: not acknowledged
        second.held.pop()()
        await simulator.wait_until(lambda: simulator.deliver_sm_resps == 1, 5, "the ack")
    finally:
        await second.connector.stop()
        await simulator.stop()


async def test_ids_are_filed_only_for_messages_that_asked_for_a_receipt(smsc: Harness) -> None:
    outcomes = await smsc.submit(
        [
            outbound(1, "+254712345678", "report me"),
            outbound(2, "+254712345679", "quiet", want_report=False),
        ]
    )
    assert all(isinstance(o, Submitted) for o in outcomes)
    await until(lambda: len(smsc.receipts) == 1, "the one receipt asked for")
    assert smsc.connector._carrier_ids == {}
