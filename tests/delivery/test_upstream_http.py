"""Delivering through an upstream HTTP provider: a second smsgate, over real
sockets, speaking the partnerID/apikey dialect; its delivery reports pushed
back to the first one's receiver path."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from tests.conftest import fast_settings
from tests.support.server import GatewayServer, TestAccount

from smsgate.delivery.connectors.http import receiver_path
from smsgate.secret_box import SecretBox
from smsgate.store.records import MessageFilter
from smsgate.store.repo import Store


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[GatewayServer]:
    """The provider: another smsgate with its sandbox carrier."""
    server = GatewayServer(fast_settings(f"sqlite:///{tmp_path / 'upstream.sqlite3'}")).start()
    try:
        yield server
    finally:
        server.stop()


def downstream(database_url: str, http_url: str) -> GatewayServer:
    """Our gateway, routing every destination to the upstream connection ``up``."""
    settings = fast_settings(database_url)

    async def configure() -> None:
        store = await Store.open(database_url)
        try:
            sealed = SecretBox.for_settings(settings).encrypt(http_url)
            await store.add_connector("up", "http", sealed)
            await store.add_route(prefix="", routing_group=None, connector="up", priority=0)
        finally:
            await store.close()

    asyncio.run(configure())
    return GatewayServer(settings).start()


def provider_account(upstream: GatewayServer) -> TestAccount:
    return upstream.create_account(credit="100", senders=("SMSGATE",))


def point_pushes(upstream: GatewayServer, account: TestAccount, ours: GatewayServer) -> None:
    path = receiver_path(ours.rt.secrets, "up")
    upstream.call(
        upstream.rt.store.update_account(account.id, dlr_callback_url=ours.base_url + path)
    )


def send(server: GatewayServer, account: TestAccount, numbers: list[str], sender: str) -> list[str]:
    reply = requests.post(
        f"{server.base_url}/api/services/sendbulk",
        json={
            "count": len(numbers),
            "smslist": [
                {**account.creds, "mobile": n, "message": f"hi {n}", "shortcode": sender}
                for n in numbers
            ],
        },
        timeout=10,
    ).json()
    assert [r["response-code"] for r in reply["responses"]] == [200] * len(numbers), reply
    return [str(r["messageid"]) for r in reply["responses"]]


def description(server: GatewayServer, account: TestAccount, message_id: str) -> str:
    reply = requests.post(
        f"{server.base_url}/api/services/getdlr",
        json={**account.creds, "messageID": message_id},
        timeout=10,
    ).json()
    return str(reply.get("delivery-description", reply.get("response-description")))


def test_messages_go_through_the_upstream_and_its_reports_come_back(
    database_url: str, upstream: GatewayServer
) -> None:
    at_provider = provider_account(upstream)
    ours = downstream(
        database_url,
        f"advanta+{upstream.base_url}/api/services?batch=2".replace(
            "advanta+http://", f"advanta+http://{at_provider.partner_id}:{at_provider.apikey}@"
        ),
    )
    try:
        point_pushes(upstream, at_provider, ours)
        customer = ours.create_account(credit="10", senders=("SMSGATE", "SHOP"))
        # 000: absent at the provider's carrier; SHOP is not a sender the
        # provider knows (1001), so it is refused there, per message.
        delivered, absent, another = send(
            ours, customer, ["254712345601", "254712345000", "254712345602"], "SMSGATE"
        )
        [refused] = send(ours, customer, ["254712345603"], "SHOP")
        expected = {
            delivered: "DeliveredToTerminal",
            absent: "AbsentSubscriber",
            another: "DeliveredToTerminal",
            refused: "SenderName Blacklisted",
        }
        ours.wait_until(
            lambda: {m: description(ours, customer, m) for m in expected} == expected,
            timeout=20,
            what="each message's report as the provider gave it",
        )
        # The provider sent each taken message once; the refused one cost our
        # customer nothing.
        sent = requests.post(
            f"{upstream.base_url}/api/services/getbalance", json=at_provider.creds, timeout=10
        ).json()
        balance = requests.post(
            f"{ours.base_url}/api/services/getbalance", json=customer.creds, timeout=10
        ).json()
        # Three messages of one credit each: charged there and here; the
        # refused one refunded here.
        assert (sent["credit"], balance["credit"]) == ("97.00", "7.00")
        provider_messages = upstream.call(
            upstream.rt.store.find_messages(MessageFilter(account_id=at_provider.id))
        )
        assert sorted(m.recipient for m in provider_messages) == [
            "+254712345000",
            "+254712345601",
            "+254712345602",
        ]
    finally:
        ours.stop()


def test_an_unreachable_upstream_costs_no_attempt(tmp_path: Path) -> None:
    with socket_nobody_listens_on() as port:
        ours = downstream(
            f"sqlite:///{tmp_path / 'ours.sqlite3'}",
            f"advanta+http://p:k@127.0.0.1:{port}/api/services",
        )
        try:
            customer = ours.create_account(credit="10")
            [message] = send(ours, customer, ["254712345601"], "SMSGATE")
            [connector] = [c for c in ours.rt.router.connectors if c.name == "up"]
            ours.wait_until(lambda: connector.health().state == "failing", what="failing")
            health = connector.health()
            assert health.last_error and "ConnectError" in health.last_error
            stored = ours.call(ours.rt.store.message_row(int(message)))
            assert stored is not None and stored.state == "queued"
        finally:
            ours.stop()


class socket_nobody_listens_on:
    """A port that refuses connections for the test's length (bound, never listening)."""

    def __enter__(self) -> int:
        import socket

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        return int(self._sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self._sock.close()


class DroppingProxy:
    """Forwards to ``target``, but for the first request swallows the answer
    and closes the connection: an answer lost after the request went out."""

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self.connections = 0
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.port = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self.loop.run_forever()

    def __enter__(self) -> DroppingProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        drop = self.connections == 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()

        forward = asyncio.create_task(pump(reader, up_writer))
        if drop:
            await up_reader.read(65536)  # the answer comes, and is thrown away
            forward.cancel()
            writer.close()
            up_writer.close()
            return
        await pump(up_reader, writer)
        forward.cancel()
        writer.close()


def test_a_lost_answer_is_resent_under_the_same_key_and_sent_once(
    tmp_path: Path, upstream: GatewayServer
) -> None:
    at_provider = provider_account(upstream)
    provider_port = int(upstream.base_url.rsplit(":", 1)[1])
    with DroppingProxy(provider_port) as proxy:
        ours = downstream(
            f"sqlite:///{tmp_path / 'ours.sqlite3'}",
            f"advanta+http://{at_provider.partner_id}:{at_provider.apikey}"
            f"@127.0.0.1:{proxy.port}/api/services",
        )
        try:
            customer = ours.create_account(credit="10")
            [message] = send(ours, customer, ["254712345601"], "SMSGATE")
            ours.wait_until(
                lambda: (
                    (m := ours.call(ours.rt.store.message_row(int(message)))) is not None
                    and m.state == "submitted"
                ),
                what="the message taken by the provider",
            )
            assert proxy.connections >= 2  # the answer was lost once and asked again
            provider_messages = upstream.call(
                upstream.rt.store.find_messages(MessageFilter(account_id=at_provider.id))
            )
            assert [m.recipient for m in provider_messages] == ["+254712345601"]
        finally:
            ours.stop()
