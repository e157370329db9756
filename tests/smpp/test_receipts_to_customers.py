"""Receipts back to customers over SMPP, end to end: ``smsgate serve --smpp``
as a real process with its delivery workers and the sandbox carrier, an
independent ESME (smpplib, npm smpp, Net::SMPP) bound as a transceiver; and
the kill test: SIGKILL after every submit_sm_resp, and every acknowledged
message's receipt still reaches the customer once it binds again."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from smsgate.smpp.receipt_text import parse_receipt_text
from tests.support.peers import ESME_IMPLEMENTATIONS, EventLog, Peers
from tests.support.waiting import wait_until
from tests.test_cli import free_port, smsgate

SYSTEM_ID = "esme01"
RECEIPTED_MESSAGE_ID = "0x001e"


@pytest.fixture
def env(tmp_path: Any, database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "SMSGATE_DATA_DIR": str(tmp_path / "data"),
        "SMSGATE_DATABASE_URL": database_url,
        "SMSGATE_SANDBOX_RECEIPT_DELAY_MS": "50",
        "SMSGATE_PROCESSES": "1",
        "COLUMNS": "200",
    }


class Gateway:
    """``smsgate serve --smpp`` on fresh ports, started and killed at will."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.smpp_port = free_port()
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "smsgate", "serve", "--smpp"),
                *("--port", str(free_port()), "--smpp-port", str(self.smpp_port)),
            ],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_until(self._listening, timeout=60, what="the SMPP server listening")

    def _listening(self) -> bool:
        assert self.process is not None
        assert self.process.poll() is None, self.process.stderr.read()  # type: ignore[union-attr]
        try:
            socket.create_connection(("127.0.0.1", self.smpp_port), timeout=1).close()
        except OSError:
            return False
        return True

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@pytest.fixture
def gateway(env: dict[str, str]) -> Iterator[Gateway]:
    running = Gateway(env)
    try:
        yield running
    finally:
        running.stop()


def smpp_password(env: dict[str, str]) -> str:
    created = smsgate(
        "accounts", "create", "esme", "--credit", "1000", "--smpp-system-id", SYSTEM_ID, env=env
    )
    assert created.returncode == 0, created.stdout + created.stderr
    found = re.search(r"smpp password: (\S+)", created.stdout)
    assert found is not None, created.stdout
    return found.group(1)


def messages(count: int) -> list[dict[str, Any]]:
    # Numbers ending in 9: the sandbox delivers them (its rules key on 000…005).
    return [{"id": i, "to": f"2547123{i:04d}9", "text": f"order {i} shipped"} for i in range(count)]


def accepted_ids(esme: EventLog, count: int) -> set[str]:
    answers = esme.wait_for("submit_sm_resp", count, timeout=30)
    assert {int(a["status"]) for a in answers} == {0}
    return {str(a["message_id"]) for a in answers}


def receipts(esme: EventLog) -> dict[str, dict[str, Any]]:
    """The receipts an ESME got, by the id in their text."""
    found = {}
    for event in esme.events:
        if event.get("event") != "deliver_sm" or not int(event["esm_class"]) & 0x04:
            continue
        parsed = parse_receipt_text(str(event["text"]))
        assert parsed is not None, event
        found[parsed.message_id] = {"stat": parsed.stat, "tlvs": event["tlvs"]}
    return found


@pytest.mark.parametrize("impl", ESME_IMPLEMENTATIONS)
def test_an_esme_gets_a_receipt_for_each_message_under_the_id_it_was_given(
    impl: str, env: dict[str, str], gateway: Gateway, peers: Peers
) -> None:
    password = smpp_password(env)
    gateway.start()
    esme = peers.esme(
        impl,
        gateway.smpp_port,
        system_id=SYSTEM_ID,
        password=password,
        mode="transceiver",
        window=10,
        messages=messages(5),
    )
    assert esme.ready["status"] == 0
    ids = accepted_ids(esme, 5)
    wait_until(lambda: set(receipts(esme)) >= ids, timeout=30, what="a receipt per message")
    for message_id in ids:
        got = receipts(esme)[message_id]
        assert got["stat"] == "DELIVRD"
        assert bytes.fromhex(got["tlvs"][RECEIPTED_MESSAGE_ID]).rstrip(b"\0").decode() == message_id


def test_receipts_of_acknowledged_messages_survive_a_kill_and_reach_the_rebound_esme(
    env: dict[str, str], gateway: Gateway, peers: Peers
) -> None:
    password = smpp_password(env)
    gateway.start()
    # A transmitter: nothing can be pushed to it, so every receipt is still
    # owed when the process dies right after the last submit_sm_resp.
    sender = peers.esme(
        "smpplib",
        gateway.smpp_port,
        system_id=SYSTEM_ID,
        password=password,
        mode="transmitter",
        window=50,
        messages=messages(40),
    )
    ids = accepted_ids(sender, 40)
    gateway.kill()
    sender.close()
    gateway.start()
    receiver = peers.esme(
        "smpplib", gateway.smpp_port, system_id=SYSTEM_ID, password=password, mode="receiver"
    )
    assert receiver.ready["status"] == 0
    wait_until(lambda: set(receipts(receiver)) >= ids, timeout=60, what="every receipt")
    assert {receipts(receiver)[i]["stat"] for i in ids} == {"DELIVRD"}


@pytest.mark.parametrize("impl", ESME_IMPLEMENTATIONS)
def test_a_handsets_reply_reaches_the_esme_as_an_mo_deliver_sm(
    impl: str, env: dict[str, str], gateway: Gateway, peers: Peers
) -> None:
    password = smpp_password(env)
    repliable = smsgate("accounts", "update", "esme", "--option", "repliable=yes", env=env)
    assert repliable.returncode == 0, repliable.stderr
    gateway.start()
    # No source: the message goes from the gateway's reply number, and the
    # sandbox handset whose number ends in 005 answers what it gets.
    esme = peers.esme(
        impl,
        gateway.smpp_port,
        system_id=SYSTEM_ID,
        password=password,
        mode="transceiver",
        messages=[{"id": 1, "to": "254712345005", "text": "Reply YES to confirm", "from": ""}],
    )
    [message_id] = accepted_ids(esme, 1)

    def replies() -> list[dict[str, Any]]:
        return [
            event
            for event in esme.events
            if event.get("event") == "deliver_sm" and not int(event["esm_class"]) & 0x04
        ]

    wait_until(lambda: bool(replies()), timeout=30, what="the handset's reply")
    [reply] = replies()
    assert reply["source"] == "254712345005"
    assert "YES" in str(reply["text"]) and str(reply["text"]).startswith("Re:")
    wait_until(lambda: message_id in receipts(esme), timeout=30, what="the receipt too")
