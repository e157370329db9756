"""The SMSC simulator over real TCP, driven by a minimal ESME built on the codec.

The client here is deliberately small and independent of the gateway's SMPP
connector, so a simulator bug cannot hide behind a matching connector bug.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import signal
import socket
import struct
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from typer.testing import CliRunner

from smsgate.cli import app
from smsgate.core.sandbox_rules import parse_sandbox_rules
from smsgate.smpp.pdu import (
    ESM_DELIVERY_RECEIPT,
    Bind,
    BindResp,
    CommandId,
    Framer,
    MessageIdResp,
    MessageState,
    Pdu,
    ShortMessage,
    Status,
    Tag,
    decode,
    encode,
    read_cstring_tlv,
    read_int_tlv,
)
from smsgate.smpp.simulator import SimulatorConfig, SmscSimulator

RESPONSE = 0x80000000
TIMEOUT = 5.0
BIND_COMMANDS = {
    "transmitter": (CommandId.BIND_TRANSMITTER, CommandId.BIND_TRANSMITTER_RESP),
    "receiver": (CommandId.BIND_RECEIVER, CommandId.BIND_RECEIVER_RESP),
    "transceiver": (CommandId.BIND_TRANSCEIVER, CommandId.BIND_TRANSCEIVER_RESP),
}
DELIVERED_NUMBER = "254712345678"
RECEIPT_FIELDS = re.compile(r"id:(?P<id>\S+) .*stat:(?P<stat>\w+) err:(?P<err>\d+)")


class Esme:
    """Requests matched to responses by sequence; everything the SMSC initiates
    (deliver_sm, unbind, unsolicited generic_nack) lands in ``inbox``."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        answer_deliver: bool = True,
    ) -> None:
        self._reader, self._writer = reader, writer
        self._answer_deliver = answer_deliver
        self._sequences = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Pdu]] = {}
        self.inbox: asyncio.Queue[Pdu] = asyncio.Queue()
        self.received: list[Pdu] = []  # every PDU, in arrival order
        self.closed = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, port: int, *, answer_deliver: bool = True) -> Esme:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer, answer_deliver=answer_deliver)

    async def _read(self) -> None:
        framer = Framer()
        try:
            while data := await self._reader.read(65536):
                for frame in framer.feed(data):
                    self._dispatch(decode(frame))
        except ConnectionError:
            pass
        finally:
            self.closed.set()

    def _dispatch(self, pdu: Pdu) -> None:
        self.received.append(pdu)
        future = self._waiting.pop(pdu.sequence, None) if pdu.command_id & RESPONSE else None
        if future is not None:
            future.set_result(pdu)
            return
        if pdu.command_id == CommandId.DELIVER_SM and self._answer_deliver:
            self.send(Pdu(CommandId.DELIVER_SM_RESP, pdu.sequence, 0, MessageIdResp("")))
        elif pdu.command_id == CommandId.UNBIND:
            self.send(Pdu(CommandId.UNBIND_RESP, pdu.sequence, 0, None))
        self.inbox.put_nowait(pdu)

    def send(self, pdu: Pdu) -> None:
        self._writer.write(encode(pdu))

    def expect(self) -> tuple[int, asyncio.Future[Pdu]]:
        """A fresh sequence number and the future its response will resolve."""
        sequence = next(self._sequences)
        future: asyncio.Future[Pdu] = asyncio.get_running_loop().create_future()
        self._waiting[sequence] = future
        return sequence, future

    async def request(self, command: CommandId, body: Any = None) -> Pdu:
        sequence, future = self.expect()
        self.send(Pdu(command, sequence, 0, body))
        return await asyncio.wait_for(future, TIMEOUT)

    async def raw_request(self, command_id: int, body: bytes = b"") -> Pdu:
        """A PDU the codec would refuse to build: header written by hand."""
        sequence, future = self.expect()
        self._writer.write(struct.pack(">IIII", 16 + len(body), command_id, 0, sequence) + body)
        return await asyncio.wait_for(future, TIMEOUT)

    async def bind(
        self, mode: str = "transceiver", system_id: str = "smsgate", password: str = "secret"
    ) -> Pdu:
        return await self.request(BIND_COMMANDS[mode][0], Bind(system_id, password))

    def submit_body(
        self, destination: str, text: bytes = b"hello", registered_delivery: int = 1
    ) -> ShortMessage:
        return ShortMessage(
            source_addr="SHOP",
            source_addr_ton=5,
            source_addr_npi=0,
            destination_addr=destination,
            short_message=text,
            registered_delivery=registered_delivery,
        )

    async def submit(
        self, destination: str, text: bytes = b"hello", registered_delivery: int = 1
    ) -> Pdu:
        body = self.submit_body(destination, text, registered_delivery)
        return await self.request(CommandId.SUBMIT_SM, body)

    async def next_pdu(self) -> Pdu:
        return await asyncio.wait_for(self.inbox.get(), TIMEOUT)

    async def wait_closed(self) -> None:
        await asyncio.wait_for(self.closed.wait(), TIMEOUT)

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class Net:
    """Simulators and clients started by a test, all stopped after it."""

    def __init__(self) -> None:
        self.simulators: list[SmscSimulator] = []
        self.clients: list[Esme] = []

    async def simulator(self, **config: Any) -> SmscSimulator:
        config.setdefault("receipt_delay_ms", 5)
        simulator = SmscSimulator(SimulatorConfig(port=0, **config))
        await simulator.start()
        self.simulators.append(simulator)
        return simulator

    async def client(
        self, simulator: SmscSimulator, bind: str | None = None, *, answer_deliver: bool = True
    ) -> Esme:
        client = await Esme.connect(simulator.port, answer_deliver=answer_deliver)
        self.clients.append(client)
        if bind is not None:
            response = await client.bind(bind)
            assert response.command_status == Status.ROK
        return client


@pytest.fixture
async def net() -> AsyncIterator[Net]:
    harness = Net()
    try:
        yield harness
    finally:
        for client in harness.clients:
            await client.close()
        for simulator in harness.simulators:
            await simulator.stop()


def receipt_fields(pdu: Pdu) -> dict[str, str]:
    assert pdu.command_id == CommandId.DELIVER_SM
    assert isinstance(pdu.body, ShortMessage)
    assert pdu.body.esm_class & ESM_DELIVERY_RECEIPT
    match = RECEIPT_FIELDS.search(pdu.body.short_message.decode("ascii"))
    assert match, pdu.body.short_message
    return match.groupdict()


def message_id(response: Pdu) -> str:
    assert response.command_id == CommandId.SUBMIT_SM_RESP
    assert response.command_status == Status.ROK
    assert isinstance(response.body, MessageIdResp)
    assert response.body.message_id
    return response.body.message_id


# ------------------------------------------------------------------ binding


@pytest.mark.parametrize("mode", ["transmitter", "receiver", "transceiver"])
async def test_each_bind_mode_is_accepted(net: Net, mode: str) -> None:
    simulator = await net.simulator()
    client = await net.client(simulator)
    response = await client.bind(mode)
    assert response.command_id == BIND_COMMANDS[mode][1]
    assert response.command_status == Status.ROK
    assert response.body == BindResp("smsc-sim")
    assert simulator.bound == [mode]


@pytest.mark.parametrize(
    ("system_id", "password", "status"),
    [("someone", "secret", Status.RINVSYSID), ("smsgate", "guess", Status.RINVPASWD)],
)
async def test_wrong_credentials_are_refused(
    net: Net, system_id: str, password: str, status: Status
) -> None:
    simulator = await net.simulator()
    client = await net.client(simulator)
    refused = await client.bind("transceiver", system_id, password)
    assert refused.command_status == status
    assert simulator.bound == []
    # The connection stays usable for a corrected attempt.
    assert (await client.bind("transceiver")).command_status == Status.ROK
    assert simulator.bound == ["transceiver"]


async def test_a_second_bind_on_one_connection_is_refused(net: Net) -> None:
    simulator = await net.simulator()
    client = await net.client(simulator, bind="transceiver")
    again = await client.bind("transmitter")
    assert again.command_id == CommandId.BIND_TRANSMITTER_RESP
    assert again.command_status == Status.RALYBND
    assert simulator.bound == ["transceiver"]


async def test_submit_needs_a_bind_that_may_send(net: Net) -> None:
    simulator = await net.simulator()
    client = await net.client(simulator)
    assert (await client.submit(DELIVERED_NUMBER)).command_status == Status.RINVBNDSTS
    await client.bind("receiver")
    assert (await client.submit(DELIVERED_NUMBER)).command_status == Status.RINVBNDSTS
    assert simulator.submitted == []


async def test_enquire_link_is_answered_bound_or_not(net: Net) -> None:
    simulator = await net.simulator()
    client = await net.client(simulator)
    for _ in range(2):
        response = await client.request(CommandId.ENQUIRE_LINK)
        assert response.command_id == CommandId.ENQUIRE_LINK_RESP
        assert response.command_status == Status.ROK
        await client.bind("transmitter")


async def test_unbind_is_answered_then_the_connection_closes(net: Net) -> None:
    simulator = await net.simulator()
    client = await net.client(simulator, bind="transceiver")
    response = await client.request(CommandId.UNBIND)
    assert response.command_id == CommandId.UNBIND_RESP
    await client.wait_closed()
    await simulator.wait_until(lambda: simulator.sessions == 0, TIMEOUT, "the session to end")


# ----------------------------------------------------- submission and receipts


@pytest.mark.parametrize(
    ("destination", "stat", "state", "err"),
    [
        (DELIVERED_NUMBER, "DELIVRD", MessageState.DELIVERED, "000"),
        ("254712345000", "UNDELIV", MessageState.UNDELIVERABLE, "006"),
        ("254712345001", "UNDELIV", MessageState.UNDELIVERABLE, "001"),
        ("254712345003", "EXPIRED", MessageState.EXPIRED, "000"),
    ],
)
async def test_receipt_reports_the_outcome_of_the_number(
    net: Net, destination: str, stat: str, state: MessageState, err: str
) -> None:
    simulator = await net.simulator()
    client = await net.client(simulator, bind="transceiver")
    carrier_id = message_id(await client.submit(destination, b"Hello there"))

    receipt = await client.next_pdu()
    assert receipt_fields(receipt) == {"id": carrier_id, "stat": stat, "err": err}
    assert isinstance(receipt.body, ShortMessage)
    assert b"text:Hello there" in receipt.body.short_message
    # The handset reports back to the sender: the addresses are swapped.
    assert receipt.body.source_addr == destination
    assert receipt.body.destination_addr == "SHOP"
    assert read_cstring_tlv(receipt.body.tlvs[Tag.RECEIPTED_MESSAGE_ID]) == carrier_id
    assert read_int_tlv(receipt.body.tlvs[Tag.MESSAGE_STATE]) == state

    [seen] = simulator.submitted
    assert (seen.system_id, seen.source, seen.destination) == ("smsgate", "SHOP", destination)
    assert (seen.short_message, seen.message_id, seen.status) == (b"Hello there", carrier_id, 0)
    await simulator.wait_until(lambda: simulator.deliver_sm_resps == 1, TIMEOUT, "the resp")


async def test_a_rejected_number_fails_the_submit_and_gets_no_receipt(net: Net) -> None:
    simulator = await net.simulator()
    client = await net.client(simulator, bind="transceiver")
    refused = await client.submit("254712345004")
    assert refused.command_id == CommandId.SUBMIT_SM_RESP
    assert refused.command_status == Status.RSUBMITFAIL
    accepted = message_id(await client.submit(DELIVERED_NUMBER))
    # Receipts leave in submission order, so a receipt for the refused message
    # would have come first.
    assert receipt_fields(await client.next_pdu())["id"] == accepted
    assert [(m.status, m.message_id) for m in simulator.submitted] == [
        (Status.RSUBMITFAIL, ""),
        (Status.ROK, accepted),
    ]


async def test_registered_delivery_chooses_which_outcomes_are_reported(net: Net) -> None:
    simulator = await net.simulator()
    client = await net.client(simulator, bind="transceiver")
    await client.submit(DELIVERED_NUMBER, registered_delivery=0)
    await client.submit(DELIVERED_NUMBER, registered_delivery=2)  # failures only
    failed = message_id(await client.submit("254712345000", registered_delivery=2))
    last = message_id(await client.submit(DELIVERED_NUMBER, registered_delivery=1))
    assert receipt_fields(await client.next_pdu())["id"] == failed
    assert receipt_fields(await client.next_pdu())["id"] == last
    assert simulator.receipts_sent == 2


@pytest.mark.parametrize(
    ("id_style", "receipt_style", "spelled"),
    [
        ("hex", "same", lambda i: i),
        ("hex", "decimal", lambda i: str(int(i, 16))),
        ("decimal", "same", lambda i: i),
        ("decimal", "hex", lambda i: f"{int(i):x}"),
        ("hex", "leading_zeros", lambda i: "0" * max(1, 20 - len(i)) + i),
        ("sequential_hex", "upper", str.upper),
        ("upper_hex", "lower", str.lower),
    ],
)
async def test_receipts_spell_the_id_as_configured(
    net: Net, id_style: str, receipt_style: str, spelled: Callable[[str], str]
) -> None:
    simulator = await net.simulator(message_id_style=id_style, receipt_id_style=receipt_style)
    client = await net.client(simulator, bind="transceiver")
    carrier_id = message_id(await client.submit(DELIVERED_NUMBER))
    if id_style == "decimal":
        assert carrier_id.isdigit()
    else:
        int(carrier_id, 16)
    receipt = await client.next_pdu()
    assert receipt_fields(receipt)["id"] == spelled(carrier_id)
    assert isinstance(receipt.body, ShortMessage)
    assert read_cstring_tlv(receipt.body.tlvs[Tag.RECEIPTED_MESSAGE_ID]) == spelled(carrier_id)


@pytest.mark.parametrize(
    ("id_style", "first_twelve"),
    [
        ("sequential_decimal", [str(i) for i in range(1, 13)]),
        ("sequential_hex", [f"{i:x}" for i in range(1, 13)]),
        ("upper_hex", [f"{i:X}" for i in range(1, 13)]),
        ("zero_padded", [f"{i:010d}" for i in range(1, 13)]),
    ],
)
async def test_sequential_ids_count_from_one(
    net: Net, id_style: str, first_twelve: list[str]
) -> None:
    simulator = await net.simulator(message_id_style=id_style)
    client = await net.client(simulator, bind="transmitter")
    ids = [message_id(await client.submit(DELIVERED_NUMBER)) for _ in range(12)]
    assert ids == first_twelve


async def test_uuid_ids(net: Net) -> None:
    simulator = await net.simulator(message_id_style="uuid")
    client = await net.client(simulator, bind="transmitter")
    ids = {message_id(await client.submit(DELIVERED_NUMBER)) for _ in range(5)}
    assert len(ids) == 5 and all(len(i) == 36 and i.count("-") == 4 for i in ids)


async def test_the_id_count_restarts_as_configured_and_on_request(net: Net) -> None:
    simulator = await net.simulator(message_id_style="sequential_decimal", restart_ids_after=3)
    client = await net.client(simulator, bind="transmitter")
    ids = [message_id(await client.submit(DELIVERED_NUMBER)) for _ in range(7)]
    assert ids == ["1", "2", "3", "1", "2", "3", "1"]
    simulator.restart_ids()
    assert message_id(await client.submit(DELIVERED_NUMBER)) == "1"


async def test_a_receipt_can_come_before_the_response_it_names(net: Net) -> None:
    simulator = await net.simulator(receipt_before_resp=True, receipt_delay_ms=500)
    client = await net.client(simulator, bind="transceiver")
    response = await client.submit(DELIVERED_NUMBER)
    receipt = await client.next_pdu()  # without the receipt delay
    assert receipt_fields(receipt)["id"] == message_id(response)
    arrived = [pdu.command_id for pdu in client.received]
    assert arrived[-2:] == [CommandId.DELIVER_SM, CommandId.SUBMIT_SM_RESP]


async def test_a_per_second_limit_is_answered_with_throttled(net: Net) -> None:
    simulator = await net.simulator(max_per_second=5)
    client = await net.client(simulator, bind="transmitter")
    statuses = [
        r.command_status
        for r in await asyncio.gather(*(client.submit(DELIVERED_NUMBER) for _ in range(20)))
    ]
    # A burst takes the bucket's second's worth; the rest is refused.
    assert statuses.count(Status.ROK) in (5, 6)
    assert set(statuses) == {Status.ROK, Status.RTHROTTLED}


async def test_receipts_without_tlvs(net: Net) -> None:
    simulator = await net.simulator(receipt_tlvs=False)
    client = await net.client(simulator, bind="transceiver")
    carrier_id = message_id(await client.submit(DELIVERED_NUMBER))
    receipt = await client.next_pdu()
    assert receipt_fields(receipt)["id"] == carrier_id
    assert isinstance(receipt.body, ShortMessage)
    assert receipt.body.tlvs == {}


async def test_ids_are_unique(net: Net) -> None:
    simulator = await net.simulator()
    client = await net.client(simulator, bind="transmitter")
    responses = await asyncio.gather(*(client.submit(DELIVERED_NUMBER) for _ in range(50)))
    assert len({message_id(r) for r in responses}) == 50


@pytest.mark.parametrize(
    ("option", "status"),
    [("throttle_every", Status.RTHROTTLED), ("queue_full_every", Status.RMSGQFUL)],
)
async def test_every_nth_submit_is_pushed_back(net: Net, option: str, status: Status) -> None:
    simulator = await net.simulator(**{option: 3})
    client = await net.client(simulator, bind="transmitter")
    statuses = [(await client.submit(DELIVERED_NUMBER)).command_status for _ in range(7)]
    assert statuses == [0, 0, status, 0, 0, status, 0]
    assert [m.status for m in simulator.submitted] == statuses


async def test_a_receipt_never_overtakes_its_submit_sm_resp(net: Net) -> None:
    simulator = await net.simulator(respond_delay_ms=30, receipt_delay_ms=0)
    client = await net.client(simulator, bind="transceiver")
    carrier_id = message_id(await client.submit(DELIVERED_NUMBER))
    await client.next_pdu()
    commands = [p.command_id for p in client.received]
    assert commands.index(CommandId.SUBMIT_SM_RESP) < commands.index(CommandId.DELIVER_SM)
    assert simulator.submitted[0].message_id == carrier_id


async def test_a_pipelined_burst_is_answered_in_full(net: Net) -> None:
    simulator = await net.simulator()
    client = await net.client(simulator, bind="transmitter")
    futures = []
    frames = []
    for n in range(5000):
        sequence, future = client.expect()
        body = client.submit_body(f"2547{n:08d}", registered_delivery=0)
        frames.append(encode(Pdu(CommandId.SUBMIT_SM, sequence, 0, body)))
        futures.append(future)
    client._writer.write(b"".join(frames))
    responses = await asyncio.wait_for(asyncio.gather(*futures), 30)
    refused = {n for n in range(5000) if f"{n:08d}".endswith("004")}
    assert [r.command_status == Status.ROK for r in responses] == [
        n not in refused for n in range(5000)
    ]
    assert len(simulator.submitted) == 5000


# ------------------------------------------------------------ routing, MO


async def test_receipts_wait_for_a_receiver_to_bind(net: Net) -> None:
    simulator = await net.simulator()
    transmitter = await net.client(simulator, bind="transmitter")
    carrier_id = message_id(await transmitter.submit(DELIVERED_NUMBER))
    await simulator.wait_until(lambda: simulator.held == 1, TIMEOUT, "the receipt to be held")

    receiver = await net.client(simulator, bind="receiver")
    assert receipt_fields(await receiver.next_pdu())["id"] == carrier_id
    assert simulator.held == 0
    assert transmitter.inbox.empty()


async def test_receipts_go_back_to_the_submitting_transceiver(net: Net) -> None:
    simulator = await net.simulator()
    first = await net.client(simulator, bind="transceiver")
    second = await net.client(simulator, bind="transceiver")
    for client in (second, first):
        carrier_id = message_id(await client.submit(DELIVERED_NUMBER))
        assert receipt_fields(await client.next_pdu())["id"] == carrier_id
    assert first.inbox.empty() and second.inbox.empty()


async def test_send_mo_reaches_a_bound_receiver(net: Net) -> None:
    simulator = await net.simulator()
    client = await net.client(simulator, bind="receiver")
    assert await simulator.send_mo("254712345678", "254709000999", b"YES")
    mo = await client.next_pdu()
    assert mo.command_id == CommandId.DELIVER_SM
    assert isinstance(mo.body, ShortMessage)
    assert (mo.body.source_addr, mo.body.destination_addr) == ("254712345678", "254709000999")
    assert (mo.body.short_message, mo.body.esm_class, mo.body.data_coding) == (b"YES", 0, 0)
    await simulator.wait_until(lambda: simulator.deliver_sm_resps == 1, TIMEOUT, "the resp")

    long_text = "Ж".encode("utf-16-be") * 200
    await simulator.send_mo("254712345678", "254709000999", long_text, data_coding=8)
    long_mo = await client.next_pdu()
    assert isinstance(long_mo.body, ShortMessage)
    assert long_mo.body.short_message == b""
    assert long_mo.body.tlvs[Tag.MESSAGE_PAYLOAD] == long_text
    assert simulator.mo_sent == 2


async def test_send_mo_is_held_without_a_receiver(net: Net) -> None:
    simulator = await net.simulator()
    await net.client(simulator, bind="transmitter")
    assert not await simulator.send_mo("254712345678", "254709000999", b"later")
    assert simulator.held == 1
    receiver = await net.client(simulator, bind="transceiver")
    mo = await receiver.next_pdu()
    assert isinstance(mo.body, ShortMessage) and mo.body.short_message == b"later"


async def test_a_replies_number_answers_after_its_receipt(net: Net) -> None:
    simulator = await net.simulator(rules=parse_sandbox_rules("77=replies"))
    client = await net.client(simulator, bind="transceiver")
    carrier_id = message_id(await client.submit("254712345677", b"Are you coming?"))
    assert receipt_fields(await client.next_pdu()) == {
        "id": carrier_id,
        "stat": "DELIVRD",
        "err": "000",
    }
    reply = await client.next_pdu()
    assert reply.command_id == CommandId.DELIVER_SM
    assert isinstance(reply.body, ShortMessage)
    assert not reply.body.esm_class & ESM_DELIVERY_RECEIPT
    assert (reply.body.source_addr, reply.body.destination_addr) == ("254712345677", "SHOP")
    assert reply.body.short_message == b"Re: Are you coming?"


# ------------------------------------------------------- failures on purpose


async def test_drop_connections_closes_every_socket(net: Net) -> None:
    simulator = await net.simulator()
    clients = [await net.client(simulator, bind=mode) for mode in ("transmitter", "receiver")]
    await simulator.drop_connections()
    for client in clients:
        await client.wait_closed()
        assert client.inbox.empty()  # abrupt: no unbind
    assert simulator.sessions == 0
    again = await net.client(simulator, bind="transceiver")
    assert (await again.request(CommandId.ENQUIRE_LINK)).command_status == Status.ROK


async def test_receipts_not_acknowledged_before_a_drop_are_sent_again(net: Net) -> None:
    simulator = await net.simulator()
    silent = await net.client(simulator, bind="transceiver", answer_deliver=False)
    carrier_id = message_id(await silent.submit(DELIVERED_NUMBER))
    assert receipt_fields(await silent.next_pdu())["id"] == carrier_id
    await simulator.drop_connections()
    assert simulator.held == 1

    receiver = await net.client(simulator, bind="receiver")
    assert receipt_fields(await receiver.next_pdu())["id"] == carrier_id
    await simulator.wait_until(lambda: simulator.deliver_sm_resps == 1, TIMEOUT, "the resp")
    assert simulator.receipts_sent == 2


async def test_an_unknown_command_is_nacked_and_the_session_goes_on(net: Net) -> None:
    simulator = await net.simulator()
    client = await net.client(simulator, bind="transceiver")
    nack = await client.raw_request(0x00000099)
    assert nack.command_id == CommandId.GENERIC_NACK
    assert nack.command_status == Status.RINVCMDID
    assert (await client.request(CommandId.ENQUIRE_LINK)).command_status == Status.ROK


@pytest.mark.parametrize(
    ("garbage", "status", "sequence"),
    [
        pytest.param(b"\x00\x00\x00\x05hello, world", Status.RINVCMDLEN, 0, id="bad-length"),
        pytest.param(
            struct.pack(">IIII", 20, CommandId.SUBMIT_SM, 0, 9) + b"\xff\xff\xff\xff",
            Status.RINVSERTYP,
            9,
            id="bad-body",
        ),
    ],
)
async def test_garbage_is_nacked_and_the_connection_closed(
    net: Net, garbage: bytes, status: Status, sequence: int
) -> None:
    simulator = await net.simulator()
    client = await net.client(simulator, bind="transceiver")
    client._writer.write(garbage)
    nack = await client.next_pdu()
    assert nack.command_id == CommandId.GENERIC_NACK
    assert (nack.command_status, nack.sequence) == (status, sequence)
    await client.wait_closed()


async def test_stop_unbinds_bound_sessions(net: Net) -> None:
    simulator = await net.simulator()
    client = await net.client(simulator, bind="transceiver")
    idle = await net.client(simulator)
    await simulator.stop()
    assert (await client.next_pdu()).command_id == CommandId.UNBIND
    await client.wait_closed()
    await idle.wait_closed()
    assert idle.inbox.empty()


async def test_wait_for_submitted_times_out(net: Net) -> None:
    simulator = await net.simulator()
    with pytest.raises(TimeoutError):
        await simulator.wait_for_submitted(1, timeout=0.05)


def test_config_rejects_what_could_never_work() -> None:
    with pytest.raises(ValueError, match="message_id_style"):
        SimulatorConfig(message_id_style="base64")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="receipt_id_style"):
        SimulatorConfig(receipt_id_style="roman")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="system_id"):
        SimulatorConfig(system_id="a-system-id-of-20-ch")
    with pytest.raises(ValueError, match="throttle_every"):
        SimulatorConfig(throttle_every=-1)


# --------------------------------------------------------------------- CLI


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _within(awaitable: Awaitable[Any]) -> Any:
    return await asyncio.wait_for(awaitable, 20)


async def test_cli_runs_until_interrupted() -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "smsgate",
        "smsc-sim",
        "--port",
        str(port),
        "--rules",
        "000=absent",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        banner = (await _within(process.stdout.readline())).decode()
        assert f"listening on 127.0.0.1:{port}" in banner
        assert f"smpp://smsgate:secret@127.0.0.1:{port}" in banner

        client = await Esme.connect(port)
        assert (await client.bind("transceiver")).command_status == Status.ROK
        assert (await client.request(CommandId.UNBIND)).command_id == CommandId.UNBIND_RESP
        await client.wait_closed()
        await client.close()

        process.send_signal(signal.SIGINT)
        stdout, stderr = await _within(process.communicate())
        assert process.returncode == 0, stderr.decode()
        assert "stopped" in stdout.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (["--rules", "12=maybe"], "unknown outcome"),
        (["--password", "far-too-long"], "password must be at most 8"),
    ],
)
def test_cli_refuses_what_could_never_work(arguments: list[str], complaint: str) -> None:
    result = CliRunner().invoke(app, ["smsc-sim", *arguments])
    assert result.exit_code == 2
    assert complaint in result.output
