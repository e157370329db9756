"""One authenticated call per dialect, read back as what the client was told:
``ok``, ``denied`` (wrong credentials) or ``throttled`` (each dialect's
"try later" code), so a test can drive all three dialects alike."""

from __future__ import annotations

import base64
from collections.abc import Callable

import requests

from tests.support.server import TestAccount

Attempt = Callable[[str, TestAccount, bool, str], str]


def _forwarded(address: str) -> dict[str, str]:
    # uvicorn trusts X-Forwarded-For from 127.0.0.1, as it would from a local proxy.
    return {"X-Forwarded-For": address}


def advanta(base: str, account: TestAccount, right: bool, address: str) -> str:
    apikey = account.apikey if right else "0" * 32
    reply = requests.post(
        base + "/api/services/getbalance",
        json={"partnerID": account.partner_id, "apikey": apikey},
        headers=_forwarded(address),
        timeout=30,
    )
    assert reply.status_code == 200
    code = reply.json()["response-code"]
    return {200: "ok", 1006: "denied", 4090: "throttled"}[code]


def eapi(base: str, account: TestAccount, right: bool, address: str) -> str:
    creds = account.eapi_creds
    if not right:
        creds = {**creds, "password": "guess"}
    reply = requests.post(
        base + "/eapi/user/get_credits/1/1.1", data=creds, headers=_forwarded(address), timeout=30
    )
    assert reply.status_code == 200
    code = int(reply.text.split("|")[0])
    return {0: "ok", 23: "denied", 40: "throttled"}[code]


def telesign(base: str, account: TestAccount, right: bool, address: str) -> str:
    key = account.telesign_key if right else base64.b64encode(b"x" * 64).decode()
    basic = base64.b64encode(f"{account.customer_id}:{key}".encode()).decode()
    reply = requests.get(
        base + "/v1/verify/bulk_sms/" + "0" * 31 + "1",
        headers={**_forwarded(address), "Authorization": f"Basic {basic}"},
        timeout=30,
    )
    if reply.status_code == 429:
        assert reply.json()["errors"][0]["code"] == -90001
        assert int(reply.headers["retry-after"]) >= 1
        return "throttled"
    # An unknown reference once authenticated is 404; wrong credentials are 401.
    return {404: "ok", 401: "denied"}[reply.status_code]


DIALECTS: dict[str, Attempt] = {"advanta": advanta, "eapi": eapi, "telesign": telesign}
