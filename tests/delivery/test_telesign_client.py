"""The Telesign-style client: its bulk_sms request, what each answer means, and
callbacks accepted only with the provider's signature."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsgate.core.states import Reason, State
from smsgate.core.telesign_auth import new_api_key, sign_callback
from smsgate.delivery.connectors.http_settings import HttpSettings
from smsgate.delivery.connectors.telesign_client import TelesignClient
from smsgate.delivery.connectors.upstream import Push, PushError, UpstreamAnswer
from smsgate.store.records import OutboundMessage, Receipt, Refused, RetryLater, Submitted

KEY = new_api_key()
CLIENT = TelesignClient(
    HttpSettings.from_url(f"telesign+https://CUST:{KEY.replace('/', '%2F')}@rest.example.com")
)


def message(mid: int) -> OutboundMessage:
    return OutboundMessage(
        mid, 1, f"+2547123456{mid:02d}", "SHOP", "Code 42", "gsm7", 1, 0, True, 0, None, 1
    )


MESSAGES = (message(1), message(2))


def test_one_text_to_many_recipients_each_with_our_id_as_session() -> None:
    request = CLIENT.request(MESSAGES, "k")
    assert request.url == "https://rest.example.com/v1/verify/bulk_sms"
    fields = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
    assert fields == {
        "recipients": "254712345601:1,254712345602:2",
        "template": "Code 42",
        "sender_id": "SHOP",
    }
    scheme, _, token = request.headers["Authorization"].partition(" ")
    assert (scheme, base64.b64decode(token).decode()) == ("Basic", f"CUST:{KEY}")
    assert CLIENT.group_of(message(1)) == CLIENT.group_of(message(2))


def test_the_envelope_decides_the_request() -> None:
    request = CLIENT.request(MESSAGES, "k")
    ok = orjson.dumps({"reference_id": "ABC", "status": {"code": 293}, "errors": []})
    taken = CLIENT.outcomes("up", request, UpstreamAnswer(200, ok))
    assert [o.parts[0].carrier_key for o in taken if isinstance(o, Submitted)] == [
        "abc:1",
        "abc:2",
    ]
    bad = orjson.dumps({"errors": [{"code": -40001, "description": "invalid template"}]})
    refused = CLIENT.outcomes("up", request, UpstreamAnswer(400, bad))
    assert all(isinstance(o, Refused) and "-40001" in o.error for o in refused)
    for status in (401, 429, 503):
        waiting = CLIENT.outcomes("up", request, UpstreamAnswer(status, b"{}"))
        assert all(isinstance(o, RetryLater) and not o.counts_attempt for o in waiting)


def callback(code: int, signed: bool = True) -> Push:
    body = orjson.dumps(
        {"status": {"code": code}, "errors": [], "reference_id": "ABC", "session_id": "2"}
    )
    signature = sign_callback(body, customer_id="CUST", api_key_b64=KEY) if signed else "TSA x:y"
    return Push(body, {}, {"authorization": signature})


def test_signed_callbacks_become_receipts() -> None:
    [receipt] = CLIENT.read_push("up", callback(210), 5)
    assert isinstance(receipt, Receipt)
    assert (receipt.carrier_key, receipt.state, receipt.reason) == (
        "abc:2",
        State.UNDELIVERABLE,
        Reason.ABSENT_SUBSCRIBER,
    )
    assert CLIENT.read_push("up", callback(203), 5) == []  # on its way still
    with pytest.raises(PushError, match="signature"):
        CLIENT.read_push("up", callback(200, signed=False), 5)


fields = st.sampled_from(["status", "reference_id", "session_id", "phone_number"])
values = (
    st.none()
    | st.integers()
    | st.text(max_size=8)
    | st.dictionaries(st.just("code"), st.integers(0, 300) | st.text(max_size=3))
)
bodies = st.binary(max_size=120) | st.dictionaries(fields, values).map(
    lambda d: json.dumps(d).encode()
)


@given(bodies)
def test_no_signed_body_makes_the_client_raise_anything_but_push_error(body: bytes) -> None:
    push = Push(
        body, {}, {"authorization": sign_callback(body, customer_id="CUST", api_key_b64=KEY)}
    )
    try:
        items = CLIENT.read_push("up", push, 5)
    except PushError:
        return
    assert all(isinstance(i, Receipt) for i in items)
