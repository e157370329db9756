"""Every error path of the partnerID/apikey dialect answers with its own code."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import requests
from tests.conftest import fast_settings
from tests.support.server import GatewayServer, TestAccount


@pytest.fixture
def account(sqlite_gateway: GatewayServer) -> TestAccount:
    return sqlite_gateway.create_account(credit="5")


def post(server: GatewayServer, endpoint: str, body: Any, **kwargs: Any) -> dict[str, Any]:
    response = requests.post(
        f"{server.base_url}/api/services/{endpoint}", json=body, timeout=10, **kwargs
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    return dict(response.json())


def sms(account: TestAccount, **fields: Any) -> dict[str, Any]:
    return {
        **account.creds,
        "message": "hi",
        "shortcode": "SMSGATE",
        "mobile": "0712345678",
        **fields,
    }


def test_1001_unregistered_sender(sqlite_gateway: GatewayServer, account: TestAccount) -> None:
    reply = post(sqlite_gateway, "sendsms", sms(account, shortcode="smsgate"))
    assert reply["response-code"] == 1001
    assert "not registered" in reply["response-description"]


def test_1002_country_not_enabled(sqlite_gateway: GatewayServer) -> None:
    restricted = sqlite_gateway.create_account(allowed_country_codes=[254])
    reply = post(sqlite_gateway, "sendsms", sms(restricted, mobile="254712345678,+447911123456"))
    assert [r["response-code"] for r in reply["responses"]] == [200, 1002]


def test_1003_bad_number_fails_alone(sqlite_gateway: GatewayServer, account: TestAccount) -> None:
    reply = post(sqlite_gateway, "sendsms", sms(account, mobile="0712345678,12ab,0722000111"))
    codes = [r["response-code"] for r in reply["responses"]]
    assert codes == [200, 1003, 200]
    assert reply["responses"][1]["mobile"] == "12ab"


def test_1004_low_credit_writes_nothing(sqlite_gateway: GatewayServer) -> None:
    poor = sqlite_gateway.create_account(credit="1")
    reply = post(sqlite_gateway, "sendsms", sms(poor, mobile="0712345678,0722000111"))
    assert reply == {"response-code": 1004, "response-description": "Low bulk credits"}
    balance = post(sqlite_gateway, "getbalance", poor.creds)
    assert balance["credit"] == "1.00"
    assert sqlite_gateway.call(sqlite_gateway.rt.store.count_by_state(poor.id)) == {}


def test_1005_daily_quota(sqlite_gateway: GatewayServer) -> None:
    limited = sqlite_gateway.create_account(credit="5", options={"daily_quota": 2})
    assert (
        post(sqlite_gateway, "sendsms", sms(limited, mobile="0712345678,0722000111"))["responses"][
            0
        ]["response-code"]
        == 200
    )
    reply = post(sqlite_gateway, "sendsms", sms(limited))
    assert reply["response-code"] == 1005 and "daily quota" in reply["response-description"]


def test_4090_when_overloaded(tmp_path: Path) -> None:
    settings = fast_settings(f"sqlite:///{tmp_path / 'busy.sqlite3'}", max_pending_submissions=0)
    server = GatewayServer(settings).start()
    try:
        busy = server.create_account()
        assert post(server, "sendsms", sms(busy))["response-code"] == 4090
    finally:
        server.stop()


@pytest.mark.parametrize(
    "creds",
    [
        {"partnerID": "999999", "apikey": "nope"},
        {"apikey": "wrong"},
    ],
)
def test_1006_invalid_credentials(
    sqlite_gateway: GatewayServer, account: TestAccount, creds: dict[str, str]
) -> None:
    fields = {**sms(account), **creds}
    if "partnerID" not in creds:
        fields["partnerID"] = account.partner_id
    reply = post(sqlite_gateway, "sendsms", fields)
    assert reply == {"response-code": 1006, "response-description": "Invalid credentials"}


def test_1006_suspended_account(sqlite_gateway: GatewayServer, account: TestAccount) -> None:
    sqlite_gateway.call(sqlite_gateway.rt.store.update_account(account.id, status="suspended"))
    assert post(sqlite_gateway, "getbalance", account.creds)["response-code"] == 1006


def test_bm5_pass_type(sqlite_gateway: GatewayServer, account: TestAccount) -> None:
    encoded = base64.b64encode(account.apikey.encode()).decode()
    reply = post(
        sqlite_gateway,
        "getbalance",
        {"partnerID": account.partner_id, "apikey": encoded, "pass_type": "bm5"},
    )
    assert reply["response-code"] == 200
    wrong = post(
        sqlite_gateway,
        "getbalance",
        {"partnerID": account.partner_id, "apikey": account.apikey, "pass_type": "bm5"},
    )
    assert wrong["response-code"] == 1006


def test_1010_unsupported_request(sqlite_gateway: GatewayServer, account: TestAccount) -> None:
    reply = requests.get(
        f"{sqlite_gateway.base_url}/api/services/sendbulk", params=account.creds
    ).json()
    assert reply["response-code"] == 1010
    unknown = requests.post(f"{sqlite_gateway.base_url}/api/services/sendfax", json={}).json()
    assert unknown["response-code"] == 1010


def test_1012_too_many_in_smslist(sqlite_gateway: GatewayServer, account: TestAccount) -> None:
    entry = sms(account)
    reply = post(sqlite_gateway, "sendbulk", {"count": 1001, "smslist": [entry] * 1001})
    assert reply["response-code"] == 1012
    assert sqlite_gateway.call(sqlite_gateway.rt.store.count_by_state(account.id)) == {}


def test_1104_too_many_contacts(sqlite_gateway: GatewayServer, account: TestAccount) -> None:
    numbers = ",".join(f"0712{n:06d}" for n in range(1001))
    assert post(sqlite_gateway, "sendsms", sms(account, mobile=numbers))["response-code"] == 1104
    otp = post(sqlite_gateway, "sendotp", sms(account, mobile="0712345678,0712345679"))
    assert otp["response-code"] == 1104


def test_4091_and_4092_missing_credentials(
    sqlite_gateway: GatewayServer, account: TestAccount
) -> None:
    no_partner = post(sqlite_gateway, "getbalance", {"apikey": account.apikey})
    assert no_partner["response-code"] == 4091
    no_key = post(sqlite_gateway, "getbalance", {"partnerID": account.partner_id})
    assert no_key["response-code"] == 4092


@pytest.mark.parametrize("body", [b"{not json", b"[1,2,3]", b"\xff\xfe\x00", b'"text"'])
def test_malformed_body_gets_json_error(sqlite_gateway: GatewayServer, body: bytes) -> None:
    for endpoint in ("sendsms", "sendbulk", "getdlr", "getbalance"):
        response = requests.post(
            f"{sqlite_gateway.base_url}/api/services/{endpoint}",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 200
        assert response.json()["response-code"] == 1009


def test_getdlr_unknown_and_foreign_messages(
    sqlite_gateway: GatewayServer, account: TestAccount
) -> None:
    other = sqlite_gateway.create_account()
    [sent] = post(sqlite_gateway, "sendsms", sms(other))["responses"]
    foreign = post(sqlite_gateway, "getdlr", {**account.creds, "messageID": sent["messageid"]})
    assert foreign["response-code"] == 4093
    missing = post(sqlite_gateway, "getdlr", {**account.creds, "messageID": "424242"})
    assert missing["response-code"] == 4093
    beyond_bigint = post(sqlite_gateway, "getdlr", {**account.creds, "messageID": "9" * 30})
    assert beyond_bigint["response-code"] == 4093


def test_trailing_slash_and_sendotp_string_id(
    sqlite_gateway: GatewayServer, account: TestAccount
) -> None:
    reply = post(sqlite_gateway, "sendotp/", sms(account, clientsmsid="abc"))
    [entry] = reply["responses"]
    assert entry["response-code"] == 200
    assert isinstance(entry["messageid"], str) and entry["messageid"].isdigit()
    assert entry["clientsmsid"] == "abc"


def test_idempotency_key_replays_the_first_reply(
    sqlite_gateway: GatewayServer, account: TestAccount
) -> None:
    headers = {"Idempotency-Key": "order-77"}
    first = post(sqlite_gateway, "sendsms", sms(account), headers=headers)
    again = post(sqlite_gateway, "sendsms", sms(account), headers=headers)
    assert first == again
    assert post(sqlite_gateway, "getbalance", account.creds)["credit"] == "4.00"


def test_carrier_refusal_is_refunded(sqlite_gateway: GatewayServer, account: TestAccount) -> None:
    [entry] = post(sqlite_gateway, "sendsms", sms(account, mobile="0712345004"))["responses"]

    def refunded() -> bool:
        return post(sqlite_gateway, "getbalance", account.creds)["credit"] == "5.00"

    sqlite_gateway.wait_until(refunded, what="refund of the refused message")
    report = post(sqlite_gateway, "getdlr", {**account.creds, "messageID": entry["messageid"]})
    assert report["delivery-description"] == "DeliveryImpossible"
    ledger = sqlite_gateway.call(sqlite_gateway.rt.store.ledger_entries(account.id))
    assert [e.kind for e in ledger] == ["topup", "charge", "refund"]
    assert ledger[-1].message_id == entry["messageid"]


def test_sendbulk_entry_problems_stay_with_their_entry(
    sqlite_gateway: GatewayServer, account: TestAccount
) -> None:
    entries = [
        sms(account),
        "not an object",
        sms(account, message=""),
        sms(account, timeToSend="whenever"),
        sms(account, mobile="0712345678,0712345679"),
    ]
    reply = post(sqlite_gateway, "sendbulk", {"count": 5, "smslist": entries})
    responses = reply["responses"]
    assert [r["response-code"] for r in responses] == [200, 1009, 1009, 1009, 1003]
    assert responses[1]["response-description"] == "Unsupported data type: entry is not an object"
    assert responses[2]["response-description"] == (
        "Unsupported data type: message must be a non-empty string"
    )
    assert "not a date and time" in responses[3]["response-description"]
