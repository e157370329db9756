"""End to end through the partnerID/apikey dialect, on SQLite and PostgreSQL,
using the seeds' own Python ``requests`` examples with the placeholders filled."""

from __future__ import annotations

from typing import Any

import orjson
import requests
from tests.support.receiver import CallbackReceiver
from tests.support.server import GatewayServer, TestAccount

from smsgate.core.states import State


def dlr(server: GatewayServer, account: TestAccount, message_id: Any) -> dict[str, Any]:
    reply = requests.post(
        f"{server.base_url}/api/services/getdlr/",
        json={**account.creds, "messageID": str(message_id)},
        timeout=10,
    )
    return dict(reply.json())


def wait_for_report(
    server: GatewayServer, account: TestAccount, message_id: Any, description: str
) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def reported() -> bool:
        seen.update(dlr(server, account, message_id))
        return seen.get("delivery-description") == description

    server.wait_until(reported, what=f"{description} for {message_id} (last: {seen})")
    return seen


def test_seed_sendsms_get_and_post_deliver(gateway: GatewayServer) -> None:
    account = gateway.create_account(credit="10")
    url = f"{gateway.base_url}/api/services/sendsms"
    # Seed 002, GET example.
    response = requests.get(
        url,
        params={
            "apikey": account.apikey,
            "partnerID": account.partner_id,
            "message": "Hello there",
            "shortcode": "SMSGATE",
            "mobile": "0712345678",
        },
    )
    body = response.json()
    assert response.status_code == 200
    [entry] = body["responses"]
    assert entry["response-code"] == 200
    assert entry["response-description"] == "Success"
    assert entry["mobile"] == 254712345678
    assert isinstance(entry["messageid"], int)
    assert entry["networkid"] == 1
    # Seed 002, POST example.
    payload = {
        "apikey": account.apikey,
        "partnerID": account.partner_id,
        "message": "Hello again",
        "shortcode": "SMSGATE",
        "mobile": "254733123456",
    }
    response = requests.post(url, json=payload, headers={"Content-Type": "application/json"})
    [posted] = response.json()["responses"]
    assert posted["response-code"] == 200 and posted["networkid"] == 2
    report = wait_for_report(gateway, account, entry["messageid"], "DeliveredToTerminal")
    assert report["response-code"] == 200
    assert report["delivery-status"] == 32
    assert report["message-id"] == str(entry["messageid"])
    assert report["delivery-networkid"] == 1
    wait_for_report(gateway, account, posted["messageid"], "DeliveredToTerminal")
    balance = requests.post(
        f"{gateway.base_url}/api/services/getbalance", json=account.creds
    ).json()
    assert balance == {"response-code": 200, "credit": "8.00", "partner-id": account.partner_id}


def test_seed_sendbulk_charges_per_segment_and_pushes_reports(
    gateway: GatewayServer, receiver: CallbackReceiver
) -> None:
    account = gateway.create_account(credit="20", callback_url=receiver.url)
    long_text = "x" * 161  # two GSM segments
    # Seed 000, Python example (duplicate pass_type key included by the dict literal's last).
    payload = {
        "count": 3,
        "smslist": [
            {
                "partnerID": account.partner_id,
                "apikey": account.apikey,
                "pass_type": "plain",
                "clientsmsid": 1001,
                "mobile": "254712000111",
                "message": "Hello Ann",
                "shortcode": "SMSGATE",
            },
            {
                "partnerID": account.partner_id,
                "apikey": account.apikey,
                "pass_type": "plain",
                "mobile": "254722000222",
                "clientsmsid": 1002,
                "message": long_text,
                "shortcode": "SMSGATE",
            },
            {
                "partnerID": account.partner_id,
                "apikey": account.apikey,
                "mobile": "254712345000",
                "clientsmsid": 1003,
                "message": "Absent",
                "shortcode": "SMSGATE",
            },
        ],
    }
    response = requests.post(
        f"{gateway.base_url}/api/services/sendbulk",
        json=payload,
        headers={"Content-Type": "application/json"},
    )
    responses = response.json()["responses"]
    assert [r["response-code"] for r in responses] == [200, 200, 200]
    assert [r["clientsmsid"] for r in responses] == [1001, 1002, 1003]
    ids = [r["messageid"] for r in responses]
    assert len(set(ids)) == 3
    wait_for_report(gateway, account, ids[0], "DeliveredToTerminal")
    wait_for_report(gateway, account, ids[1], "DeliveredToTerminal")
    wait_for_report(gateway, account, ids[2], "AbsentSubscriber")
    balance = requests.post(
        f"{gateway.base_url}/api/services/getbalance", json=account.creds
    ).json()
    assert balance["credit"] == "16.00"  # 1 + 2 + 1 segments
    pushed = receiver.wait_for(3)
    bodies = {b["messageid"]: b for b in (orjson.loads(r.body) for r in pushed)}
    assert set(bodies) == {str(i) for i in ids}
    assert bodies[str(ids[2])]["description"] == "AbsentSubscriber"
    assert bodies[str(ids[0])]["description"] == "DeliveredToTerminal"
    assert all(r.method == "POST" for r in pushed)
    assert set(bodies[str(ids[0])]) == {"description", "messageid", "timeTaken", "timestamp"}


def test_scheduled_message_waits_for_its_time(gateway: GatewayServer) -> None:
    account = gateway.create_account()
    send_at = gateway.rt.store.clock() // 1000 + 2
    response = requests.post(
        f"{gateway.base_url}/api/services/sendsms",
        json={
            **account.creds,
            "message": "later",
            "shortcode": "SMSGATE",
            "mobile": "0712345678",
            "timeToSend": send_at,
        },
    )
    [entry] = response.json()["responses"]
    assert dlr(gateway, account, entry["messageid"])["delivery-description"] == "Scheduled"
    view = gateway.call(gateway.rt.store.message(account.id, entry["messageid"]))
    assert view is not None and view.state is State.SCHEDULED
    report = wait_for_report(gateway, account, entry["messageid"], "DeliveredToTerminal")
    submitted = gateway.call(gateway.rt.store.message(account.id, entry["messageid"]))
    assert submitted is not None and submitted.submitted_at is not None
    assert submitted.submitted_at >= send_at * 1000
    assert report["delivery-description"] == "DeliveredToTerminal"
