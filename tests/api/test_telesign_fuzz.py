"""Property: whatever form a client posts, the Telesign-style endpoints answer
with their JSON envelope and a deliberate status, never a 500; a refused
request writes nothing, and another tenant sending valid messages meanwhile
gets every one accepted. On both engines; ``SMSGATE_FUZZ_EXAMPLES``
multiplies the example count."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
import requests
from hypothesis import given, settings
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

values = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["254712345678", "254712345678:S1,0712345679", "OTHR", "NOPE", ",,", ":"]),
    # What used to get past the door.
    st.sampled_from(["x\x00", "254712345678:\x00", "a" * 1_600, "s" * 1_001, "²"]),
    st.lists(st.sampled_from(["254712345678", "12ab", "+447911123456", ""]), max_size=5).map(
        ",".join
    ),
)
fields = st.dictionaries(
    st.sampled_from(["recipients", "template", "ucid", "sender_id", "session_id", "x"]),
    values,
    max_size=6,
)


def test_any_form_gets_an_envelope(
    api_gateway: GatewayServer,
    api_processes: ApiProcesses,
    caplog: pytest.LogCaptureFixture,
) -> None:
    account = api_gateway.create_account(credit="1000000", senders=())
    auth = (account.customer_id, account.telesign_key)

    @settings(max_examples=examples(80), deadline=None)
    @given(data=st.data())
    def send_anything(data: Any) -> None:
        before = snapshot(api_gateway, account)
        base = data.draw(st.sampled_from(api_processes.bases))
        if data.draw(st.integers(0, 4)) == 0:  # the status query, with any reference
            reference = data.draw(st.text(min_size=1, max_size=40).map(lambda t: quote(t, safe="")))
            response = requests.get(f"{base}/v1/verify/bulk_sms/{reference}", auth=auth, timeout=30)
            assert response.status_code in (200, 400, 404), response.text
            assert isinstance(response.json()["status"]["code"], int)
            assert changed_tables(before, snapshot(api_gateway, account)) == []
            return
        form: dict[str, str] = data.draw(fields)
        body = "&".join(f"{quote(k)}={quote(v)}" for k, v in form.items()).encode()
        if data.draw(st.integers(0, 9)) == 0:
            body = data.draw(st.binary(max_size=80))
        response = requests.post(
            f"{base}/v1/verify/bulk_sms",
            data=body,
            auth=auth,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=30,
        )
        assert response.status_code in (200, 400, 402), response.text
        envelope = response.json()
        assert isinstance(envelope["status"]["code"], int)
        if response.status_code == 200:
            assert envelope["status"]["code"] == 293 and len(envelope["reference_id"]) == 32
        else:
            [error] = envelope["errors"]
            assert error["code"] < 0 and error["description"]
            assert changed_tables(before, snapshot(api_gateway, account)) == [], form

    with WellBehavedTenant(api_gateway, api_processes.bases) as tenant:
        send_anything()
    tenant.assert_unaffected()
    assert tracebacks(caplog) == [] and api_processes.tracebacks() == []
