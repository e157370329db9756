"""The EAPI client: its send_batch request, what each answer and report push
means, and that nothing a provider sends makes it raise."""

from __future__ import annotations

from urllib.parse import parse_qs

from hypothesis import given
from hypothesis import strategies as st

from smsgate.core.eapi_csv import parse_batch
from smsgate.core.eapi_text import latin1_gsm_to_text
from smsgate.core.states import Reason, State
from smsgate.delivery.connectors.eapi_client import EapiClient
from smsgate.delivery.connectors.http_settings import HttpSettings
from smsgate.delivery.connectors.upstream import Push, PushError, UpstreamAnswer
from smsgate.store.records import OutboundMessage, Receipt, Refused, RetryLater, Submitted

CLIENT = EapiClient(HttpSettings.from_url("eapi+https://user:pw@eapi.example.com/eapi"))


def message(mid: int, body: str = "Δ costs 5€", encoding: str = "gsm7") -> OutboundMessage:
    return OutboundMessage(
        mid, 1, f"+2547123456{mid:02d}", "SHOP", body, encoding, 1, 0, True, 0, None, 1
    )


MESSAGES = (message(1), message(2, 'say "hi",\nthen go'))


def test_the_request_is_a_send_batch_the_dialect_reads_back() -> None:
    request = CLIENT.request(MESSAGES, "ab" * 20)
    assert request.url == "https://eapi.example.com/eapi/submission/send_batch/1/1.0"
    fields = {k: v[0] for k, v in parse_qs(request.content.decode(), encoding="latin-1").items()}
    assert (fields["username"], fields["password"], fields["sender"], fields["dca"]) == (
        "user",
        "pw",
        "SHOP",
        "7bit",
    )
    assert 1 <= int(fields["stop_dup_id"]) <= 2_147_483_647
    assert (
        fields["stop_dup_id"]
        == parse_qs(CLIENT.request(MESSAGES, "ab" * 20).content.decode())["stop_dup_id"][0]
    )
    rows = parse_batch(fields["batch_data"], max_rows=30_000)
    assert [
        (r.msisdn, latin1_gsm_to_text(r.message), r.overrides["source_id"]) for r in rows.rows
    ] == [
        ("254712345601", "Δ costs 5?", "1"),
        ("254712345602", 'say "hi",\nthen go', "2"),
    ]


def test_ucs2_goes_as_16bit_hex() -> None:
    request = CLIENT.request((message(3, "Привет", "ucs2"),), "cd" * 20)
    fields = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
    assert fields["dca"] == "16bit"
    assert "Привет".encode("utf-16-be").hex() in fields["batch_data"]


def test_one_line_decides_the_whole_batch() -> None:
    request = CLIENT.request(MESSAGES, "ab" * 20)
    taken = CLIENT.outcomes("up", request, UpstreamAnswer(200, b"0|IN_PROGRESS|4711"))
    assert [o.parts[0].carrier_key for o in taken if isinstance(o, Submitted)] == [
        "4711:1",
        "4711:2",
    ]
    broke = CLIENT.outcomes("up", request, UpstreamAnswer(200, b"25|insufficient credits|"))
    assert all(isinstance(o, Refused) and o.reason is Reason.UPSTREAM_NO_CREDIT for o in broke)
    busy = CLIENT.outcomes("up", request, UpstreamAnswer(200, b"40|temporarily unavailable|"))
    assert all(isinstance(o, RetryLater) and not o.counts_attempt for o in busy)
    down = CLIENT.outcomes("up", request, UpstreamAnswer(503, b"oops"))
    assert all(isinstance(o, RetryLater) and not o.counts_attempt for o in down)


def test_report_pushes_name_their_message_by_batch_and_source_id() -> None:
    query = {"msisdn": "254712345601", "batch_id": "4711", "status": "51", "source_id": "1"}
    [receipt] = CLIENT.read_push("up", Push(query=query), 9)
    assert isinstance(receipt, Receipt)
    assert (receipt.carrier_key, receipt.handset, receipt.state) == (
        "4711:1",
        "254712345601",
        State.UNDELIVERABLE,
    )
    assert CLIENT.read_push("up", Push(query={**query, "status": "10"}), 9) == []


@given(
    st.dictionaries(
        st.sampled_from(["msisdn", "batch_id", "status", "source_id", "x"]), st.text(max_size=30)
    )
)
def test_no_push_makes_the_client_raise_anything_but_push_error(query: dict[str, str]) -> None:
    try:
        items = CLIENT.read_push("up", Push(query=query), 5)
    except PushError:
        return
    assert all(isinstance(i, Receipt) and len(i.carrier_key) <= 64 for i in items)


@given(st.integers(100, 599), st.binary(max_size=80))
def test_no_answer_makes_the_client_raise(status: int, body: bytes) -> None:
    outcomes = CLIENT.outcomes(
        "up", CLIENT.request(MESSAGES, "ab" * 20), UpstreamAnswer(status, body)
    )
    assert [o.message_id for o in outcomes] == [1, 2]
