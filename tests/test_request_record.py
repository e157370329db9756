"""The request record: no secret survives, and it never passes its bound."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from smsgate.request_record import LIMIT, REDACTED, TRUNCATED, RequestSeen, request_record

_SECRETS = ["apikey", "password", "Authorization", "signature", "sig", "api_key", "token"]


@given(
    secret_name=st.sampled_from(_SECRETS),
    secret=st.text(min_size=12, max_size=40).map(lambda s: "S3CR3T" + s),
    others=st.dictionaries(
        st.sampled_from(["mobile", "message", "shortcode", "batch_data", "smslist"]),
        st.one_of(
            st.text(max_size=5000),
            st.lists(st.text(max_size=50), max_size=50),
            st.integers(),
        ),
    ),
)
def test_secrets_are_gone_and_the_record_is_bounded(
    secret_name: str, secret: str, others: dict[str, Any]
) -> None:
    record = request_record(
        "eapi", RequestSeen("send_sms", "203.0.113.9", {**others, secret_name: secret}), 5
    )
    assert len(record) <= LIMIT
    assert secret not in record
    if not record.endswith(TRUNCATED):
        assert orjson.loads(record)["params"][secret_name] == REDACTED


def test_a_long_value_is_cut_with_a_mark() -> None:
    record = request_record("eapi", RequestSeen("send_batch", "", {"batch_data": "a" * 100_000}), 0)
    assert len(record) == LIMIT and record.endswith(TRUNCATED)
