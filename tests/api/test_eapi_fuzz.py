"""Property: whatever parameters and CSV a client sends, every EAPI endpoint
answers HTTP 200 with well-formed pipe-delimited text: exactly one line of
three fields for submissions, a known status code, never a 500 or a trace; a
refused request writes nothing, and another tenant sending valid messages
meanwhile gets every one accepted. On both engines; ``SMSGATE_FUZZ_EXAMPLES``
multiplies the example count."""

from __future__ import annotations

import re
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

SUBMISSION_CODES = {"0", "1", "22", "23", "24", "25", "26", "27", "28", "40", "201"}
SUBMISSION_LINE = re.compile(r"(\d+)\|[^|\n]*\|(\d*)")

latin1_text = st.text(st.characters(max_codepoint=0xFF), max_size=40)
parameter_values = st.one_of(
    latin1_text,
    st.sampled_from(["0", "1", "2", "3", "7bit", "8bit", "16bit", "-1", "2147483648", ""]),
    st.integers(min_value=-(2**40), max_value=2**40).map(str),
    st.sampled_from(["2030-01-01 10:00:00", "2020-02-30 25:61:00", "0712345678", "+2547"]),
    # What used to get past the door.
    st.sampled_from(["²", "9" * 5_000, str(2**63), "x\x00", "2027-01-01 10:00+99:99", "0000"]),
)
parameter_names = st.sampled_from(
    [
        "msisdn",
        "message",
        "sender",
        "msg_class",
        "dca",
        "want_report",
        "routing_group",
        "cost_route",
        "source_id",
        "repliable",
        "stop_dup_id",
        "send_time",
        "send_time_unixtime",
        "scheduling_description",
        "test_always_succeed",
        "test_always_fail",
        "allow_concat_text_sms",
        "concat_text_sms_max_parts",
        "batch_id",
        "optional_fields",
        "last_retrieved_id",
    ]
)
csv_cell = st.one_of(
    latin1_text,
    st.sampled_from(['"', '\\"', "\\\n", ",", "\r\n", '""', "254712345678", "0", "+99:99"]),
)
csv_columns = st.lists(
    st.sampled_from(
        ["msisdn", "message", "sender", "dca", "msg_class", "want_report", "send_time", "x", ""]
    ),
    min_size=1,
    max_size=5,
)


@st.composite
def batch_data(draw: st.DrawFn) -> str:
    header = draw(csv_columns)
    rows = draw(st.lists(st.lists(csv_cell, min_size=0, max_size=6), max_size=6))
    lines = [",".join(header)] + [",".join(row) for row in rows]
    bom = draw(st.sampled_from(["", "\u00ef\u00bb\u00bf"]))  # UTF-8's, read as ISO-8859-1
    return bom + draw(st.sampled_from(["\n", "\r\n"])).join(lines)


ENDPOINTS = {
    "send_sms": "/eapi/submission/send_sms/2/2.0",
    "send_batch": "/eapi/submission/send_batch/1/1.0",
    "get_report": "/eapi/status_reports/get_report/2/2.0",
    "get_credits": "/eapi/user/get_credits/1/1.1",
    "get_inbox": "/eapi/reception/get_inbox/1/1.1",
}


def check(endpoint: str, body: str) -> bool:
    """The reply is well formed; True if nothing may have been stored."""
    first, *rest = body.split("\n")
    if endpoint.startswith("send_"):
        match = SUBMISSION_LINE.fullmatch(body)
        assert match, body
        assert match.group(1) in SUBMISSION_CODES, body
        return match.group(1) not in ("0", "1")
    code = first.split("|")[0]
    assert code.isdigit(), body
    if code != "0":
        assert SUBMISSION_LINE.fullmatch(body), body  # errors are one three-field line
    elif endpoint == "get_credits":
        assert re.fullmatch(r"0\|\d+\.\d\d", body), body
    elif endpoint == "get_inbox":
        count = int(first.rsplit("|", 1)[1])
        assert len([line for line in rest if line]) == count, body
    else:
        assert first == "0|Results to follow" and rest[0] == "", body
    return True  # queries never write


def test_every_request_gets_a_well_formed_reply(
    api_gateway: GatewayServer,
    api_processes: ApiProcesses,
    caplog: pytest.LogCaptureFixture,
) -> None:
    account = api_gateway.create_account(credit="1000000", senders=())
    creds = account.eapi_creds

    @settings(max_examples=examples(100), deadline=None)
    @given(data=st.data())
    def send_anything(data: Any) -> None:
        endpoint = data.draw(st.sampled_from(sorted(ENDPOINTS)))
        fields: dict[str, str] = data.draw(st.dictionaries(parameter_names, parameter_values))
        if data.draw(st.booleans()):
            fields = {**creds, **fields}
        if endpoint == "send_batch" and data.draw(st.booleans()):
            fields["batch_data"] = data.draw(batch_data())
        encoded = "&".join(f"{k}={quote(v, encoding='iso-8859-1')}" for k, v in fields.items())
        if data.draw(st.integers(0, 9)) == 0:  # not form encoding at all
            encoded = data.draw(st.binary(max_size=100)).decode("latin-1")
        before = snapshot(api_gateway, account)
        base = data.draw(st.sampled_from(api_processes.bases))
        if data.draw(st.booleans()):
            response = requests.post(
                base + ENDPOINTS[endpoint],
                data=encoded.encode("latin-1"),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                timeout=30,
            )
        else:
            response = requests.get(f"{base}{ENDPOINTS[endpoint]}?{encoded}", timeout=30)
        assert response.status_code == 200, response.text
        if check(endpoint, response.content.decode("iso-8859-1")):
            assert changed_tables(before, snapshot(api_gateway, account)) == [], fields

    with WellBehavedTenant(api_gateway, api_processes.bases) as tenant:
        send_anything()
    tenant.assert_unaffected()
    assert tracebacks(caplog) == [] and api_processes.tracebacks() == []
