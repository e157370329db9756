"""Per-account sending limits: a tenant over its rate gets its dialect's
"try later" and nothing is stored for it, while another tenant sends on."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
import requests
from tests.support.server import GatewayServer, TestAccount

from smsgate.account_limits import AccountLimits, AccountThrottled
from smsgate.config import Settings
from smsgate.core.model import Account, AccountStatus

Send = Callable[[str, TestAccount, int], str]
SENDER = "SMSGATE"


def advanta(base: str, account: TestAccount, i: int) -> str:
    reply = requests.post(
        base + "/api/services/sendsms",
        json={
            **account.creds,
            "mobile": f"2547120000{i:02d}",
            "message": "hi",
            "shortcode": "SMSGATE",
        },
        timeout=30,
    ).json()
    code = reply.get("response-code") or reply["responses"][0]["response-code"]
    return {200: "ok", 4090: "throttled"}[code]


def eapi(base: str, account: TestAccount, i: int) -> str:
    reply = requests.post(
        base + "/eapi/submission/send_sms/2/2.0",
        data={**account.eapi_creds, "msisdn": f"2547120000{i:02d}", "message": "hi"},
        timeout=30,
    ).text
    return {"0": "ok", "40": "throttled"}[reply.split("|")[0]]


def telesign(base: str, account: TestAccount, i: int) -> str:
    basic = base64.b64encode(f"{account.customer_id}:{account.telesign_key}".encode()).decode()
    reply = requests.post(
        base + "/v1/verify/bulk_sms",
        data={"recipients": f"2547120000{i:02d}", "template": "hi"},
        headers={"Authorization": f"Basic {basic}"},
        timeout=30,
    )
    if reply.status_code == 429:
        assert reply.json()["errors"][0]["code"] == -90001 and reply.headers["retry-after"]
        return "throttled"
    assert reply.status_code == 200, reply.text
    return "ok"


SENDS: dict[str, Send] = {"advanta": advanta, "eapi": eapi, "telesign": telesign}


@pytest.mark.parametrize("dialect", sorted(SENDS))
def test_a_tenant_over_its_rate_is_throttled_and_another_is_not(
    gateway: GatewayServer, dialect: str
) -> None:
    send = SENDS[dialect]
    noisy = gateway.create_account(options={"max_messages_per_second": 1, "message_burst": 3})
    quiet = gateway.create_account()
    told = [send(gateway.base_url, noisy, i) for i in range(6)]
    # The burst passes, then the rate holds (a send takes well under a second).
    assert told[:3] == ["ok"] * 3 and "throttled" in told[3:]
    assert [send(gateway.base_url, quiet, i) for i in range(20)] == ["ok"] * 20
    stored = gateway.call(gateway.rt.store.balance(noisy.id))
    sent = told.count("ok")
    assert stored == 100 * 100 - sent * 100  # only the accepted sends were charged


def account(**options: object) -> Account:
    return Account(1, "a", AccountStatus.ACTIVE, "KE", "Africa/Nairobi", 0, options=dict(options))


def test_requests_in_flight_and_the_bucket_refill() -> None:
    now = [0.0]
    limits = AccountLimits(Settings(), clock=lambda: now[0])
    tenant = account(max_requests_in_flight=1, max_messages_per_second=10, message_burst=10)
    busy = pytest.raises(AccountThrottled, match="at most 1 requests at once")
    # A big request may take the bucket below zero; a second one at once is refused.
    with limits.admit(tenant, 25), busy, limits.admit(tenant, 1):
        pass
    over = pytest.raises(AccountThrottled, match="over 10 messages per second")
    with over as refused, limits.admit(tenant, 1):
        pass
    assert refused.value.retry_after == 2  # 15 messages of debt at 10 a second
    now[0] = 1.6
    with limits.admit(tenant, 1):
        pass


def test_a_failed_request_gives_its_messages_back() -> None:
    limits = AccountLimits(Settings(), clock=lambda: 0.0)
    tenant = account(max_messages_per_second=1, message_burst=5)
    with pytest.raises(RuntimeError), limits.admit(tenant, 5):
        raise RuntimeError("refused downstream")
    with limits.admit(tenant, 5):
        pass
