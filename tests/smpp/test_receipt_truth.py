"""Acceptance: every reported state is true, whatever way the SMSC writes its ids.

The whole gateway (HTTP API and workers) sends through the three dialects to
an SMSC over TCP that answers each submit_sm with an immediate receipt: the
simulator in each of its id styles (sequential decimal or hex numbers, zero
padded, upper case, UUIDs; receipts spelled differently from the response,
receipts before the response, an id counter that restarts mid-run), and the
npm ``smpp`` SMSC in sequential hex with a restart. The connection declares
the SMSC's id format. Every message must end in the state its number's rule
gives (0 misattributed, 0 stuck), and each dialect must report it so: getdlr,
get_report and the Telesign callback.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
import requests
from telesign.rest import RestClient

from smsgate.core.sandbox_rules import DEFAULT_SANDBOX_RULES, rule_for
from smsgate.core.states import FINAL_STATES, Reason, State
from smsgate.smpp.simulator import SimulatorConfig
from tests.api.test_eapi import SEND_BATCH, call, report
from tests.conftest import fast_settings
from tests.smpp.test_gateway_over_smpp import SimulatorThread
from tests.support.peers import Peers
from tests.support.receiver import CallbackReceiver
from tests.support.server import GatewayServer, TestAccount

# The suite sends 60 a dialect; SMSGATE_TRUTH_PER_DIALECT=6667 is the
# 20,000-message run the README reports.
PER_DIALECT = int(os.environ.get("SMSGATE_TRUTH_PER_DIALECT", "60"))
RESTART_AFTER = 50  # ids, where the counter restarts: fewer than the messages sent


def numbers(dialect: int, endings: tuple[str, ...]) -> list[str]:
    """Distinct numbers of one dialect, their endings (outcomes) taking turns."""
    return [f"2547{dialect}{i:04d}{endings[i % len(endings)][1:]}" for i in range(PER_DIALECT)]


# Each dialect's numbers end in outcomes it reports with distinct words, so a
# receipt matched to the wrong message shows as a wrong report.
ADVANTA = numbers(1, ("9999", "0000", "0001"))  # delivered, absent, unknown subscriber
EAPI = numbers(2, ("9999", "0000", "0003"))  # delivered, absent, expired
TELESIGN = numbers(3, ("9999", "0000", "0001", "0003"))
ADVANTA_WORDS = {
    State.DELIVERED: "DeliveredToTerminal",
    Reason.ABSENT_SUBSCRIBER: "AbsentSubscriber",
    Reason.UNKNOWN_SUBSCRIBER: "DeliveryImpossible",
}
EAPI_CODES = {State.DELIVERED: "11", Reason.ABSENT_SUBSCRIBER: "51", State.EXPIRED: "53"}
TELESIGN_CODES = {
    State.DELIVERED: 200,
    Reason.ABSENT_SUBSCRIBER: 210,
    Reason.UNKNOWN_SUBSCRIBER: 211,
    State.EXPIRED: 221,
}


def expected(number: str) -> tuple[State, Reason]:
    rule = rule_for(DEFAULT_SANDBOX_RULES, number)
    return rule.state, rule.reason


def word(table: dict[Any, Any], number: str) -> Any:
    state, reason = expected(number)
    return table.get(reason, table.get(state))


# (name, how to start the SMSC, the connection's id options)
Smsc = Callable[[Peers], AbstractContextManager[int]]


@contextmanager
def simulator(**config: Any) -> Iterator[int]:
    with SimulatorThread(SimulatorConfig(port=0, receipt_delay_ms=0, **config)) as sim:
        yield sim.port


def simulated(**config: Any) -> Smsc:
    return lambda _peers: simulator(**config)


@contextmanager
def node_smsc(peers: Peers, **options: Any) -> Iterator[int]:
    yield peers.smsc("node", receipt_delay_ms=0, **options).port


STYLES: dict[str, tuple[Smsc, dict[str, str]]] = {
    "sequential hex": (simulated(message_id_style="sequential_hex"), {"submit_id": "hex"}),
    "hex, receipts in decimal before the response": (
        simulated(
            message_id_style="sequential_hex", receipt_id_style="decimal", receipt_before_resp=True
        ),
        {"submit_id": "hex", "receipt_id": "decimal", "receipt_tlv_id": "decimal"},
    ),
    "decimal, counter restarted": (
        simulated(message_id_style="sequential_decimal", restart_ids_after=RESTART_AFTER),
        {"submit_id": "decimal"},
    ),
    "zero padded, no TLVs": (
        simulated(message_id_style="zero_padded", receipt_tlvs=False),
        {"submit_id": "decimal"},
    ),
    "upper-case hex, lower-case receipts, restarted": (
        simulated(
            message_id_style="upper_hex", receipt_id_style="lower", restart_ids_after=RESTART_AFTER
        ),
        {"submit_id": "hex"},
    ),
    "uuid": (simulated(message_id_style="uuid"), {"submit_id": "string"}),
    "npm smpp SMSC: hex, restarted": (
        lambda peers: node_smsc(peers, id_style="hex", restart_after=RESTART_AFTER),
        {"submit_id": "hex"},
    ),
}


@pytest.mark.parametrize("style", list(STYLES))
def test_every_state_is_true_whatever_the_id_style(
    style: str, tmp_path: Path, peers: Peers, receiver: CallbackReceiver
) -> None:
    start_smsc, id_options = STYLES[style]
    with start_smsc(peers) as port:
        query = urlencode({"name": "smsc1", "window": "20", **id_options})
        settings = fast_settings(
            f"sqlite:///{tmp_path / 'truth.sqlite3'}",
            smpp_url=f"smpp://smsgate:secret@127.0.0.1:{port}?{query}",
        )
        server = GatewayServer(settings).start()
        try:
            credit = str(3 * PER_DIALECT + 100)  # a credit a message, and some to spare
            account = server.create_account(credit=credit, callback_url=receiver.url)
            sent = send_through_each_dialect(server, account)
            all_final(server, account)
            check_each_message(server, account)
            check_reports(server, account, receiver, sent)
        finally:
            server.stop()


REQUEST_LIMIT = 1_000  # sendbulk messages and Telesign recipients per request


def send_through_each_dialect(server: GatewayServer, account: TestAccount) -> dict[str, Any]:
    advanta: dict[str, Any] = {}
    for start in range(0, len(ADVANTA), REQUEST_LIMIT):
        chunk = ADVANTA[start : start + REQUEST_LIMIT]
        bulk = requests.post(
            f"{server.base_url}/api/services/sendbulk/",
            json={
                "count": len(chunk),
                "smslist": [
                    {**account.creds, "mobile": n, "message": f"a{i}", "shortcode": "SMSGATE"}
                    for i, n in enumerate(chunk)
                ],
            },
            timeout=30,
        ).json()["responses"]
        advanta.update({str(r["mobile"]): r["messageid"] for r in bulk})
    csv = "msisdn,message\n" + "\n".join(f"{n},e{i}" for i, n in enumerate(EAPI))
    batch = call(server, SEND_BATCH, {**account.eapi_creds, "batch_data": csv}).split("|")
    assert batch[0] == "0", batch
    telesign = RestClient(account.customer_id, account.telesign_key, rest_endpoint=server.base_url)
    references = {
        telesign.post(
            "/v1/verify/bulk_sms",
            recipients=",".join(TELESIGN[start : start + REQUEST_LIMIT]),
            template="t",
        ).json["reference_id"]
        for start in range(0, len(TELESIGN), REQUEST_LIMIT)
    }
    return {"advanta": advanta, "eapi_batch": batch[2], "telesign_references": references}


def all_final(server: GatewayServer, account: TestAccount) -> None:
    def done() -> bool:
        states = server.call(server.rt.store.count_by_state(account.id))
        return sum(n for s, n in states.items() if s in FINAL_STATES) == 3 * PER_DIALECT

    server.wait_until(done, timeout=60 + PER_DIALECT / 50, what="every message final (none stuck)")


def check_each_message(server: GatewayServer, account: TestAccount) -> None:
    async def finals() -> dict[str, tuple[State, Reason]]:
        store = server.rt.store
        async with store.engines.reader.connect() as conn:
            rows = (
                await conn.exec_driver_sql(
                    "SELECT recipient, state, reason FROM messages WHERE account_id = ?",
                    (account.id,),
                )
            ).all()
        return {r.recipient.lstrip("+"): (State(r.state), Reason(r.reason)) for r in rows}

    got = server.call(finals())
    wrong = {n: s for n, s in got.items() if s != expected(n)}
    assert not wrong, f"{len(wrong)} misattributed, e.g. {list(wrong.items())[:5]}"
    assert set(got) == {*ADVANTA, *EAPI, *TELESIGN}


def check_reports(
    server: GatewayServer, account: TestAccount, receiver: CallbackReceiver, sent: dict[str, Any]
) -> None:
    for number, message_id in sent["advanta"].items():
        dlr = requests.post(
            f"{server.base_url}/api/services/getdlr/",
            json={**account.creds, "messageID": str(message_id)},
            timeout=10,
        ).json()
        assert dlr["delivery-description"] == word(ADVANTA_WORDS, number), (number, dlr)
    lines = report(server, account, sent["eapi_batch"])
    assert {n: code for n, code in lines} == {n: word(EAPI_CODES, n) for n in EAPI}
    # Every message asked for a report: 180 pushes, the EAPI ones as GETs.
    received = receiver.wait_for(3 * PER_DIALECT, timeout=30 + PER_DIALECT / 50)
    pushes = [orjson.loads(r.body) for r in received if r.method == "POST"]
    telesign = {
        p["phone_number"]: p["status"]["code"]
        for p in pushes
        if p.get("reference_id") in sent["telesign_references"]
    }
    assert telesign == {n: word(TELESIGN_CODES, n) for n in TELESIGN}
