"""smsgate's SMPP server over TCP: independent ESMEs (smpplib, npm smpp,
Net::SMPP) bind with an account's SMPP credentials and submit; raw sockets
send what no library would (malformed PDUs, a client that vanishes
mid-window); on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smsgate.core.model import Account, PartOf
from smsgate.smpp.customer_link import CustomerLink
from smsgate.smpp.pdu import (
    Bind,
    CancelSm,
    CommandId,
    Framer,
    MessageIdResp,
    MessageState,
    Pdu,
    ShortMessage,
    Status,
    decode,
    encode,
)
from tests.conftest import fast_settings
from tests.smpp.server_thread import PASSWORD, SYSTEM_ID, ServerThread
from tests.support.peers import ESME_IMPLEMENTATIONS, Peers
from tests.support.waiting import wait_until

LONG = "Karibu sana! Ofa ya leo: " * 15  # 375 GSM characters: three UDH parts
MESSAGES = [
    {"to": "254712345678", "text": "Hello {world} ~ 100% @home"},
    {"to": "254712345679", "text": "Habari 你好", "coding": "ucs2"},
    {"to": "254712345680", "text": LONG},
]


@pytest.fixture
def smpp(database_url: str) -> Iterator[ServerThread]:
    settings = fast_settings(
        database_url,
        smpp_server_port=0,
        smpp_server_bind_timeout=2.0,
        smpp_server_enquire_link_seconds=1.0,
        smpp_server_response_timeout=1.0,
    )
    with ServerThread(settings) as running:
        yield running


class RawEsme:
    """A blocking socket speaking our codec, for what libraries will not send."""

    def __init__(self, port: int, tls: ssl.SSLContext | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname="localhost")
        self._framer = Framer()
        self._frames: list[bytes] = []
        self._sequence = 0

    def send(self, pdu: Pdu) -> None:
        self.sock.sendall(encode(pdu))

    def request(self, command: int, body: object = None) -> int:
        self._sequence += 1
        self.send(Pdu(command, self._sequence, 0, body))  # type: ignore[arg-type]
        return self._sequence

    def read(self) -> Pdu:
        while not self._frames:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed")
            self._frames += self._framer.feed(data)
        return decode(self._frames.pop(0))

    def answer_to(self, sequence: int) -> Pdu:
        """The response to ``sequence``, answering the server's enquire_link on the way."""
        while True:
            pdu = self.read()
            if pdu.command_id == CommandId.ENQUIRE_LINK:
                self.send(Pdu(CommandId.ENQUIRE_LINK_RESP, pdu.sequence))
            elif pdu.sequence == sequence:
                return pdu

    def bind(
        self,
        command: int = CommandId.BIND_TRANSCEIVER,
        password: str = PASSWORD,
        system_id: str = SYSTEM_ID,
    ) -> int:
        return self.answer_to(self.request(command, Bind(system_id, password))).command_status

    def close(self) -> None:
        self.sock.close()


def submit(to: str = "254712345678", text: bytes = b"hello", **fields: object) -> ShortMessage:
    return ShortMessage(source_addr="SHOP", destination_addr=to, short_message=text, **fields)  # type: ignore[arg-type]


def stored(smpp: ServerThread, account: Account, ids: list[int]) -> list[str]:
    """Recipients of the account's messages ``ids``, after checking they are
    all it has (no message stored without an accepted answer)."""

    async def read() -> list[str]:
        total = sum((await smpp.store.count_by_state(account.id)).values())
        assert total == len(ids)
        views = [await smpp.store.message(account.id, i) for i in ids]
        return [view.recipient for view in views if view is not None]

    return smpp.run(read())


@pytest.mark.parametrize("impl", ESME_IMPLEMENTATIONS)
def test_an_independent_esme_binds_and_submits_gsm_ucs2_and_long_messages(
    impl: str, smpp: ServerThread, peers: Peers
) -> None:
    account = smpp.account()
    esme = peers.esme(
        impl, smpp.port, system_id=SYSTEM_ID, password=PASSWORD, window=5, messages=MESSAGES
    )
    assert esme.ready["status"] == Status.ROK
    answered = esme.wait_for("submit_sm_resp", 5)  # 1 + 1 + 3 parts
    assert {int(a["status"]) for a in answered} == {Status.ROK}
    ids = sorted({int(str(a["message_id"])) for a in answered})
    assert sorted(stored(smpp, account, ids)) == sorted(
        ["+254712345678", "+254712345679", *["+254712345680"] * 3]
    )
    # The long one stays three parts, each under the client's own reference.
    claimed = smpp.run(smpp.store.claim_due("test", 10, lease_ms=60_000))
    parts = sorted(
        ((PartOf.parse(m.part_of), m.body) for m in claimed if m.part_of is not None),
        key=lambda part: part[0].seq,
    )
    assert [(p.total, p.seq) for p, _ in parts] == [(3, 1), (3, 2), (3, 3)]
    assert len({p.reference for p, _ in parts}) == 1
    assert "".join(body for _, body in parts) == LONG


@pytest.mark.parametrize(
    ("password", "system_id", "status"),
    [("wrong", SYSTEM_ID, Status.RINVPASWD), (PASSWORD, "nobody", Status.RINVSYSID)],
)
def test_wrong_credentials_are_refused_with_their_status(
    smpp: ServerThread, password: str, system_id: str, status: Status
) -> None:
    smpp.account()
    esme = RawEsme(smpp.port)
    sequence = esme.request(CommandId.BIND_TRANSMITTER, Bind(system_id, password))
    assert esme.answer_to(sequence).command_status == status
    # Not bound: a submit_sm is refused for its bind state, the link stays.
    sequence = esme.request(CommandId.SUBMIT_SM, submit())
    assert esme.answer_to(sequence).command_status == Status.RINVBNDSTS
    assert esme.bind() == Status.ROK
    esme.close()


def test_each_bind_mode_and_the_receiver_registry(smpp: ServerThread) -> None:
    account = smpp.account(options={"smpp_max_binds": 3})
    seen: list[tuple[str, int | None]] = []
    smpp.server.on_bound.append(lambda link: seen.append(("bound", link.account_id)))
    smpp.server.on_unbound.append(lambda link: seen.append(("unbound", link.account_id)))
    modes = [CommandId.BIND_TRANSMITTER, CommandId.BIND_RECEIVER, CommandId.BIND_TRANSCEIVER]
    esmes = [RawEsme(smpp.port) for _ in modes]
    for esme, mode in zip(esmes, modes, strict=True):
        assert esme.bind(mode) == Status.ROK
    assert seen == [("bound", account.id)] * 2  # receiver and transceiver only
    fourth = RawEsme(smpp.port)
    assert fourth.bind() == Status.RBINDFAIL  # smpp_max_binds
    receiver = esmes[1]
    sequence = receiver.request(CommandId.SUBMIT_SM, submit())
    assert receiver.answer_to(sequence).command_status == Status.RINVBNDSTS
    sequence = receiver.request(CommandId.UNBIND)
    assert receiver.answer_to(sequence).command_id == CommandId.UNBIND_RESP
    wait_until(lambda: ("unbound", account.id) in seen, what="the receiver unregistered")
    assert len(smpp.server.receivers(account.id)) == 1
    for esme in [*esmes, fourth]:
        esme.close()


def test_deliver_resolves_on_the_customers_answer(smpp: ServerThread) -> None:
    account = smpp.account()
    esme = RawEsme(smpp.port)
    assert esme.bind(CommandId.BIND_RECEIVER) == Status.ROK
    [link] = smpp.server.receivers(account.id)
    assert isinstance(link, CustomerLink)
    body = ShortMessage(source_addr="254712345678", destination_addr="SHOP", short_message=b"hi")
    outcome = asyncio.run_coroutine_threadsafe(link.deliver(body), smpp.loop)
    pdu = esme.read()
    assert pdu.command_id == CommandId.DELIVER_SM
    assert isinstance(pdu.body, ShortMessage) and pdu.body.short_message == b"hi"
    esme.send(Pdu(CommandId.DELIVER_SM_RESP, pdu.sequence, 0, None))
    assert outcome.result(5) is True
    refused = asyncio.run_coroutine_threadsafe(link.deliver(body), smpp.loop)
    pdu = esme.read()
    esme.send(Pdu(CommandId.DELIVER_SM_RESP, pdu.sequence, Status.RSYSERR, None))
    assert refused.result(5) is False
    esme.close()


def test_malformed_and_unknown_pdus_get_generic_nack_and_the_link_stays(
    smpp: ServerThread,
) -> None:
    smpp.account()
    esme = RawEsme(smpp.port)
    assert esme.bind() == Status.ROK
    # submit_sm whose body stops in the middle of its first C-string.
    esme.sock.sendall(struct.pack(">IIII", 20, CommandId.SUBMIT_SM, 0, 7) + b"abcd")
    nack = esme.answer_to(7)
    assert nack.command_id == CommandId.GENERIC_NACK and nack.command_status != Status.ROK
    # replace_sm is not supported: generic_nack ESME_RINVCMDID.
    esme.sock.sendall(struct.pack(">IIII", 16, 0x00000007, 0, 8))
    assert esme.answer_to(8).command_status == Status.RINVCMDID
    sequence = esme.request(CommandId.SUBMIT_SM, submit())
    answer = esme.answer_to(sequence)
    assert answer.command_status == Status.ROK
    esme.close()


def test_query_sm_from_smpplib_tells_the_state_of_its_own_messages_only(
    smpp: ServerThread,
) -> None:
    import smpplib.client

    account = smpp.account()
    smpp.account("other", system_id="other01")
    client = smpplib.client.Client("127.0.0.1", smpp.port, timeout=5, allow_unknown_opt_params=True)
    sent: list[str] = []
    answers: list[object] = []
    errors: list[int] = []
    client.set_message_sent_handler(lambda pdu: sent.append(pdu.message_id.decode()))
    client.set_query_resp_handler(lambda pdu: answers.append(pdu))
    client.set_error_pdu_handler(lambda pdu: errors.append(pdu.status))
    client.connect()
    try:
        client.bind_transceiver(system_id=SYSTEM_ID, password=PASSWORD)
        client.send_message(
            source_addr="SHOP", destination_addr="254712345678", short_message=b"hello"
        )
        while not sent:
            client.read_once()
        [message_id] = sent

        def query(text_id: str) -> None:
            client.query_message(
                message_id=text_id, source_addr_ton=5, source_addr_npi=0, source_addr="SHOP"
            )
            count = len(answers) + len(errors)
            while len(answers) + len(errors) == count:
                client.read_once()

        query(message_id)
        [waiting] = answers
        assert waiting.message_state == MessageState.ENROUTE and not waiting.final_date
        smpp.run(smpp.store.cancel_message(account.id, int(message_id)))
        query(message_id)
        cancelled = answers[-1]
        assert cancelled.message_state == MessageState.DELETED
        assert re.fullmatch(rb"\d{12}\d00\+", cancelled.final_date), cancelled.final_date
        # Another tenant's id reads as one never issued.
        other = RawEsme(smpp.port)
        assert other.bind(system_id="other01") == Status.ROK
        theirs = other.answer_to(other.request(CommandId.SUBMIT_SM, submit())).body
        assert isinstance(theirs, MessageIdResp)
        other.close()
        query(theirs.message_id)
        query(str(int(theirs.message_id) + 1000))
        query("not-an-id")
        assert errors == [Status.RQUERYFAIL, Status.RQUERYFAIL, Status.RINVMSGID]
    finally:
        client.unbind()
        client.disconnect()


def test_cancel_sm_takes_back_and_refunds_only_what_has_not_left(smpp: ServerThread) -> None:
    account = smpp.account(credit=1_000)
    other = smpp.account("other", system_id="other01")
    esme = RawEsme(smpp.port)
    assert esme.bind() == Status.ROK
    first, second = (
        esme.answer_to(esme.request(CommandId.SUBMIT_SM, submit())).body for _ in range(2)
    )
    assert isinstance(first, MessageIdResp) and isinstance(second, MessageIdResp)
    after_charge = smpp.run(smpp.store.account(account.id)).balance

    def cancel(message_id: str, **addresses: object) -> int:
        body = CancelSm(message_id, **addresses)  # type: ignore[arg-type]
        return esme.answer_to(esme.request(CommandId.CANCEL_SM, body)).command_status

    assert cancel(first.message_id, source_addr="SHOP") == Status.ROK
    assert cancel(first.message_id) == Status.RCANCELFAIL  # already cancelled
    assert cancel("") == Status.RCANCELFAIL  # by source and destination: not offered
    # A message a worker holds is on its way: it cannot be cancelled.
    smpp.run(smpp.store.claim_due("w", 10, lease_ms=60_000))
    assert cancel(second.message_id) == Status.RCANCELFAIL
    # Another tenant cannot cancel this account's messages.
    intruder = RawEsme(smpp.port)
    assert intruder.bind(password=PASSWORD, system_id="other01") == Status.ROK
    body = CancelSm(second.message_id)
    answer = intruder.answer_to(intruder.request(CommandId.CANCEL_SM, body))
    assert answer.command_status == Status.RCANCELFAIL
    refunded = smpp.run(smpp.store.account(account.id)).balance
    assert refunded - after_charge == smpp.run(smpp.store.message_row(int(first.message_id))).cost
    assert smpp.run(smpp.store.account(other.id)).balance == 10**9
    assert smpp.run(smpp.store.message_row(int(first.message_id))).state == "cancelled"
    esme.close()
    intruder.close()


def test_a_pdu_over_the_length_limit_ends_the_link(smpp: ServerThread) -> None:
    smpp.account()
    esme = RawEsme(smpp.port)
    assert esme.bind() == Status.ROK
    too_long = smpp.settings.smpp_server_max_pdu_bytes + 1
    esme.sock.sendall(struct.pack(">IIII", too_long, CommandId.SUBMIT_SM, 0, 9))
    assert esme.answer_to(0).command_status == Status.RINVCMDLEN
    with pytest.raises(ConnectionError):
        esme.read()


def test_rate_credit_and_address_refusals_carry_their_status(smpp: ServerThread) -> None:
    smpp.account(options={"max_messages_per_second": 1, "message_burst": 1})
    esme = RawEsme(smpp.port)
    assert esme.bind() == Status.ROK
    first = esme.request(CommandId.SUBMIT_SM, submit())
    assert esme.answer_to(first).command_status == Status.ROK
    # The bucket may be overdrawn by one request (as on HTTP); then it refuses.
    second = esme.request(CommandId.SUBMIT_SM, submit())
    esme.answer_to(second)
    third = esme.request(CommandId.SUBMIT_SM, submit())
    assert esme.answer_to(third).command_status == Status.RTHROTTLED
    esme.close()
    smpp.account("poor", system_id="poor", credit=0)
    poor = RawEsme(smpp.port)
    sequence = poor.request(CommandId.BIND_TRANSMITTER, Bind("poor", PASSWORD))
    assert poor.answer_to(sequence).command_status == Status.ROK
    sequence = poor.request(CommandId.SUBMIT_SM, submit())
    assert poor.answer_to(sequence).command_status == Status.RMSGQFUL
    sequence = poor.request(CommandId.SUBMIT_SM, submit(to="12"))
    assert poor.answer_to(sequence).command_status == Status.RINVDSTADR
    poor.close()
    smpp.account("far", system_id="far", options={"smpp_allowed_addresses": ["192.0.2.0/24"]})
    far = RawEsme(smpp.port)
    sequence = far.request(CommandId.BIND_TRANSMITTER, Bind("far", PASSWORD))
    assert far.answer_to(sequence).command_status == Status.RBINDFAIL
    far.close()


def test_a_gathered_window_maps_each_result_back_and_a_killed_client_rebinds(
    smpp: ServerThread,
) -> None:
    account = smpp.account()
    esme = RawEsme(smpp.port)
    assert esme.bind() == Status.ROK
    recipients = [f"2547123{n:05d}" if n % 10 else "12" for n in range(100)]
    frames = b"".join(
        encode(Pdu(CommandId.SUBMIT_SM, 100 + n, 0, submit(to=to)))
        for n, to in enumerate(recipients)
    )
    esme.sock.sendall(frames)  # a whole window in one write
    answers = {}
    while len(answers) < 100:
        pdu = esme.read()
        if pdu.command_id == CommandId.SUBMIT_SM_RESP:
            answers[pdu.sequence] = pdu
    for n, to in enumerate(recipients):
        status = answers[100 + n].command_status
        assert status == (Status.ROK if to != "12" else Status.RINVDSTADR)
    ids = [
        int(answers[100 + n].body.message_id)  # type: ignore[union-attr]
        for n, to in enumerate(recipients)
        if to != "12"
    ]
    assert len(stored(smpp, account, ids)) == 90
    # Killed mid-window: the unanswered submit_sm are simply not acknowledged.
    esme.sock.sendall(frames[: len(frames) // 2])
    esme.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    esme.close()
    again = RawEsme(smpp.port)
    assert again.bind() == Status.ROK
    sequence = again.request(CommandId.SUBMIT_SM, submit())
    assert again.answer_to(sequence).command_status == Status.ROK
    again.close()


def test_a_half_open_link_is_closed(smpp: ServerThread) -> None:
    smpp.account()
    esme = RawEsme(smpp.port)
    assert esme.bind() == Status.ROK
    enquiry = esme.read()  # the server asks after a quiet second ...
    assert enquiry.command_id == CommandId.ENQUIRE_LINK
    with pytest.raises(ConnectionError):  # ... and, unanswered, closes
        esme.read()


def test_an_idle_link_is_unbound_then_closed(database_url: str) -> None:
    settings = fast_settings(
        database_url,
        smpp_server_port=0,
        smpp_server_idle_timeout=1.0,
        smpp_server_enquire_link_seconds=0.3,
        smpp_server_response_timeout=5.0,
    )
    with ServerThread(settings) as smpp:
        smpp.account()
        esme = RawEsme(smpp.port)
        assert esme.bind() == Status.ROK
        # It answers every enquire_link, but neither submits nor receives.
        while (pdu := esme.read()).command_id == CommandId.ENQUIRE_LINK:
            esme.send(Pdu(CommandId.ENQUIRE_LINK_RESP, pdu.sequence))
        assert pdu.command_id == CommandId.UNBIND
        esme.send(Pdu(CommandId.UNBIND_RESP, pdu.sequence))
        with pytest.raises(ConnectionError):
            esme.read()


def test_over_tls_only(database_url: str, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    settings = fast_settings(
        database_url,
        smpp_server_port=0,
        smpp_server_tls_cert=str(cert),
        smpp_server_tls_key=str(key),
    )
    with ServerThread(settings) as smpp:
        smpp.account()
        client = ssl.create_default_context(cafile=str(cert))
        esme = RawEsme(smpp.port, tls=client)
        assert esme.bind() == Status.ROK
        answer = esme.answer_to(esme.request(CommandId.SUBMIT_SM, submit()))
        assert answer.command_status == Status.ROK
        esme.close()
        # In the clear, a bind is never answered: the link closes unbound.
        plain = RawEsme(smpp.port)
        plain.request(CommandId.BIND_TRANSCEIVER, Bind(SYSTEM_ID, PASSWORD))
        with pytest.raises((ConnectionError, TimeoutError)):
            plain.read()
        plain.close()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    command=st.sampled_from([int(c) for c in CommandId] + [0x3, 0x103, 0xFFFFFFFF]),
    body=st.binary(max_size=300),
)
def test_fuzzed_pdus_never_break_the_server(smpp: ServerThread, command: int, body: bytes) -> None:
    if not smpp.run(smpp.store.account_by_name("shop")):
        smpp.account(options={"smpp_max_binds": 1000})
    fuzzer = RawEsme(smpp.port)
    fuzzer.sock.sendall(struct.pack(">IIII", 16 + len(body), command, 0, 5) + body)
    other = RawEsme(smpp.port)
    assert other.bind(CommandId.BIND_TRANSMITTER) == Status.ROK
    sequence = other.request(CommandId.SUBMIT_SM, submit())
    assert other.answer_to(sequence).command_status == Status.ROK
    fuzzer.close()
    other.close()
