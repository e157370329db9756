"""The partnerID/apikey client: what each answer and push means, and that no
answer or push an upstream can send makes it raise."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsgate.core.states import Reason, State
from smsgate.delivery.connectors.advanta_client import AdvantaClient
from smsgate.delivery.connectors.http_settings import HttpSettings
from smsgate.delivery.connectors.upstream import Push, PushError, UpstreamAnswer, request_key
from smsgate.store.records import (
    InboundMessage,
    OutboundMessage,
    Receipt,
    Refused,
    RetryLater,
    Submitted,
)

SETTINGS = HttpSettings.from_url("advanta+https://12345:KEY@sms.example.com/api/services/")
CLIENT = AdvantaClient(SETTINGS)


def message(mid: int, sender: str = "SHOP", encoding: str = "gsm7") -> OutboundMessage:
    return OutboundMessage(
        mid, 1, f"+2547123456{mid:02d}", sender, "hi", encoding, 1, 0, True, 0, None, 1
    )


MESSAGES = (message(1), message(2), message(3))


def answer(document: object, status: int = 200) -> UpstreamAnswer:
    return UpstreamAnswer(status, orjson.dumps(document))


def test_the_request_is_the_dialects_sendbulk_under_a_stable_key() -> None:
    key = request_key("up", MESSAGES)
    request = CLIENT.request(MESSAGES, key)
    assert request.url == "https://sms.example.com/api/services/sendbulk"
    assert request.headers["Idempotency-Key"] == key == request_key("up", MESSAGES)
    body = orjson.loads(request.content)
    assert body["count"] == 3
    assert body["smslist"][1] == {
        "partnerID": "12345",
        "apikey": "KEY",
        "pass_type": "plain",
        "clientsmsid": "2",
        "mobile": "254712345602",
        "message": "hi",
        "shortcode": "SHOP",
    }
    assert request_key("up", MESSAGES[:2]) != key != request_key("other", MESSAGES)


def test_each_entry_decides_its_message() -> None:
    request = CLIENT.request(MESSAGES, "k")
    outcomes = CLIENT.outcomes(
        "up",
        request,
        answer(
            {
                "responses": [
                    # Out of order, matched by clientsmsid, ids as numbers or strings.
                    {
                        "response-code": 1003,
                        "response-description": "Invalid mobile",
                        "clientsmsid": 2,
                    },
                    {"response-code": 200, "messageid": 8290842, "clientsmsid": "1"},
                    {"response-code": 4090, "clientsmsid": "3"},
                ]
            }
        ),
    )
    taken, refused, later = outcomes
    assert isinstance(taken, Submitted) and taken.carrier_ref == "8290842"
    assert isinstance(refused, Refused)
    assert (refused.state, refused.reason) == (State.REJECTED, Reason.UNKNOWN_SUBSCRIBER)
    assert isinstance(later, RetryLater) and not later.counts_attempt
    assert later.delay_ms == 300_000


@pytest.mark.parametrize(
    ("document", "status", "expected"),
    [
        (
            {"response-code": 1004, "response-description": "Low bulk credits"},
            200,
            Reason.UPSTREAM_NO_CREDIT,
        ),
        (
            {"response-code": 1001, "response-description": "Invalid sender id"},
            200,
            Reason.SENDER_BLOCKED,
        ),
        ({"response-code": 1006, "response-description": "Invalid credentials"}, 200, None),
        ({"error": "x"}, 503, None),
        ({"error": "x"}, 429, None),
    ],
)
def test_a_request_level_answer_decides_every_message(
    document: dict[str, object], status: int, expected: Reason | None
) -> None:
    outcomes = CLIENT.outcomes("up", CLIENT.request(MESSAGES, "k"), answer(document, status))
    assert len(outcomes) == 3
    if expected is None:  # the connection, not the messages: no attempt used
        assert all(isinstance(o, RetryLater) and not o.counts_attempt for o in outcomes)
    else:
        assert all(isinstance(o, Refused) and o.reason is expected for o in outcomes)


def test_a_binary_message_cannot_be_carried() -> None:
    assert CLIENT.cannot_carry(message(1, encoding="binary"))
    assert CLIENT.cannot_carry(message(1)) is None


def test_pushes_become_receipts_and_replies() -> None:
    [receipt] = CLIENT.read_push(
        "up", Push(b'{"description":"AbsentSubscriber","messageid":"77","timeTaken":"2s"}'), 5
    )
    assert isinstance(receipt, Receipt)
    assert (receipt.connector, receipt.carrier_key, receipt.state, receipt.reason) == (
        "up",
        "77",
        State.UNDELIVERABLE,
        Reason.ABSENT_SUBSCRIBER,
    )
    assert (
        CLIENT.read_push("up", Push(b'{"description":"SentToNetwork","messageid":"77"}'), 5) == []
    )
    [reply] = CLIENT.read_push(
        "up",
        Push(b'{"messageid":"9","mobile":"254712345678","shortcode":"22345","message":"STOP"}'),
        5,
    )
    assert reply == InboundMessage("up", "254712345678", "22345", "STOP", "gsm7", 5)
    with pytest.raises(PushError):
        CLIENT.read_push("up", Push(b"[1]"), 5)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(
    status=st.sampled_from([200, 201, 400, 429, 500, 502]),
    body=json_values | st.binary(max_size=64),
)
def test_no_answer_makes_the_client_raise(status: int, body: object) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    outcomes = CLIENT.outcomes("up", CLIENT.request(MESSAGES, "k"), UpstreamAnswer(status, raw))
    assert [o.message_id for o in outcomes] == [1, 2, 3]


@given(body=json_values | st.binary(max_size=64))
def test_no_push_makes_the_client_raise_anything_but_push_error(body: object) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    try:
        items = CLIENT.read_push("up", Push(raw), 5)
    except PushError:
        return
    assert all(isinstance(i, Receipt | InboundMessage) for i in items)


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("https://k@host/api", "expected DIALECT"),
        ("nosuch+https://u:k@host/api", "unknown dialect"),
        ("advanta+https://u:k@host/api?batch=1001", "at most 1,000"),
        ("advanta+https://u:k@host/api?in_flight=0", "in_flight"),
        ("advanta+https://u:k@host/api?speed=3", "unknown option"),
        ("advanta+https://u:k@host:99999/api", "port"),
    ],
)
def test_bad_urls_are_refused_with_the_reason(url: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        HttpSettings.from_url(url)
