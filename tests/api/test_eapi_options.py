"""EAPI optional parameters, test modes, quotas and the inbox, over a real socket."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import asyncpg
import httpx
import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.routing import Route
from tests.api.test_eapi import (
    GET_CREDITS,
    SEND_BATCH,
    SEND_SMS,
    call,
    report,
)
from tests.conftest import PG_ADMIN_DSN, fast_settings
from tests.support.receiver import CallbackReceiver
from tests.support.server import GatewayServer, TestAccount

from smsgate.api.dialects.eapi import EapiApi
from smsgate.api.params import RequestParams
from smsgate.store import schema as t

GET_INBOX = "/eapi/reception/get_inbox/1/1.1"
REPLY_ADDRESS = "254709000999"


def query(server: GatewayServer, statement: Any) -> list[Any]:
    async def run() -> list[Any]:
        async with server.rt.store.engines.reader.connect() as conn:
            return list((await conn.execute(statement)).all())

    return server.call(run())


def stored(server: GatewayServer, batch_id: str) -> list[Any]:
    m = t.messages.c
    return query(
        server,
        select(m.recipient, m.flags, m.routing_group, m.want_report, m.encoding, m.body, m.sender)
        .where(m.batch_id == int(batch_id))
        .order_by(m.id),
    )


def batch_id_of(reply: str) -> str:
    code, _, batch_id = reply.split("|")
    assert code in ("0", "1"), reply
    return batch_id


@pytest.fixture
def account(sqlite_gateway: GatewayServer) -> TestAccount:
    return sqlite_gateway.create_account(credit="100", senders=())


def test_batch_defaults_and_row_overrides_are_stored(
    sqlite_gateway: GatewayServer, account: TestAccount
) -> None:
    batch = "\n".join(
        [
            "msisdn,message,msg_class,want_report,routing_group,cost_route,sender",
            "254712000001,defaults,,,,,",
            "254712000002,overridden,2,1,3,,OTHER",
            "254712000003,alias,,,,1,",
            "254712000004,bad values are ignored,7,maybe,9,,",
        ]
    )
    reply = call(
        sqlite_gateway,
        SEND_BATCH,
        {
            **account.eapi_creds,
            "batch_data": batch,
            "sender": "SHOP",
            "msg_class": "0",
            "want_report": "0",
            "routing_group": "2",
            "scheduling_description": "spring campaign",
        },
    )
    rows = stored(sqlite_gateway, batch_id_of(reply))
    assert [(r.flags, r.routing_group, r.want_report, r.sender) for r in rows] == [
        (1, 2, False, "SHOP"),
        (0, 3, True, "OTHER"),
        (1, 1, False, "SHOP"),
        (1, 2, False, "SHOP"),
    ]
    b = t.batches.c
    assert query(sqlite_gateway, select(b.description).where(b.id == int(batch_id_of(reply)))) == [
        ("spring campaign",)
    ]


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"msg_class": "1"}, "msg_class"),
        ({"routing_group": "4"}, "routing_group"),
        ({"cost_route": "x"}, "cost_route"),
        ({"repliable": "yes"}, "repliable"),
        ({"repliable": "1", "sender": "SHOP"}, "incompatible"),
        ({"allow_concat_text_sms": "2"}, "allow_concat_text_sms"),
        ({"concat_text_sms_max_parts": "0"}, "concat_text_sms_max_parts"),
        ({"test_always_succeed": "2"}, "test_always_succeed"),
    ],
)
def test_bad_request_parameters_are_24(
    sqlite_gateway: GatewayServer, account: TestAccount, fields: dict[str, str], problem: str
) -> None:
    base = {**account.eapi_creds, "msisdn": "254712345678", "message": "hi"}
    code, description, batch = call(sqlite_gateway, SEND_SMS, {**base, **fields}).split("|")
    assert (code, batch) == ("24", "") and problem in description


def test_concatenation_limits(sqlite_gateway: GatewayServer, account: TestAccount) -> None:
    base = {**account.eapi_creds, "msisdn": "254712345678"}
    two_parts, three_parts = "a" * 200, "b" * 400
    assert call(sqlite_gateway, SEND_SMS, {**base, "message": two_parts}).startswith("0|")
    refused = call(
        sqlite_gateway, SEND_SMS, {**base, "message": two_parts, "allow_concat_text_sms": "0"}
    )
    assert refused.startswith("24|") and "2 parts" in refused
    capped = {"concat_text_sms_max_parts": "2", "allow_concat_text_sms": "1"}
    assert call(sqlite_gateway, SEND_SMS, {**base, "message": two_parts, **capped}).startswith("0|")
    assert call(sqlite_gateway, SEND_SMS, {**base, "message": three_parts, **capped}).startswith(
        "24|"
    )
    batch = f"msisdn,message,allow_concat_text_sms\n254712000001,{two_parts},0\n254712000002,ok,0"
    reply = call(sqlite_gateway, SEND_BATCH, {**account.eapi_creds, "batch_data": batch})
    assert [r.recipient for r in stored(sqlite_gateway, batch_id_of(reply))] == ["+254712000002"]


def test_8bit_messages_are_stored_as_binary(
    sqlite_gateway: GatewayServer, account: TestAccount
) -> None:
    payload = "0605040b8423f0" + "ab" * 100
    reply = call(
        sqlite_gateway,
        SEND_SMS,
        {**account.eapi_creds, "msisdn": "254712345678", "message": payload, "dca": "8bit"},
    )
    (row,) = stored(sqlite_gateway, batch_id_of(reply))
    assert (row.encoding, row.body) == ("binary", payload)
    for bad in ("abc", "zz", "00" * 141):
        refused = call(
            sqlite_gateway,
            SEND_SMS,
            {**account.eapi_creds, "msisdn": "254712345678", "message": bad, "dca": "8bit"},
        )
        assert refused.startswith("24|"), bad


def test_test_always_succeed_validates_and_sends_nothing(
    sqlite_gateway: GatewayServer, account: TestAccount
) -> None:
    fields = {**account.eapi_creds, "msisdn": "254712345678,254712345679", "message": "hi"}
    reply = call(sqlite_gateway, SEND_SMS, {**fields, "test_always_succeed": "1"})
    batch_id = batch_id_of(reply)
    assert reply.startswith("0|IN_PROGRESS|")
    assert report(sqlite_gateway, account, batch_id) == []
    assert stored(sqlite_gateway, batch_id) == []
    assert call(sqlite_gateway, GET_CREDITS, account.eapi_creds) == "0|100.00"
    invalid = {**fields, "msisdn": "nonsense", "test_always_succeed": "1"}
    assert call(sqlite_gateway, SEND_SMS, invalid).startswith("24|")
    poor = sqlite_gateway.create_account(credit="1")
    too_dear = {**poor.eapi_creds, "msisdn": "254712345678,254712345679", "message": "hi"}
    assert call(sqlite_gateway, SEND_SMS, {**too_dear, "test_always_succeed": "1"}).startswith(
        "25|"
    )
    failing = call(sqlite_gateway, SEND_SMS, {**fields, "test_always_fail": "1"})
    assert failing.startswith("22|") and failing.count("|") == 2
    assert call(sqlite_gateway, GET_CREDITS, account.eapi_creds) == "0|100.00"
    m = t.messages.c
    assert query(sqlite_gateway, select(func.count()).where(m.account_id > 0)) == [(0,)]


def test_want_report_0_pushes_nothing(gateway: GatewayServer, receiver: CallbackReceiver) -> None:
    account = gateway.create_account(credit="10", callback_url=receiver.url)
    batch = "msisdn,message,want_report\n254712000011,pushed,\n254712000012,silent,0"
    batch_id = batch_id_of(call(gateway, SEND_BATCH, {**account.eapi_creds, "batch_data": batch}))
    gateway.wait_until(
        lambda: [line[1] for line in report(gateway, account, batch_id)] == ["11", "11"],
        what="both delivered",
    )
    (pushed,) = receiver.wait_for(1)
    assert "msisdn=254712000011" in pushed.path
    o = t.callback_outbox.c
    # Final state and outbox row are written in one transaction: nothing more can come.
    assert query(gateway, select(func.count()).select_from(t.callback_outbox)) == [(1,)]
    gateway.wait_until(lambda: query(gateway, select(o.state)) == [("sent",)], what="sent")


def test_replies_to_repliable_messages_reach_the_inbox(
    gateway: GatewayServer, receiver: CallbackReceiver
) -> None:
    account = gateway.create_account(credit="10", options={"mo_callback_url": receiver.url})
    other = gateway.create_account(credit="10")
    # Not repliable: the handset answers the alphanumeric sender, which is not ours.
    call(gateway, SEND_SMS, {**other.eapi_creds, "msisdn": "254712345005", "message": "promo"})
    batch_id = batch_id_of(
        call(
            gateway,
            SEND_SMS,
            {
                **account.eapi_creds,
                "msisdn": "254712345005,254712345678",
                "message": "Reply YES",
                "repliable": "1",
                "source_id": "poll-7",
            },
        )
    )
    assert {r.sender for r in stored(gateway, batch_id)} == {REPLY_ADDRESS}

    def inbox(after: str = "0") -> list[list[str]]:
        reply = call(gateway, GET_INBOX, {**account.eapi_creds, "last_retrieved_id": after})
        head, *lines = reply.splitlines()
        assert head == f"0|records to follow|{len(lines)}"
        return [line.split("|") for line in lines]

    gateway.wait_until(lambda: len(inbox()) == 1, what="the reply in the inbox")
    ((msg_id, sender, body, received, msisdn, referring, encoding),) = inbox()
    assert (sender, body, msisdn, referring, encoding) == (
        "254712345005",
        "Re: Reply YES",
        REPLY_ADDRESS,
        batch_id,
        "7bit",
    )
    assert len(received) == 19 and msg_id.isdigit()
    assert inbox(after=msg_id) == []
    # The reply is also pushed to the account's MO URL, with the question's source_id.
    (pushed,) = receiver.wait_for(1)
    assert pushed.method == "GET"
    assert dict(parse_qsl(urlsplit(pushed.path).query)) == {
        "msg_id": msg_id,
        "sender": "254712345005",
        "message": "Re: Reply YES",
        "received_time": received,
        "msisdn": REPLY_ADDRESS,
        "referring_batch_id": batch_id,
        "encoding": "7bit",
        "source_id": "poll-7",
    }
    assert call(gateway, GET_INBOX, other.eapi_creds) == "0|records to follow|0\n"
    i = t.inbound_messages.c
    gateway.wait_until(
        lambda: len(query(gateway, select(i.id).where(i.account_id.is_(None)))) == 1,
        what="the unattributed reply to the alphanumeric sender",
    )
    bad = call(gateway, GET_INBOX, {**account.eapi_creds, "last_retrieved_id": "x"})
    assert bad.startswith("24|")


def test_account_default_repliable_yields_to_an_explicit_sender(
    sqlite_gateway: GatewayServer,
) -> None:
    account = sqlite_gateway.create_account(options={"repliable": True}, senders=())
    base = {**account.eapi_creds, "msisdn": "254712345678", "message": "hi"}
    (default,) = stored(sqlite_gateway, batch_id_of(call(sqlite_gateway, SEND_SMS, base)))
    assert (default.sender, default.flags) == (REPLY_ADDRESS, 2)
    chosen = call(sqlite_gateway, SEND_SMS, {**base, "sender": "SHOP"})
    (explicit,) = stored(sqlite_gateway, batch_id_of(chosen))
    assert (explicit.sender, explicit.flags) == ("SHOP", 0)


def test_27_daily_quota(sqlite_gateway: GatewayServer) -> None:
    account = sqlite_gateway.create_account(options={"daily_quota": 3})
    base = {**account.eapi_creds, "message": "hi"}
    assert call(sqlite_gateway, SEND_SMS, {**base, "msisdn": "254712000001,254712000002"})[0] == "0"
    over = call(sqlite_gateway, SEND_SMS, {**base, "msisdn": "254712000003,254712000004"})
    assert over.startswith("27|") and over.count("|") == 2
    assert call(sqlite_gateway, SEND_SMS, {**base, "msisdn": "254712000003"})[0] == "0"
    assert call(sqlite_gateway, GET_CREDITS, account.eapi_creds) == "0|97.00"


@pytest.fixture
def upstream_gateway(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GatewayServer]:
    settings = fast_settings(
        f"sqlite:///{tmp_path / 'upstream.sqlite3'}", sandbox_upstream=request.param
    )
    server = GatewayServer(settings).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("upstream_gateway", "code"),
    [("no_credit", "26"), ("quota_exceeded", "28")],
    indirect=["upstream_gateway"],
)
def test_upstream_conditions_answer_26_and_28(upstream_gateway: GatewayServer, code: str) -> None:
    account = upstream_gateway.create_account(credit="10")
    fields = {**account.eapi_creds, "msisdn": "254712345678", "message": "hi"}
    batch_id = batch_id_of(call(upstream_gateway, SEND_SMS, fields))
    upstream_gateway.wait_until(
        lambda: report(upstream_gateway, account, batch_id) == [["254712345678", code]],
        what=f"the message failing with {code}",
    )
    assert call(upstream_gateway, GET_CREDITS, account.eapi_creds) == "0|10.00"  # refunded
    upstream_gateway.wait_until(
        lambda: call(upstream_gateway, SEND_SMS, fields).startswith(f"{code}|"),
        what="new submissions refused while the condition holds",
    )


def test_40_when_overloaded(tmp_path: Path) -> None:
    settings = fast_settings(f"sqlite:///{tmp_path / 'busy.sqlite3'}", max_pending_submissions=0)
    server = GatewayServer(settings).start()
    try:
        account = server.create_account()
        reply = call(
            server, SEND_SMS, {**account.eapi_creds, "msisdn": "254712345678", "message": "x"}
        )
        assert reply == "40|temporarily unavailable|"
        assert call(server, GET_CREDITS, account.eapi_creds) == "0|100.00"
    finally:
        server.stop()


@pytest.mark.postgres
def test_40_when_the_database_connection_is_lost(postgres_url: str) -> None:
    """A request whose database connection dies under it answers 40 (retry), not 22."""
    schema = postgres_url.rpartition("search_path=")[2]
    server = GatewayServer(fast_settings(postgres_url), workers=False).start()

    locked = threading.Event()

    async def kill_the_waiting_request() -> None:
        admin = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            async with admin.transaction():
                await admin.execute(f'LOCK TABLE "{schema}".credentials IN ACCESS EXCLUSIVE MODE')
                locked.set()
                waiting: list[asyncpg.Record] = []
                while not waiting:  # the request now blocks on our lock
                    waiting = await admin.fetch(
                        "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND datname = current_database() AND pid <> pg_backend_pid()"
                    )
                    await asyncio.sleep(0.01)
                for row in waiting:
                    await admin.execute("SELECT pg_terminate_backend($1)", row["pid"])
        finally:
            await admin.close()

    try:
        account = server.create_account()
        fields = {**account.eapi_creds, "msisdn": "254712345678", "message": "x"}
        with ThreadPoolExecutor(1) as pool:
            killer = pool.submit(asyncio.run, kill_the_waiting_request())
            assert locked.wait(10), killer.result()
            reply = call(server, SEND_SMS, fields)
            killer.result()
        assert reply == "40|temporarily unavailable|"
        assert call(server, SEND_SMS, fields).startswith("0|IN_PROGRESS|")
    finally:
        server.stop()


def test_22_on_an_unexpected_failure(sqlite_gateway: GatewayServer) -> None:
    """Whatever goes wrong inside a handler, the client gets a code-22 line."""

    async def broken(params: RequestParams) -> str:
        raise RuntimeError("a bug")

    app = Starlette(routes=[Route("/x", EapiApi(sqlite_gateway.rt.gateway)._endpoint(broken))])

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            return await client.get("/x")

    response = asyncio.run(get())
    assert (response.status_code, response.text) == (200, "22|internal fatal error|")


def test_scheduled_rows_leave_at_their_time(sqlite_gateway: GatewayServer) -> None:
    account = sqlite_gateway.create_account()
    soon_ms = (sqlite_gateway.rt.store.clock() // 1000 + 2) * 1000
    batch = (
        "msisdn,message,send_time_unixtime\n"
        f"254712000011,later,{soon_ms // 1000}\n"
        "254712000012,now,\n"
    )
    reply = call(sqlite_gateway, SEND_BATCH, {**account.eapi_creds, "batch_data": batch})
    assert reply.startswith("0|IN_PROGRESS|")  # not every message is scheduled
    batch_id = batch_id_of(reply)
    sqlite_gateway.wait_until(
        lambda: [line[1] for line in report(sqlite_gateway, account, batch_id)] == ["11", "11"],
        what="both delivered",
    )
    m = t.messages.c
    rows = query(
        sqlite_gateway,
        select(m.recipient, m.due_at, m.submitted_at)
        .where(m.batch_id == int(batch_id))
        .order_by(m.id),
    )
    later, now = rows
    assert later.due_at == soon_ms and later.submitted_at >= soon_ms
    assert now.submitted_at < soon_ms
