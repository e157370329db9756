"""The Telesign-style dialect, driven by the official SDK over a real socket."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from email.utils import formatdate
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from telesign.rest import RestClient
from tests.conftest import fast_settings
from tests.support.receiver import CallbackReceiver
from tests.support.server import GatewayServer, TestAccount

PATH = "/v1/verify/bulk_sms"


def client(server: GatewayServer, account: TestAccount, auth: str | None) -> RestClient:
    return RestClient(
        account.customer_id, account.telesign_key, rest_endpoint=server.base_url, auth_method=auth
    )


@pytest.fixture
def account(sqlite_gateway: GatewayServer) -> TestAccount:
    return sqlite_gateway.create_account(credit="100")


@pytest.mark.parametrize("auth", [None, "Basic"], ids=["hmac", "basic"])
def test_the_sdk_sends_a_bulk_request(
    sqlite_gateway: GatewayServer, account: TestAccount, auth: str | None
) -> None:
    response = client(sqlite_gateway, account, auth).post(
        PATH,
        recipients="254712345678:ABC123,+254712345679",
        template="Your code is 1234",
        ucid="OTHR",
        session_id="DEFAULT",
    )
    assert response.status_code == 200, response.body
    assert response.json["status"]["code"] == 293
    assert response.json["sub_resource"] == "bulk_sms" and response.json["errors"] == []
    reference = response.json["reference_id"]
    assert len(reference) == 32 and int(reference, 16) > 0
    status = client(sqlite_gateway, account, auth).get(f"{PATH}/{reference}")
    assert status.status_code == 200, status.body
    assert [(r["phone_number"], r["session_id"]) for r in status.json["recipients"]] == [
        ("254712345678", "ABC123"),
        ("254712345679", "DEFAULT"),
    ]


def signed_headers(account: TestAccount, body: str, **overrides: Any) -> dict[str, str]:
    headers: dict[str, str] = RestClient.generate_telesign_headers(
        account.customer_id,
        overrides.pop("api_key", account.telesign_key),
        "POST",
        PATH,
        body,
        date_rfc2616=overrides.pop("date", None),
        nonce=overrides.pop("nonce", None),
    )
    return headers


def post_raw(server: GatewayServer, headers: dict[str, str], body: str) -> requests.Response:
    return requests.post(server.base_url + PATH, data=body.encode(), headers=headers, timeout=10)


def error_code(response: requests.Response) -> int:
    body = response.json()
    assert response.status_code == 401 and body["status"]["code"] == 501, body
    (error,) = body["errors"]
    return int(error["code"])


BODY = urlencode({"recipients": "254712345678", "template": "hello"})


def test_each_auth_failure_has_its_code(
    sqlite_gateway: GatewayServer, account: TestAccount
) -> None:
    tampered = post_raw(
        sqlite_gateway, signed_headers(account, BODY), BODY.replace("hello", "hellO")
    )
    assert error_code(tampered) == -30006
    wrong_key = base64.b64encode(b"x" * 64).decode()
    assert (
        error_code(post_raw(sqlite_gateway, signed_headers(account, BODY, api_key=wrong_key), BODY))
        == -30006
    )
    stale = formatdate(usegmt=True, timeval=1_600_000_000)
    assert (
        error_code(post_raw(sqlite_gateway, signed_headers(account, BODY, date=stale), BODY))
        == -30010
    )
    headers = signed_headers(account, BODY)
    assert post_raw(sqlite_gateway, headers, BODY).status_code == 200
    assert error_code(post_raw(sqlite_gateway, headers, BODY)) == -30012  # the same nonce again
    assert error_code(post_raw(sqlite_gateway, {"Content-Type": "x"}, BODY)) == -30004
    assert error_code(post_raw(sqlite_gateway, {"Authorization": "Bearer x"}, BODY)) == -30005
    unknown = {**signed_headers(account, BODY)}
    unknown["Authorization"] = "TSA NOBODY:" + unknown["Authorization"].split(":", 1)[1]
    assert error_code(post_raw(sqlite_gateway, unknown, BODY)) == -30000
    basic = "Basic " + base64.b64encode(f"{account.customer_id}:wrong".encode()).decode()
    assert error_code(post_raw(sqlite_gateway, {"Authorization": basic}, BODY)) == -30015


def test_idempotency_key_replays_the_first_reply(
    sqlite_gateway: GatewayServer, account: TestAccount
) -> None:
    """A retry of a request whose reply was lost, signed afresh (a new nonce),
    gets the first reply: one batch, one charge."""
    body = urlencode({"recipients": "254712345678,254712345679", "template": "hello"})

    def send(key: str) -> dict[str, Any]:
        response = post_raw(
            sqlite_gateway, {**signed_headers(account, body), "Idempotency-Key": key}, body
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def balance() -> int:
        return sqlite_gateway.call(sqlite_gateway.rt.store.balance(account.id))

    before = balance()
    first = send("order-77")
    one_batch = before - balance()
    assert one_batch > 0
    assert send("order-77") == first
    other = send("x" * 300)  # longer than the column: kept as its digest
    assert send("x" * 300) == other and other["reference_id"] != first["reference_id"]
    assert balance() == before - 2 * one_batch


@pytest.mark.postgres
def test_replayed_nonce_is_refused_across_api_processes(postgres_url: str) -> None:
    """Two API servers on one database: a nonce used at one is dead at the other."""
    first = GatewayServer(fast_settings(postgres_url), workers=False).start()
    second = GatewayServer(fast_settings(postgres_url), workers=False).start()
    try:
        account = first.create_account()
        headers = signed_headers(account, BODY)
        assert post_raw(first, headers, BODY).status_code == 200
        assert error_code(post_raw(second, headers, BODY)) == -30012
    finally:
        first.stop()
        second.stop()


def test_suspended_account(sqlite_gateway: GatewayServer, account: TestAccount) -> None:
    sqlite_gateway.call(sqlite_gateway.rt.store.update_account(account.id, status="suspended"))
    response = client(sqlite_gateway, account, "Basic").post(
        PATH, recipients="254712345678", template="x"
    )
    assert response.status_code == 401 and response.json["errors"][0]["code"] == -30001


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"template": "hi"}, "recipients"),
        ({"recipients": "254712345678"}, "template"),
        ({"recipients": ",".join(f"2547123{i:05d}" for i in range(1001)), "template": "x"}, "1000"),
        ({"recipients": "254712345678,12ab", "template": "x"}, "12ab"),
        ({"recipients": "254712345678", "template": "x", "ucid": "NOPE"}, "ucid"),
    ],
)
def test_bad_form_input_is_400(
    sqlite_gateway: GatewayServer, account: TestAccount, fields: dict[str, str], problem: str
) -> None:
    response = client(sqlite_gateway, account, None).post(PATH, **fields)
    assert response.status_code == 400, response.body
    (error,) = response.json["errors"]
    assert error["code"] == -10001 and problem in error["description"]
    assert sqlite_gateway.call(sqlite_gateway.rt.store.count_by_state(account.id)) == {}


def test_signed_callbacks_arrive_once_per_recipient(
    gateway: GatewayServer, receiver: CallbackReceiver
) -> None:
    account = gateway.create_account(callback_url=receiver.url)
    response = client(gateway, account, None).post(
        PATH,
        recipients="254712345011:OWN,254712345000,254712345012",
        template="Your code is 1234",
        session_id="SHARED",
    )
    assert response.status_code == 200, response.body
    reference = response.json["reference_id"]
    received = receiver.wait_for(3)
    key = base64.b64decode(account.telesign_key)
    seen: dict[str, tuple[int, str | None]] = {}
    for callback in received:
        assert callback.method == "POST"
        signature = base64.b64encode(hmac.new(key, callback.body, hashlib.sha256).digest())
        expected = f"TSA {account.customer_id}:{signature.decode()}"
        assert callback.headers["Authorization"] == expected
        assert callback.headers["X-TS-Authorization"] == expected
        body = json.loads(callback.body)
        assert body["reference_id"] == reference and body["sub_resource"] == "bulk_sms"
        assert body["phone_number"] not in seen
        seen[body["phone_number"]] = (body["status"]["code"], body["session_id"])
    assert seen == {
        "254712345011": (200, "OWN"),
        "254712345000": (210, "SHARED"),
        "254712345012": (200, "SHARED"),
    }
    # Final states and their callbacks are written together: nothing else is pending.
    gateway.wait_until(
        lambda: (
            gateway.call(gateway.rt.store.count_by_state(account.id)).keys()
            <= {"delivered", "undeliverable"}
        ),
        what="final states",
    )
    assert len(receiver.requests) == 3


def test_credit_and_quota_answers(sqlite_gateway: GatewayServer) -> None:
    poor = sqlite_gateway.create_account(credit="1")
    refused = client(sqlite_gateway, poor, "Basic").post(
        PATH, recipients="254712345678,254712345679", template="x"
    )
    assert refused.status_code == 402 and refused.json["errors"][0]["code"] == -60001
    limited = sqlite_gateway.create_account(options={"daily_quota": 1})
    sdk = client(sqlite_gateway, limited, "Basic")
    assert sdk.post(PATH, recipients="254712345678", template="x").status_code == 200
    over = sdk.post(PATH, recipients="254712345678", template="x")
    assert over.status_code == 429 and "Daily quota" in over.json["errors"][0]["description"]


def test_unknown_reference_is_404(sqlite_gateway: GatewayServer, account: TestAccount) -> None:
    sdk = client(sqlite_gateway, account, None)
    assert sdk.get(f"{PATH}/{'F' * 32}").status_code == 404
    assert sdk.get(f"{PATH}/not-a-reference").status_code == 404
