"""Delivering through an upstream HTTP provider: a second smsgate, over real
sockets, speaking the partnerID/apikey dialect; its delivery reports pushed
back to the first one's receiver path."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from telesign.rest import RestClient
from tests.api.test_eapi import SEND_SMS, call, report
from tests.conftest import fast_settings
from tests.support.server import GatewayServer, TestAccount

from smsgate.delivery.connectors.receiver_paths import receiver_path
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


def downstream(
    database_url: str,
    http_url: str,
    *,
    connector: str = "up",
    more: Sequence[tuple[str, str, int]] = (),
    **settings_overrides: object,
) -> GatewayServer:
    """Our gateway, routing every destination to the upstream ``connector``
    first, then to each of ``more`` (name, URL, priority)."""
    settings = fast_settings(database_url, **settings_overrides)
    box = SecretBox.for_settings(settings)

    async def configure() -> None:
        store = await Store.open(database_url)
        try:
            for name, url, priority in ((connector, http_url, 10), *more):
                await store.add_connector(name, "http", box.encrypt(url))
                await store.add_route(
                    prefix="", routing_group=None, connector=name, priority=priority
                )
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


def send(
    server: GatewayServer,
    account: TestAccount,
    numbers: list[str],
    sender: str,
    text: str | None = None,
) -> list[str]:
    reply = requests.post(
        f"{server.base_url}/api/services/sendbulk",
        json={
            "count": len(numbers),
            "smslist": [
                {**account.creds, "mobile": n, "message": text or f"hi {n}", "shortcode": sender}
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


def provider_url(dialect: str, upstream: GatewayServer, account: TestAccount) -> str:
    """The connection URL of our account at the provider, in ``dialect``."""
    host = upstream.base_url.removeprefix("http://")
    if dialect == "eapi":
        user, key = account.eapi_creds["username"], account.eapi_creds["password"]
        return f"eapi+http://{user}:{key}@{host}/eapi?batch=2"
    if dialect == "telesign":  # the key is base64: its / + = are written escaped
        key = quote(account.telesign_key, safe="")
        return f"telesign+http://{account.customer_id}:{key}@{host}?batch=2"
    return f"advanta+http://{account.partner_id}:{account.apikey}@{host}/api/services?batch=2"


REPORTS = {
    # How each dialect's reports name: delivered, an absent handset, a sender
    # the provider does not know (refused there), as our getdlr shows them.
    "advanta": ("DeliveredToTerminal", "AbsentSubscriber", "SenderName Blacklisted"),
    # EAPI reports 51 for any handset failure, and refuses an unknown sender
    # with 24 for the whole batch.
    "eapi": ("DeliveredToTerminal", "DeliveryImpossible", "DeliveryImpossible"),
    # Telesign: 210 temporary phone error for an absent handset.
    "telesign": ("DeliveredToTerminal", "AbsentSubscriber", "DeliveryImpossible"),
}


@pytest.mark.parametrize("dialect", sorted(REPORTS))
def test_messages_go_through_the_upstream_and_its_reports_come_back(
    database_url: str, upstream: GatewayServer, dialect: str
) -> None:
    at_provider = provider_account(upstream)
    ours = downstream(database_url, provider_url(dialect, upstream, at_provider))
    try:
        point_pushes(upstream, at_provider, ours)
        if dialect != "telesign":  # which has no balance query
            ours.wait_until(
                lambda: (
                    getattr(ours.call(ours.rt.store.connection_health()).get("up"), "balance", None)
                    == 100_00
                ),
                what="the provider's balance reported",
            )
            scraped = requests.get(f"{ours.base_url}/metrics", timeout=10).text
            assert 'smsgate_upstream_balance_credits{connector="up"} 100.0' in scraped
        customer = ours.create_account(credit="10", senders=("SMSGATE", "SHOP"))
        # 000: absent at the provider's carrier; SHOP is not a sender the
        # provider knows, so it is refused there.
        delivered, absent, another = send(
            ours, customer, ["254712345601", "254712345000", "254712345602"], "SMSGATE"
        )
        [refused] = send(ours, customer, ["254712345603"], "SHOP")
        [unicode] = send(ours, customer, ["254712345604"], "SMSGATE", text="Привет")
        done, away, unknown_sender = REPORTS[dialect]
        expected = {
            delivered: done,
            absent: away,
            another: done,
            refused: unknown_sender,
            unicode: done,
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
        # Four messages of one credit each: charged there and here; the
        # refused one refunded here.
        assert (sent["credit"], balance["credit"]) == ("96.00", "6.00")
        provider_messages = upstream.call(
            upstream.rt.store.find_messages(MessageFilter(account_id=at_provider.id))
        )
        assert sorted((m.recipient, m.body) for m in provider_messages) == [
            ("+254712345000", "hi 254712345000"),
            ("+254712345601", "hi 254712345601"),
            ("+254712345602", "hi 254712345602"),
            ("+254712345604", "Привет"),
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

            def reported() -> str:  # what `connectors list` and /metrics show
                report = ours.call(ours.rt.store.connection_health()).get("up")
                return "" if report is None else report.state

            ours.wait_until(lambda: reported() == "failing", what="the failure reported")
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


class Proxy:
    """Forwards to ``target`` over real sockets, unless told to misbehave:
    answers come ``answer_delay`` seconds late; ``lose_answers`` answers are
    swallowed (the connection closed once the answer came: an answer lost
    after the request went out); the first ``server_errors`` requests are
    answered 503 by the proxy itself, never reaching the provider; and while
    ``down`` every connection is closed at once (a provider that is down)."""

    def __init__(
        self,
        target_port: int,
        *,
        lose_answers: int = 0,
        answer_delay: float = 0.0,
        server_errors: int = 0,
    ) -> None:
        self._target = target_port
        self.lose_answers = lose_answers
        self.server_errors = server_errors
        self.answer_delay = answer_delay
        self.down = False
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

    def __enter__(self) -> Proxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def shut() -> None:
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.down:
            writer.close()
            return
        if self.server_errors > 0:
            self.server_errors -= 1
            await reader.read(65536)
            writer.write(
                b"HTTP/1.1 503 Service Unavailable\r\n"
                b"content-length: 0\r\nconnection: close\r\n\r\n"
            )
            await writer.drain()
            writer.close()
            return
        drop = self.lose_answers > 0
        self.lose_answers -= drop
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()

        forward = asyncio.create_task(pump(reader, up_writer))
        if drop:
            await up_reader.read(65536)  # the answer comes, and is thrown away
        else:
            if self.answer_delay:
                first = await up_reader.read(65536)
                await asyncio.sleep(self.answer_delay)
                writer.write(first)
            await pump(up_reader, writer)
        forward.cancel()
        writer.close()
        up_writer.close()


def downstream_via(
    proxy: Proxy, at_provider: TestAccount, tmp_path: Path, query: str = "", **overrides: object
) -> GatewayServer:
    """Our gateway on a SQLite file, its upstream ``at_provider`` reached through ``proxy``."""
    return downstream(
        f"sqlite:///{tmp_path / 'ours.sqlite3'}",
        f"advanta+http://{at_provider.partner_id}:{at_provider.apikey}"
        f"@127.0.0.1:{proxy.port}/api/services{query}",
        **overrides,
    )


def test_a_lost_answer_is_resent_under_the_same_key_and_sent_once(
    tmp_path: Path, upstream: GatewayServer
) -> None:
    at_provider = provider_account(upstream)
    provider_port = int(upstream.base_url.rsplit(":", 1)[1])
    with Proxy(provider_port, lose_answers=1) as proxy:
        ours = downstream_via(proxy, at_provider, tmp_path)
        try:
            customer = ours.create_account(credit="10")
            [message] = send(ours, customer, ["254712345601"], "SMSGATE")
            wait_submitted(ours, message, "the message taken by the provider")
            assert proxy.connections >= 2  # the answer was lost once and asked again
            assert arrived(upstream, at_provider) == ["+254712345601"]
        finally:
            ours.stop()


def test_an_upstream_answering_503_is_tried_again_without_using_up_attempts(
    tmp_path: Path, upstream: GatewayServer
) -> None:
    at_provider = provider_account(upstream)
    provider_port = int(upstream.base_url.rsplit(":", 1)[1])
    # More 503s than the message has attempts (SMSGATE_MAX_ATTEMPTS): were
    # each to count, the message would end failed instead of reaching it.
    with Proxy(provider_port, server_errors=5) as proxy:
        ours = downstream_via(proxy, at_provider, tmp_path, "?backoff=0.2", max_attempts=3)
        try:
            customer = ours.create_account(credit="10")
            [message] = send(ours, customer, ["254712345601"], "SMSGATE")
            wait_submitted(
                ours, message, "the message taken by the provider once it answers", timeout=30
            )
            assert proxy.server_errors == 0 and proxy.connections >= 6
            assert arrived(upstream, at_provider) == ["+254712345601"]
            stored = ours.call(ours.rt.store.message_row(int(message)))
            assert stored is not None and stored.attempts == 1
        finally:
            ours.stop()


def wait_submitted(ours: GatewayServer, message: str, what: str, timeout: float = 10.0) -> None:
    """Wait until ``message`` at ``ours`` has been taken by its upstream."""
    ours.wait_until(
        lambda: (
            (m := ours.call(ours.rt.store.message_row(int(message)))) is not None
            and m.state == "submitted"
        ),
        timeout,
        what,
    )


def arrived(provider: GatewayServer, account: TestAccount) -> list[str]:
    """The numbers ``account`` at ``provider`` was asked to send to."""
    rows = provider.call(provider.rt.store.find_messages(MessageFilter(account_id=account.id)))
    return sorted(m.recipient for m in rows)


def send_until_one_reaches(
    ours: GatewayServer, customer: TestAccount, provider: GatewayServer, account: TestAccount
) -> str:
    """Send one message at a time, each once the one before has left, until
    one reaches ``provider``; its number."""
    for n in range(40):
        number = f"+2547123457{n:02d}"
        [mid] = send(ours, customer, [number.lstrip("+")], "SMSGATE")
        ours.wait_until(
            lambda mid=mid: (
                (m := ours.call(ours.rt.store.message_row(int(mid)))) is not None
                and m.state != "queued"
            ),
            what="the message taken by one of the upstreams",
        )
        if number in arrived(provider, account):
            return number
    raise AssertionError("no message reached the provider")


def test_traffic_fails_over_to_the_second_upstream_and_comes_back(tmp_path: Path) -> None:
    first = GatewayServer(fast_settings(f"sqlite:///{tmp_path / 'first.sqlite3'}")).start()
    second = GatewayServer(fast_settings(f"sqlite:///{tmp_path / 'second.sqlite3'}")).start()
    at_first, at_second = provider_account(first), provider_account(second)
    with Proxy(int(first.base_url.rsplit(":", 1)[1])) as proxy:
        proxy.down = True
        first_url = provider_url("advanta", first, at_first).replace(
            first.base_url.removeprefix("http://"), f"127.0.0.1:{proxy.port}"
        )
        ours = downstream(
            f"sqlite:///{tmp_path / 'ours.sqlite3'}",
            first_url + "&backoff=0.3",
            connector="up1",
            more=[("up2", provider_url("advanta", second, at_second), 20)],
        )
        try:
            customer = ours.create_account(credit="100")

            send(ours, customer, ["254712345601"], "SMSGATE")
            ours.wait_until(
                lambda: arrived(second, at_second) == ["+254712345601"],
                what="the message carried by the second upstream while the first is down",
            )
            assert arrived(first, at_first) == [] and proxy.connections >= 1
            proxy.down = False
            # After the back-off, one of them is the probe, and traffic is back.
            back = send_until_one_reaches(ours, customer, first, at_first)
            assert arrived(first, at_first) == [back]
        finally:
            ours.stop()
            first.stop()
            second.stop()


@pytest.mark.parametrize("dialect", ["advanta", "eapi"])
def test_reports_come_by_polling_when_the_upstream_does_not_push(
    database_url: str, upstream: GatewayServer, dialect: str
) -> None:
    at_provider = provider_account(upstream)  # no callback URL there: nothing is pushed
    ours = downstream(database_url, provider_url(dialect, upstream, at_provider) + "&poll=0.2")
    try:
        customer = ours.create_account(credit="10")
        delivered, absent = send(ours, customer, ["254712345601", "254712345000"], "SMSGATE")
        expected = {delivered: "DeliveredToTerminal", absent: REPORTS[dialect][1]}
        ours.wait_until(
            lambda: {m: description(ours, customer, m) for m in expected} == expected,
            timeout=20,
            what="each message's report, asked for",
        )
    finally:
        ours.stop()


def test_a_report_pushed_before_the_send_is_answered_is_kept_and_matched(
    tmp_path: Path, upstream: GatewayServer
) -> None:
    at_provider = provider_account(upstream)
    provider_port = int(upstream.base_url.rsplit(":", 1)[1])
    # The provider's report (50 ms after it took the message) reaches us
    # long before its answer to the send request does.
    with Proxy(provider_port, answer_delay=1.5) as proxy:
        url = provider_url("advanta", upstream, at_provider).replace(
            upstream.base_url.removeprefix("http://"), f"127.0.0.1:{proxy.port}"
        )
        ours = downstream(f"sqlite:///{tmp_path / 'ours.sqlite3'}", url)
        try:
            point_pushes(upstream, at_provider, ours)
            customer = ours.create_account(credit="10")
            [message] = send(ours, customer, ["254712345601"], "SMSGATE")
            ours.wait_until(
                lambda: len(ours.call(ours.rt.store.unmatched_receipts())) == 1,
                what="the early report stored, matching nothing yet",
            )
            ours.wait_until(
                lambda: description(ours, customer, message) == "DeliveredToTerminal",
                what="the report matched once the send's answer was recorded",
            )
            assert ours.call(ours.rt.store.unmatched_receipts()) == []
        finally:
            ours.stop()


def test_traffic_moves_off_an_upstream_out_of_credit_and_comes_back(tmp_path: Path) -> None:
    first = GatewayServer(fast_settings(f"sqlite:///{tmp_path / 'first.sqlite3'}")).start()
    second = GatewayServer(fast_settings(f"sqlite:///{tmp_path / 'second.sqlite3'}")).start()
    broke = first.create_account(credit="0", senders=("SMSGATE",))
    at_second = provider_account(second)
    ours = downstream(
        f"sqlite:///{tmp_path / 'ours.sqlite3'}",
        provider_url("advanta", first, broke),
        connector="up1",
        more=[("up2", provider_url("advanta", second, at_second), 20)],
        upstream_hold_seconds=1.0,
    )
    try:
        customer = ours.create_account(credit="100")

        [moved] = send(ours, customer, ["254712345601"], "SMSGATE")
        ours.wait_until(
            lambda: arrived(second, at_second) == ["+254712345601"],
            what="the message the first upstream had no credit for, sent by the second",
        )
        # The provider has it before our side records its answer: wait for that.
        ours.wait_until(
            lambda: ours.call(ours.rt.store.message_row(int(moved))).connector is not None,  # type: ignore[union-attr]
            what="the second upstream's answer recorded",
        )
        row = ours.call(ours.rt.store.message_row(int(moved)))
        assert row is not None and row.connector == "up2" and row.attempts == 1
        first.call(first.rt.store.add_credit(broke.id, 10_00, "top-up"))
        # Once the hold is over, traffic is back on the first.
        back = send_until_one_reaches(ours, customer, first, broke)
        assert arrived(first, broke) == [back]
    finally:
        ours.stop()
        first.stop()
        second.stop()


def test_each_of_our_dialects_reports_what_the_upstream_said(
    tmp_path: Path, upstream: GatewayServer
) -> None:
    at_provider = provider_account(upstream)
    ours = downstream(
        f"sqlite:///{tmp_path / 'ours.sqlite3'}", provider_url("advanta", upstream, at_provider)
    )
    try:
        point_pushes(upstream, at_provider, ours)
        customer = ours.create_account(credit="10")
        batch = call(
            ours,
            SEND_SMS,
            {**customer.eapi_creds, "msisdn": "254712345601,254712345000", "message": "hi"},
        ).split("|")[2]
        telesign = RestClient(
            customer.customer_id, customer.telesign_key, rest_endpoint=ours.base_url
        )
        reference = telesign.post(
            "/v1/verify/bulk_sms", recipients="254712345602,254712345000", template="hi"
        ).json["reference_id"]

        def telesign_codes() -> list[int]:
            status = telesign.get(f"/v1/verify/bulk_sms/{reference}").json
            return sorted(r["status"]["code"] for r in status["recipients"])

        # EAPI: 11 delivered, 51 the absent handset; Telesign: 200 and 210.
        ours.wait_until(
            lambda: (
                sorted(report(ours, customer, batch))
                == [["254712345000", "51"], ["254712345601", "11"]]
            ),
            what="EAPI's report codes",
        )
        ours.wait_until(lambda: telesign_codes() == [200, 210], what="Telesign's status codes")
    finally:
        ours.stop()
