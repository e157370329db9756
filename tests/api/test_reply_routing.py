"""Replies belong to the account that asked: two accounts ask one handset
through the real server, the sandbox carrier delivers the handset's answers,
and each lands in its own account's inbox, on both engines."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.api.test_eapi import GET_CREDITS, SEND_SMS, call
from tests.api.test_eapi_options import GET_INBOX, batch_id_of
from tests.conftest import fast_settings
from tests.support.server import GatewayServer, TestAccount

POOL = ("254709000991", "254709000992")
HANDSET = "254712345005"  # the sandbox's "replies" rule: it answers each message


@pytest.fixture
def pool_gateway(database_url: str) -> Iterator[GatewayServer]:
    server = GatewayServer(fast_settings(database_url, reply_numbers=POOL)).start()
    try:
        yield server
    finally:
        server.stop()


def ask(server: GatewayServer, account: TestAccount, question: str) -> str:
    return call(
        server,
        SEND_SMS,
        {**account.eapi_creds, "msisdn": HANDSET, "message": question, "repliable": "1"},
    )


def inbox(server: GatewayServer, account: TestAccount) -> list[list[str]]:
    head, *lines = call(server, GET_INBOX, account.eapi_creds).splitlines()
    assert head == f"0|records to follow|{len(lines)}"
    return [line.split("|") for line in lines]


def test_each_account_gets_the_answers_to_its_own_question(pool_gateway: GatewayServer) -> None:
    a, b, c = (pool_gateway.create_account(credit="10", senders=()) for _ in range(3))
    asked_a = batch_id_of(ask(pool_gateway, a, "A asks"))
    asked_b = batch_id_of(ask(pool_gateway, b, "B asks"))
    pool_gateway.wait_until(
        lambda: len(inbox(pool_gateway, a)) == 1 and len(inbox(pool_gateway, b)) == 1,
        what="each account's reply in its inbox",
    )
    [(_, sender_a, body_a, _, number_a, referring_a, _)] = inbox(pool_gateway, a)
    [(_, sender_b, body_b, _, number_b, referring_b, _)] = inbox(pool_gateway, b)
    assert (sender_a, body_a, number_a, referring_a) == (HANDSET, "Re: A asks", POOL[0], asked_a)
    assert (sender_b, body_b, number_b, referring_b) == (HANDSET, "Re: B asks", POOL[1], asked_b)

    # A third account finds both numbers in conversation with the handset:
    # refused in EAPI's words, nothing sent or charged.
    refused = ask(pool_gateway, c, "C asks")
    assert refused.startswith("40|temporarily unavailable: no reply number is free for 2547123")
    assert refused.count("|") == 2 and refused.endswith("|")
    assert call(pool_gateway, GET_CREDITS, c.eapi_creds) == "0|10.00"
    assert inbox(pool_gateway, c) == []
    # A asks again: the same number, and the answer is A's again.
    ask(pool_gateway, a, "A again")
    pool_gateway.wait_until(lambda: len(inbox(pool_gateway, a)) == 2, what="A's second reply")
    [_, again] = inbox(pool_gateway, a)
    assert (again[2], again[4]) == ("Re: A again", POOL[0])
    assert len(inbox(pool_gateway, b)) == 1
