"""Property: whatever a client sends, the dialect answers HTTP 200 with a JSON
object carrying a known response code, never a 500 and never HTML; a refused
request writes nothing, nothing logs a traceback, and another tenant sending
valid messages meanwhile gets every one accepted. On both engines;
``SMSGATE_FUZZ_EXAMPLES`` multiplies the example counts."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support.fuzzing import (
    ApiProcesses,
    WellBehavedTenant,
    changed_tables,
    examples,
    snapshot,
    tracebacks,
)
from tests.support.server import GatewayServer

from smsgate.api.dialects.advanta import DESCRIPTIONS

# What used to get past the door: Unicode digits, ids beyond 64 bits, control
# characters, impossible offsets, over-long values.
HOSTILE = [
    "²",
    "9" * 5_000,
    str(2**63),
    "x\u0000",
    "\u0007",
    "2030-01-01 10:00+99:99",
    "a" * 1_600,
    "ключ",
    "254712345678",
]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(HOSTILE),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
deep_values = st.integers(1, 300).map(lambda depth: _nest(depth))


def _nest(depth: int) -> Any:
    value: Any = "ref"
    for _ in range(depth):
        value = [value]
    return value


field_names = st.sampled_from(
    [
        "partnerID",
        "apikey",
        "pass_type",
        "message",
        "shortcode",
        "mobile",
        "timeToSend",
        "clientsmsid",
        "messageID",
        "count",
        "smslist",
    ]
)


def fields_with(creds: dict[str, str]) -> st.SearchStrategy[dict[str, Any]]:
    values = json_values | deep_values
    return st.dictionaries(field_names, values, max_size=8).map(
        lambda extra: {**creds, **extra}
    ) | st.dictionaries(field_names, values)


def check(response: requests.Response) -> bool:
    """The reply is well formed; True if it refused everything (nothing may be stored)."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict)
    codes = (
        [body["response-code"]]
        if "response-code" in body
        else [entry["response-code"] for entry in body["responses"]]
    )
    assert codes and all(code in DESCRIPTIONS for code in codes), body
    return 200 not in codes or "credit" in body  # a balance reads, it never writes


def test_any_json_gets_a_coded_json_answer(
    api_gateway: GatewayServer,
    api_processes: ApiProcesses,
    caplog: pytest.LogCaptureFixture,
) -> None:
    account = api_gateway.create_account(credit="1000000")

    @settings(max_examples=examples(80), deadline=None)
    @given(data=st.data())
    def send_anything(data: Any) -> None:
        endpoint = data.draw(
            st.sampled_from(["sendsms", "sendotp", "sendbulk/", "getdlr", "getbalance", "nosuch"])
        )
        body = data.draw(fields_with(account.creds))
        if endpoint == "sendbulk/" and data.draw(st.booleans()):
            body = {
                "count": 2,
                "smslist": data.draw(st.lists(fields_with(account.creds), max_size=3)),
            }
        before = snapshot(api_gateway, account)
        base = data.draw(st.sampled_from(api_processes.bases))
        url = f"{base}/api/services/{endpoint}"
        if check(requests.post(url, json=body, timeout=30)):
            assert changed_tables(before, snapshot(api_gateway, account)) == [], body

    with WellBehavedTenant(api_gateway, api_processes.bases) as tenant:
        send_anything()
    tenant.assert_unaffected()
    assert tracebacks(caplog) == [] and api_processes.tracebacks() == []


@settings(
    max_examples=examples(30),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    raw=st.binary(max_size=200),
    content_type=st.sampled_from(
        ["application/json", "application/x-www-form-urlencoded", "text/plain", ""]
    ),
)
def test_any_bytes_get_a_coded_json_answer(
    api_gateway: GatewayServer, raw: bytes, content_type: str
) -> None:
    assert check(
        requests.post(
            f"{api_gateway.base_url}/api/services/sendsms",
            data=raw,
            headers={"Content-Type": content_type},
            timeout=10,
        )
    )
