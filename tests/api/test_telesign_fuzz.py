"""Property: whatever form a client posts, the Telesign-style endpoint answers
with its JSON envelope and a deliberate status, never a 500."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support.server import GatewayServer

values = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["254712345678", "254712345678:S1,0712345679", "OTHR", "NOPE", ",,", ":"]),
    st.lists(st.sampled_from(["254712345678", "12ab", "+447911123456", ""]), max_size=5).map(
        ",".join
    ),
)
fields = st.dictionaries(
    st.sampled_from(["recipients", "template", "ucid", "sender_id", "session_id", "x"]),
    values,
    max_size=6,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_form_gets_an_envelope(sqlite_gateway: GatewayServer, data: Any) -> None:
    if not hasattr(sqlite_gateway, "fuzz_account"):
        sqlite_gateway.fuzz_account = sqlite_gateway.create_account(  # type: ignore[attr-defined]
            credit="1000000", senders=()
        )
    account = sqlite_gateway.fuzz_account  # type: ignore[attr-defined]
    form: dict[str, str] = data.draw(fields)
    body = "&".join(f"{quote(k)}={quote(v)}" for k, v in form.items()).encode()
    if data.draw(st.integers(0, 9)) == 0:
        body = data.draw(st.binary(max_size=80))
    response = requests.post(
        f"{sqlite_gateway.base_url}/v1/verify/bulk_sms",
        data=body,
        auth=(account.customer_id, account.telesign_key),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert response.status_code in (200, 400, 402), response.text
    envelope = response.json()
    assert isinstance(envelope["status"]["code"], int)
    if response.status_code == 200:
        assert envelope["status"]["code"] == 293 and len(envelope["reference_id"]) == 32
    else:
        [error] = envelope["errors"]
        assert error["code"] < 0 and error["description"]
