"""Property: whatever a client sends, the dialect answers HTTP 200 with a JSON
object carrying a known response code, never a 500 and never HTML."""

from __future__ import annotations

from typing import Any

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support.server import GatewayServer

from smsgate.api.dialects.advanta import DESCRIPTIONS

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
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
    return st.dictionaries(field_names, json_values, max_size=8).map(
        lambda extra: {**creds, **extra}
    ) | st.dictionaries(field_names, json_values)


def check(response: requests.Response) -> None:
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict)
    codes = (
        [body["response-code"]]
        if "response-code" in body
        else [entry["response-code"] for entry in body["responses"]]
    )
    assert codes and all(code in DESCRIPTIONS for code in codes), body


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_json_gets_a_coded_json_answer(sqlite_gateway: GatewayServer, data: Any) -> None:
    if not hasattr(sqlite_gateway, "fuzz_account"):
        sqlite_gateway.fuzz_account = sqlite_gateway.create_account(  # type: ignore[attr-defined]
            credit="1000000"
        )
    creds = sqlite_gateway.fuzz_account.creds  # type: ignore[attr-defined]
    endpoint = data.draw(
        st.sampled_from(["sendsms", "sendotp", "sendbulk/", "getdlr", "getbalance", "nosuch"])
    )
    body = data.draw(fields_with(creds))
    if endpoint == "sendbulk/" and data.draw(st.booleans()):
        body = {"count": 2, "smslist": data.draw(st.lists(fields_with(creds), max_size=3))}
    check(
        requests.post(f"{sqlite_gateway.base_url}/api/services/{endpoint}", json=body, timeout=10)
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    raw=st.binary(max_size=200),
    content_type=st.sampled_from(
        ["application/json", "application/x-www-form-urlencoded", "text/plain", ""]
    ),
)
def test_any_bytes_get_a_coded_json_answer(
    sqlite_gateway: GatewayServer, raw: bytes, content_type: str
) -> None:
    check(
        requests.post(
            f"{sqlite_gateway.base_url}/api/services/sendsms",
            data=raw,
            headers={"Content-Type": content_type},
            timeout=10,
        )
    )
