"""Acceptance: a message sent through each dialect is delivered over SMPP (to the
SMSC simulator, over TCP) and each dialect reports it delivered."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import requests
from telesign.rest import RestClient

from smsgate.smpp.simulator import SimulatorConfig, SmscSimulator
from tests.api.test_eapi import SEND_SMS, call, report
from tests.conftest import fast_settings
from tests.support.receiver import CallbackReceiver
from tests.support.server import GatewayServer


class SimulatorThread:
    """The simulator on its own event loop, as a separate SMSC would be."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.simulator = SmscSimulator(config)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> SmscSimulator:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.simulator.start(), self.loop).result(10)
        return self.simulator

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.simulator.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@pytest.fixture
def smpp_gateway(tmp_path: Path) -> Iterator[tuple[GatewayServer, SmscSimulator]]:
    with SimulatorThread(SimulatorConfig(port=0, receipt_delay_ms=20)) as simulator:
        url = f"smpp://smsgate:secret@127.0.0.1:{simulator.port}?name=smsc1&window=10"
        server = GatewayServer(
            fast_settings(f"sqlite:///{tmp_path / 'smpp.sqlite3'}", smpp_url=url)
        ).start()
        try:
            yield server, simulator
        finally:
            server.stop()


def test_each_dialect_delivers_over_smpp(
    smpp_gateway: tuple[GatewayServer, SmscSimulator],
) -> None:
    server, simulator = smpp_gateway
    account = server.create_account()
    advanta = requests.get(
        f"{server.base_url}/api/services/sendsms",
        params={
            **account.creds,
            "message": "one",
            "shortcode": "SMSGATE",
            "mobile": "254712345601",
        },
        timeout=10,
    ).json()["responses"][0]
    eapi_batch = call(
        server, SEND_SMS, {**account.eapi_creds, "msisdn": "254712345602", "message": "two"}
    ).split("|")[2]
    telesign = RestClient(account.customer_id, account.telesign_key, rest_endpoint=server.base_url)
    reference = telesign.post(
        "/v1/verify/bulk_sms", recipients="254712345603", template="three"
    ).json["reference_id"]

    def advanta_delivered() -> bool:
        dlr = requests.post(
            f"{server.base_url}/api/services/getdlr",
            json={**account.creds, "messageID": advanta["messageid"]},
            timeout=10,
        ).json()
        return dlr.get("delivery-description") == "DeliveredToTerminal"

    server.wait_until(advanta_delivered, what="partnerID/apikey DeliveredToTerminal")
    server.wait_until(
        lambda: report(server, account, eapi_batch) == [["254712345602", "11"]],
        what="EAPI code 11",
    )
    server.wait_until(
        lambda: (
            telesign.get(f"/v1/verify/bulk_sms/{reference}").json["recipients"][0]["status"]["code"]
            == 200
        ),
        what="Telesign 200",
    )
    assert sorted(m.destination for m in simulator.submitted) == [
        "254712345601",
        "254712345602",
        "254712345603",
    ]


def test_a_message_to_an_accounts_shortcode_is_forwarded(
    tmp_path: Path, receiver: CallbackReceiver
) -> None:
    """partnerID/apikey users receive messages on their shortcode: an MO to a
    numeric sender id registered to one account is that account's, and is
    POSTed to its MO URL as JSON."""
    smsc = SimulatorThread(SimulatorConfig(port=0))
    with smsc as simulator:
        url = f"smpp://smsgate:secret@127.0.0.1:{simulator.port}?name=smsc1"
        server = GatewayServer(
            fast_settings(f"sqlite:///{tmp_path / 'mo.sqlite3'}", smpp_url=url)
        ).start()
        try:
            account = server.create_account(
                senders=("22345", "SHOP"), options={"mo_callback_url": receiver.url}
            )
            server.create_account(senders=("22999",), options={"mo_callback_url": receiver.url})
            server.wait_until(lambda: simulator.sessions == 1, what="the bind")
            sent = asyncio.run_coroutine_threadsafe(
                simulator.send_mo("254712345678", "22345", b"STOP ads"), smsc.loop
            )
            assert sent.result(10)
            (pushed,) = receiver.wait_for(1)
            assert pushed.method == "POST"
            body = orjson.loads(pushed.body)
            assert {k: body[k] for k in ("mobile", "shortcode", "message")} == {
                "mobile": "254712345678",
                "shortcode": "22345",
                "message": "STOP ads",
            }
            [stored] = server.call(server.rt.store.inbox(account.id, 0, 10))
            assert body["messageid"] == str(stored.id)
            assert len(body["timestamp"]) == 19  # yyyy-MM-dd HH:mm:ss, the account's time
        finally:
            server.stop()
