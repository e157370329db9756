"""The SMPP client connector against the SMSC simulator, over real TCP."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from typing import Any

import pytest

from smsgate.core.carrier_ids import IdFormat, carrier_key
from smsgate.core.encoding import Encoding, segment
from smsgate.core.model import MessageFlag
from smsgate.core.sandbox_rules import parse_sandbox_rules
from smsgate.core.states import Reason, State
from smsgate.delivery.connectors.base import Ack
from smsgate.delivery.connectors.smpp import SmppConnector, SmppSettings
from smsgate.smpp.pdu import ESM_UDHI, Status, Tag
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


def numbered(count: int, start: int = 1) -> list[OutboundMessage]:
    """Messages to numbers ending in 9, which no sandbox rule refuses or fails."""
    return [outbound(i, f"+25471{i:05d}9", f"hi {i}") for i in range(start, start + count)]


async def until(predicate: Callable[[], bool], what: str, within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


class Live:
    """The claims of a test: live unless the test says one lapsed."""

    def __init__(self, lapsed: Collection[int] = ()) -> None:
        self.lapsed = set(lapsed)

    def live(self, message_id: int) -> bool:
        return message_id not in self.lapsed


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

    async def submit(
        self, messages: Sequence[OutboundMessage], claims: Live | None = None
    ) -> list[SubmitOutcome]:
        """The connector's outcomes in message order, each committed at once."""
        outcomes: dict[int, SubmitOutcome] = {}

        def record(outcome: SubmitOutcome, ack: Ack) -> None:
            outcomes[outcome.message_id] = outcome
            ack()

        await self.connector.submit(messages, record, claims or Live())
        return [outcomes[m.id] for m in messages]

    def receipt(self, receipt: Receipt, ack: Ack | None = None) -> None:
        self.receipts.append(receipt)
        self._take(ack)

    def mo(self, message: InboundMessage, ack: Ack | None = None) -> None:
        self.inbound.append(message)
        self._take(ack)

    async def stop(self) -> None:
        await self.connector.stop()
        await self.simulator.stop()


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
        await harness.stop()


@pytest.mark.parametrize("bind_mode", ["transceiver", "transmitter_receiver"])
async def test_bind_modes_deliver_and_report(bind_mode: str) -> None:
    harness = await running(SimulatorConfig(port=0, receipt_delay_ms=5), bind_mode=bind_mode)
    try:
        [outcome] = await harness.submit([outbound(1, "+254712345678", "Hello")])
        assert isinstance(outcome, Submitted)
        await until(lambda: len(harness.receipts) == 1, "the receipt")
        [receipt] = harness.receipts
        assert (receipt.carrier_key, receipt.state) == (
            outcome.parts[0].carrier_key,
            State.DELIVERED,
        )
        assert receipt.handset == "254712345678" and "stat:DELIVRD" in receipt.text
        expected = ["transceiver"] if bind_mode == "transceiver" else ["transmitter", "receiver"]
        assert sorted(harness.simulator.bound) == sorted(expected)
    finally:
        await harness.stop()


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
        by_key = {r.carrier_key: (r.state, r.reason) for r in harness.receipts}
        keys = [o.parts[0].carrier_key for o in outcomes if isinstance(o, Submitted)]
        assert [by_key[key] for key in keys] == [
            (State.DELIVERED, Reason.NONE),
            (State.UNDELIVERABLE, Reason.ABSENT_SUBSCRIBER),  # MAP error 6
            (State.UNDELIVERABLE, Reason.UNKNOWN_SUBSCRIBER),  # MAP error 1
            (State.UNDELIVERABLE, Reason.SENDER_BLOCKED),  # MAP error 13
            (State.EXPIRED, Reason.VALIDITY_EXPIRED),
        ]
        assert {r.carrier_status for r in harness.receipts} == {"DELIVRD", "UNDELIV", "EXPIRED"}
    finally:
        await harness.stop()


# How each simulator id style is declared on the connection: (submit_sm_resp,
# receipt text and TLV) formats.
ID_STYLES = [
    ("sequential_decimal", "same", IdFormat.DECIMAL, None),
    ("sequential_hex", "same", IdFormat.HEX, None),
    ("sequential_hex", "decimal", IdFormat.HEX, IdFormat.DECIMAL),
    ("zero_padded", "same", IdFormat.DECIMAL, None),
    ("upper_hex", "lower", IdFormat.HEX, None),
    ("uuid", "upper", IdFormat.STRING, None),
    ("sequential_decimal", "leading_zeros", IdFormat.DECIMAL, None),
    ("hex", "same", IdFormat.STRING, None),
]


@pytest.mark.parametrize(("id_style", "receipt_style", "submit_id", "receipt_id"), ID_STYLES)
@pytest.mark.parametrize("tlvs", [True, False], ids=["tlvs", "text-only"])
async def test_ids_are_read_as_declared_and_every_receipt_names_its_part(
    id_style: str,
    receipt_style: str,
    submit_id: IdFormat,
    receipt_id: IdFormat | None,
    tlvs: bool,
) -> None:
    harness = await running(
        SimulatorConfig(
            port=0,
            receipt_delay_ms=0,
            message_id_style=id_style,  # type: ignore[arg-type]
            receipt_id_style=receipt_style,  # type: ignore[arg-type]
            receipt_tlvs=tlvs,
        ),
        submit_id=submit_id,
        receipt_id=receipt_id,
        receipt_tlv_id=receipt_id,
        window=20,
    )
    try:
        outcomes = await harness.submit(numbered(40))
        await until(lambda: len(harness.receipts) == 40, "every receipt")
        keys = {o.message_id: o.parts[0].carrier_key for o in outcomes if isinstance(o, Submitted)}
        assert len(keys) == 40 and len(set(keys.values())) == 40
        # Each receipt carries the key its part was filed under; one that came
        # before the part's commit names the message too.
        assert sorted(r.carrier_key for r in harness.receipts) == sorted(keys.values())
        assert all(keys[r.message_id] == r.carrier_key for r in harness.receipts if r.message_id)
    finally:
        await harness.stop()


async def test_an_unanswered_submit_sm_times_out_and_is_retried() -> None:
    harness = await running(
        SimulatorConfig(port=0, respond_delay_ms=3_000), response_timeout=0.2, window=2
    )
    try:
        started = asyncio.get_running_loop().time()
        outcomes = await harness.submit(numbered(3))
        assert all(isinstance(o, RetryLater) and o.counts_attempt for o in outcomes)
        assert all("no response" in o.error for o in outcomes if isinstance(o, RetryLater))
        # The window of two was freed by the timeouts: the third went out after them.
        assert asyncio.get_running_loop().time() - started < 2.0
        assert len(harness.simulator.submitted) == 3
    finally:
        await harness.stop()


async def test_long_messages_are_split_with_a_udh_and_each_part_reports(smsc: Harness) -> None:
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
    first = outcomes[0]
    assert isinstance(first, Submitted) and [p.part for p in first.parts] == [1, 2, 3]
    assert [p.carrier_ref for p in first.parts] == [p.message_id for p in gsm_parts]
    # A receipt per part, under that part's key.
    total = len(gsm_parts) + len(ucs2_parts)
    await until(lambda: len(smsc.receipts) == total, "a receipt per part")
    part_keys = [p.carrier_key for o in outcomes if isinstance(o, Submitted) for p in o.parts]
    assert sorted(r.carrier_key for r in smsc.receipts) == sorted(part_keys)


async def test_mo_single_and_multipart(smsc: Harness) -> None:
    await smsc.simulator.send_mo("254712345678", "254709000999", b"YES")
    first, second = b"\x05\x00\x03\x07\x02\x01Hello, ", b"\x05\x00\x03\x07\x02\x02world"
    await smsc.simulator.send_mo("254712345678", "254709000999", second, esm_class=ESM_UDHI)
    await smsc.simulator.send_mo("254712345678", "254709000999", first, esm_class=ESM_UDHI)
    await until(lambda: len(smsc.inbound) == 2, "two inbound messages")
    assert [m.body for m in smsc.inbound] == ["YES", "Hello, world"]
    assert smsc.inbound[0].sender == "254712345678"
    assert smsc.inbound[0].recipient == "254709000999"


async def test_a_throttled_part_is_sent_again_by_the_connector() -> None:
    """ESME_RTHROTTLED is about the rate, not the message: the part goes again
    (at a slower pace), and no part of a long message is sent twice."""
    harness = await running(SimulatorConfig(port=0, throttle_every=3))
    try:
        messages = [*numbered(4), outbound(5, "+254712399999", "z" * 300)]
        outcomes = await harness.submit(messages)
        assert all(isinstance(o, Submitted) for o in outcomes)
        statuses = [m.status for m in harness.simulator.submitted]
        accepted = [m for m in harness.simulator.submitted if m.status == Status.ROK]
        assert Status.RTHROTTLED in statuses
        assert len(accepted) == 4 + 2  # each part accepted exactly once
        assert harness.connector.rate.refusals == statuses.count(Status.RTHROTTLED)
    finally:
        await harness.stop()


async def test_a_dropped_connection_retries_what_was_in_flight() -> None:
    harness = await running(SimulatorConfig(port=0, respond_delay_ms=300), window=5)
    try:
        pending = asyncio.create_task(harness.submit(numbered(8)))
        await harness.simulator.wait_for_submitted(5, timeout=5)
        # The window holds the rest back: exactly five are in flight.
        assert len(harness.simulator.submitted) == 5
        await harness.simulator.drop_connections()
        outcomes = await pending
        assert all(isinstance(o, RetryLater) for o in outcomes)
        assert await harness.connector.wait_bound(5)  # and it binds again
    finally:
        await harness.stop()


async def test_sends_at_most_its_uncommitted_bound_ahead_of_committed_outcomes() -> None:
    """What a crash can make the SMSC receive twice is what was sent but not yet
    committed: the connector keeps that to its uncommitted bound, whatever the
    batch size and however wide the window."""
    harness = await running(SimulatorConfig(port=0, receipt_delay_ms=5), window=20, uncommitted=5)
    outcomes: list[SubmitOutcome] = []
    uncommitted: list[Ack] = []

    def record(outcome: SubmitOutcome, ack: Ack) -> None:
        outcomes.append(outcome)
        uncommitted.append(ack)

    try:
        sending = asyncio.create_task(harness.connector.submit(numbered(20), record, Live()))
        await until(lambda: len(outcomes) == 5, "the first five answers")
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
        await harness.stop()


async def test_a_narrow_window_does_not_wait_for_commits() -> None:
    """The window bounds what the SMSC has unanswered, nothing else: with two
    slots and no commit at all, every message still goes out."""
    harness = await running(SimulatorConfig(port=0), window=2, uncommitted=100)
    outcomes: list[SubmitOutcome] = []
    acks: list[Ack] = []

    def record(outcome: SubmitOutcome, ack: Ack) -> None:
        outcomes.append(outcome)
        acks.append(ack)

    try:
        sending = asyncio.create_task(harness.connector.submit(numbered(50), record, Live()))
        await until(lambda: len(outcomes) == 50, "every answer, none committed")
        assert len(harness.simulator.submitted) == 50
        for ack in acks:
            ack()
        await sending
    finally:
        await harness.stop()


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
        await harness.stop()


async def test_a_message_that_cannot_be_encoded_fails_alone(smsc: Harness) -> None:
    """More parts than a UDH can number (256) is not the batch's problem."""
    messages = [*numbered(2), outbound(3, "+254712345603", "x" * 39_168), *numbered(2, start=4)]
    outcomes = await smsc.submit(messages)
    assert [type(o) for o in outcomes] == [Submitted, Submitted, Refused, Submitted, Submitted]
    refused = outcomes[2]
    assert isinstance(refused, Refused) and refused.state is State.REJECTED
    assert "cannot be sent" in refused.error
    # Its neighbours were not only submitted but delivered.
    keys = {o.parts[0].carrier_key for o in outcomes if isinstance(o, Submitted)}
    await until(lambda: len(smsc.receipts) == 4, "the neighbours' receipts")
    assert {r.carrier_key for r in smsc.receipts if r.state is State.DELIVERED} == keys


async def test_a_message_whose_claim_lapsed_is_not_sent(smsc: Harness) -> None:
    outcomes = await smsc.submit(numbered(3), Live(lapsed={2}))
    assert [type(o) for o in outcomes] == [Submitted, RetryLater, Submitted]
    lapsed = outcomes[1]
    assert isinstance(lapsed, RetryLater) and not lapsed.counts_attempt
    assert {m.destination for m in smsc.simulator.submitted} == {"25471000019", "25471000039"}


async def test_a_receipt_is_acknowledged_only_once_stored(smsc: Harness) -> None:
    smsc.hold_acks = True
    await smsc.submit([outbound(1, "+254712345678", "Hello")])
    await until(lambda: len(smsc.receipts) == 1, "the receipt")
    assert smsc.simulator.deliver_sm_resps == 0
    smsc.held.pop()()
    await smsc.simulator.wait_until(
        lambda: smsc.simulator.deliver_sm_resps == 1, timeout=5, what="the deliver_sm_resp"
    )


async def test_a_receipt_before_its_parts_commit_names_its_message() -> None:
    """A receipt right behind its submit_sm_resp names a part whose outcome is
    not committed yet: it goes on at once (the recorder writes it with or
    after that outcome) naming the message, and is acknowledged only once
    stored."""
    harness = await running(SimulatorConfig(port=0, receipt_delay_ms=0))
    harness.hold_acks = True
    committed: list[Ack] = []

    def record(outcome: SubmitOutcome, ack: Ack) -> None:
        committed.append(ack)

    try:
        sending = asyncio.create_task(
            harness.connector.submit([outbound(1, "+254712345678", "Hi")], record, Live())
        )
        simulator = harness.simulator
        await until(lambda: len(committed) == 1 and len(harness.receipts) == 1, "both")
        assert [r.message_id for r in harness.receipts] == [1]
        assert simulator.deliver_sm_resps == 0  # not stored yet: not acknowledged
        committed.pop()()
        await sending
        harness.held.pop()()
        await simulator.wait_until(lambda: simulator.deliver_sm_resps == 1, 5, "the ack")
    finally:
        await harness.stop()


async def test_a_receipt_that_overtakes_its_submit_sm_resp_finds_its_part() -> None:
    harness = await running(SimulatorConfig(port=0, receipt_before_resp=True), window=10)
    try:
        outcomes = await harness.submit(numbered(30))
        await until(lambda: len(harness.receipts) == 30, "every receipt")
        keys = {o.message_id: o.parts[0].carrier_key for o in outcomes if isinstance(o, Submitted)}
        # Each came before its part was even answered, waited for it, and so
        # names its message.
        assert {r.message_id: r.carrier_key for r in harness.receipts} == keys
    finally:
        await harness.stop()


async def test_a_receipt_for_an_earlier_binds_message_goes_to_the_store_at_once() -> None:
    """After a restart or a failover, receipts arrive for messages this bind
    never sent. With no submit_sm unanswered, none can have overtaken its
    response: it goes on at once (not after the long response timeout),
    without a message (the store matches it by its key), and is acknowledged
    only once that is stored."""
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
        [receipt] = second.receipts
        assert (receipt.carrier_key, receipt.message_id) == (outcome.parts[0].carrier_key, None)
        assert receipt.match_since < receipt.occurred_at
        assert simulator.deliver_sm_resps == 0  # not stored yet: not acknowledged
        second.held.pop()()
        await simulator.wait_until(lambda: simulator.deliver_sm_resps == 1, 5, "the ack")
    finally:
        await second.connector.stop()
        await simulator.stop()


async def test_a_refused_bind_is_logged_by_its_status_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    simulator = SmscSimulator(SimulatorConfig(port=0))
    await simulator.start()
    connector = connector_for(simulator, password="wrong")
    harness = Harness(simulator, connector)
    with caplog.at_level(logging.WARNING, logger="smsgate.delivery.connectors.smpp"):
        await connector.start(harness.receipt, harness.mo)
        try:
            await until(lambda: "ESME_RINVPASWD" in caplog.text, "the bind refusal logged")
            assert not connector.is_up
        finally:
            await harness.stop()


def test_settings_refuse_what_they_cannot_read() -> None:
    base = "smpp://user:pw@127.0.0.1:2775"
    assert SmppSettings.from_url(f"{base}?submit_id=hex&receipt_id=decimal").text_id_format == (
        IdFormat.DECIMAL
    )
    settings = SmppSettings.from_url(f"{base}?submit_id=hex")
    assert (settings.tlv_id_format, settings.text_id_format) == (IdFormat.HEX, IdFormat.HEX)
    for query, problem in [
        ("window=abc", "window: expected a whole number"),
        ("window=0", "window: expected a whole number of at least 1"),
        ("submit_id=base64", "submit_id: expected one of string, decimal, hex"),
        ("windwo=10", "unknown option 'windwo'"),
        ("tps=-1", "tps: expected a non-negative number"),
        ("bind=receiver", "bind: expected one of transceiver, transmitter_receiver"),
    ]:
        with pytest.raises(ValueError, match=problem):
            SmppSettings.from_url(f"{base}?{query}")
    with pytest.raises(ValueError, match="port"):
        SmppSettings.from_url("smpp://user:pw@127.0.0.1:99999")
    assert carrier_key("0A", settings.submit_id) == "10"
