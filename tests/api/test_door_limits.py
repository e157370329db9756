"""The limits every dialect enforces at the door (README "Limits and abuse"):
each reproduction of a request that used to fail after storing, or with an
internal error, answered with the dialect's own code and nothing written."""

from __future__ import annotations

import base64
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
import requests
from tests.support.fuzzing import changed_tables, snapshot, tracebacks
from tests.support.server import GatewayServer, TestAccount

SEND_SMS = "/eapi/submission/send_sms/2/2.0"
SEND_BATCH = "/eapi/submission/send_batch/1/1.0"
GET_REPORT = "/eapi/status_reports/get_report/2/2.0"
GET_INBOX = "/eapi/reception/get_inbox/1/1.1"
TELESIGN = "/v1/verify/bulk_sms"
MOBILE = "254712345678"


def advanta(server: GatewayServer, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = requests.post(f"{server.base_url}/api/services/{endpoint}", json=body, timeout=30)
    assert reply.status_code == 200, reply.text
    result: dict[str, Any] = reply.json()
    return result


def eapi(server: GatewayServer, path: str, fields: dict[str, str]) -> str:
    reply = requests.post(server.base_url + path, data=fields, timeout=30)
    assert reply.status_code == 200, reply.text
    return reply.content.decode("iso-8859-1")


def telesign(server: GatewayServer, account: TestAccount, form: dict[str, str]) -> Any:
    return requests.post(
        server.base_url + TELESIGN,
        data=form,
        auth=(account.customer_id, account.telesign_key),
        timeout=30,
    )


def nested(depth: int) -> Any:
    value: Any = "ref"
    for _ in range(depth):
        value = [value]
    return value


@pytest.fixture
def account(api_gateway: GatewayServer) -> TestAccount:
    return api_gateway.create_account(credit="1000", senders=("SMSGATE",))


def refused_without_a_write(
    server: GatewayServer, account: TestAccount, send: Callable[[], None]
) -> None:
    before = snapshot(server, account)
    send()
    assert changed_tables(before, snapshot(server, account)) == []


# ------------------------------------------------ a failure reply means nothing happened


@pytest.mark.parametrize("endpoint", ["sendsms", "sendotp", "sendbulk"])
def test_a_deeply_nested_clientsmsid_is_refused_before_anything_is_stored(
    api_gateway: GatewayServer,
    account: TestAccount,
    endpoint: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    entry = {
        **account.creds,
        "mobile": MOBILE,
        "message": "hi",
        "shortcode": "SMSGATE",
        "clientsmsid": nested(300),
    }
    body = {"count": 1, "smslist": [entry]} if endpoint == "sendbulk" else entry

    def send() -> None:
        reply = advanta(api_gateway, endpoint, body)
        assert reply["response-code"] == 1009, reply
        assert "nested deeper than 8" in reply["response-description"]

    refused_without_a_write(api_gateway, account, send)
    assert tracebacks(caplog) == []


# ------------------------------------------------------------------ control characters


def test_nul_and_control_characters_are_refused_in_every_dialect(
    api_gateway: GatewayServer, account: TestAccount, caplog: pytest.LogCaptureFixture
) -> None:
    send = {**account.creds, "mobile": MOBILE, "message": "hi", "shortcode": "SMSGATE"}
    for field, value in [
        ("message", "x\u0000"),
        ("clientsmsid", "a\u0000b"),
        ("partnerID", account.partner_id + "\u0000"),
        ("message", "bell\u0007"),
    ]:
        refused_without_a_write(
            api_gateway,
            account,
            partial(_advanta_refused, api_gateway, {**send, field: value}),
        )
    base = {**account.eapi_creds, "msisdn": MOBILE, "message": "hi"}
    for fields in [
        {**base, "message": "x\u0000"},
        {**base, "username": account.eapi_creds["username"] + "\u0000"},
        {**base, "source_id": "\u0000"},
        {**base, "message": "0000", "dca": "16bit"},  # a NUL once decoded
    ]:
        refused_without_a_write(
            api_gateway,
            account,
            partial(_eapi_refused, api_gateway, fields),
        )
    refused_without_a_write(
        api_gateway,
        account,
        lambda: _assert_eapi_refused(
            eapi(
                api_gateway,
                SEND_BATCH,
                {**account.eapi_creds, "batch_data": "msisdn,message\n254712345678,x\u0000\n"},
            )
        ),
    )
    for form in [
        {"recipients": MOBILE, "template": "code \u0000"},
        {"recipients": MOBILE + ":s\u0000", "template": "code"},
        {"recipients": MOBILE, "template": "code", "session_id": "\u0001"},
    ]:
        refused_without_a_write(
            api_gateway,
            account,
            partial(_telesign_refused, api_gateway, account, form),
        )
    assert tracebacks(caplog) == []


def _advanta_refused(server: GatewayServer, body: dict[str, Any]) -> None:
    _assert_advanta_code(advanta(server, "sendsms", body), 1009, "control character")


def _eapi_refused(server: GatewayServer, fields: dict[str, str]) -> None:
    _assert_eapi_refused(eapi(server, SEND_SMS, fields))


def _telesign_refused(server: GatewayServer, account: TestAccount, form: dict[str, str]) -> None:
    _assert_telesign_invalid(telesign(server, account, form))


def _assert_advanta_code(reply: dict[str, Any], code: int, words: str) -> None:
    assert reply["response-code"] == code, reply
    assert words in reply["response-description"], reply


def _assert_eapi_refused(reply: str) -> None:
    assert reply.startswith("24|data validation failed: "), reply
    assert reply.count("|") == 2, reply


def _assert_telesign_invalid(reply: requests.Response) -> None:
    assert reply.status_code == 400, reply.text
    [error] = reply.json()["errors"]
    assert error["code"] == -10001 and "control character" in error["description"]


def test_nul_sends_do_not_fail_another_tenants_concurrent_sends(
    api_gateway: GatewayServer, account: TestAccount
) -> None:
    """The PostgreSQL reproduction: NUL in a shared group commit failed 175 of
    another tenant's 200 concurrent valid sends with 1007."""
    other = api_gateway.create_account(credit="1000")
    poison = {**account.creds, "mobile": MOBILE, "message": "x\u0000", "shortcode": "SMSGATE"}

    def valid(i: int) -> int:
        body = {**other.creds, "mobile": f"2547123{i:05d}", "message": "ok", "shortcode": "SMSGATE"}
        return int(advanta(api_gateway, "sendsms", body)["responses"][0]["response-code"])

    def bad(_: int) -> int:
        return int(advanta(api_gateway, "sendsms", poison)["response-code"])

    with ThreadPoolExecutor(16) as pool:
        poisoned = pool.map(bad, range(100))
        codes = list(pool.map(valid, range(100)))
    assert set(poisoned) == {1009}
    assert codes == [200] * 100


# ------------------------------------------------------------------------- ids


# Over 4,300 digits int() refuses to read; over 1,000 the field is too long anyway.
BAD_IDS = ["²", "1²", "9" * 5_000, "9" * 30, str(2**63), "-1", "1.0", " "]


@pytest.mark.parametrize(
    "raw",
    BAD_IDS,
    ids=["superscript", "digit+superscript", "5000", "30", "2^63", "negative", "decimal", "blank"],
)
def test_ids_must_be_ascii_digits_in_range(
    api_gateway: GatewayServer, account: TestAccount, raw: str, caplog: pytest.LogCaptureFixture
) -> None:
    reply = advanta(api_gateway, "getdlr", {**account.creds, "messageID": raw})
    assert reply["response-code"] == (1009 if len(raw) > 1_000 else 4093), reply
    report = eapi(api_gateway, GET_REPORT, {**account.eapi_creds, "batch_id": raw})
    assert report.startswith("24|data validation failed: batch_id"), report
    inbox = eapi(api_gateway, GET_INBOX, {**account.eapi_creds, "last_retrieved_id": raw})
    assert inbox.startswith(
        "24|data validation failed: last_retrieved_id" if raw.strip() else "0|records to follow|0"
    ), inbox
    stop_dup = {**account.eapi_creds, "msisdn": MOBILE, "message": "hi", "stop_dup_id": raw}
    refused_without_a_write(
        api_gateway,
        account,
        lambda: (
            None if not raw.strip() else _assert_eapi_refused(eapi(api_gateway, SEND_SMS, stop_dup))
        ),
    )
    reference = (raw * 32)[:32]
    status = requests.get(
        f"{api_gateway.base_url}{TELESIGN}/{reference}",
        auth=(account.customer_id, account.telesign_key),
        timeout=30,
    )
    assert status.status_code == 404, status.text
    assert tracebacks(caplog) == []


def test_a_reference_id_beyond_the_id_range_is_unknown(
    api_gateway: GatewayServer, account: TestAccount
) -> None:
    status = requests.get(
        f"{api_gateway.base_url}{TELESIGN}/{'F' * 32}",
        auth=(account.customer_id, account.telesign_key),
        timeout=30,
    )
    assert status.status_code == 404 and status.json()["errors"][0]["code"] == -10001


# ------------------------------------------------------------------- credentials


def test_a_non_ascii_bm5_apikey_is_invalid_credentials(
    api_gateway: GatewayServer, account: TestAccount, caplog: pytest.LogCaptureFixture
) -> None:
    for apikey in ["ключ", base64.b64encode(b"\xff\xfe").decode()]:
        reply = advanta(
            api_gateway,
            "getbalance",
            {"partnerID": account.partner_id, "apikey": apikey, "pass_type": "bm5"},
        )
        assert reply["response-code"] == 1006, reply
    assert tracebacks(caplog) == []


# ----------------------------------------------------------------------- times


def test_an_impossible_offset_is_refused_and_in_csv_fails_only_its_row(
    api_gateway: GatewayServer, account: TestAccount, caplog: pytest.LogCaptureFixture
) -> None:
    send = {**account.creds, "mobile": MOBILE, "message": "hi", "shortcode": "SMSGATE"}
    reply = advanta(api_gateway, "sendsms", {**send, "timeToSend": "2030-01-01 10:00+99:99"})
    assert reply["response-code"] == 1009 and "offset" in reply["response-description"]
    single = {**account.eapi_creds, "msisdn": MOBILE, "message": "hi"}
    assert "offset" in eapi(
        api_gateway, SEND_SMS, {**single, "send_time": "2030-01-01 10:00+99:99"}
    )
    batch = (
        "msisdn,message,send_time\n"
        "254712345671,first,\n"
        "254712345672,second,2030-01-01 10:00+99:99\n"
        f"254712345673,third,{datetime.now(UTC).year + 1}-01-01 10:00+03:00\n"
    )
    reply_line = eapi(api_gateway, SEND_BATCH, {**account.eapi_creds, "batch_data": batch})
    assert reply_line.startswith("0|IN_PROGRESS|"), reply_line
    batch_id = int(reply_line.rsplit("|", 1)[1])
    report = eapi(api_gateway, GET_REPORT, {**account.eapi_creds, "batch_id": str(batch_id)})
    numbers = sorted(line.split("|")[0] for line in report.split("\n")[2:] if line)
    assert numbers == ["254712345671", "254712345673"]
    assert tracebacks(caplog) == []


# ----------------------------------------------------------------- parts per message


def test_parts_per_message_default_to_ten_and_follow_the_account_option(
    api_gateway: GatewayServer, account: TestAccount
) -> None:
    ten, eleven = "a" * (153 * 10), "a" * (153 * 11)
    send = {**account.creds, "mobile": MOBILE, "shortcode": "SMSGATE"}
    assert (
        advanta(api_gateway, "sendsms", {**send, "message": ten})["responses"][0]["response-code"]
        == 200
    )
    refused_without_a_write(
        api_gateway,
        account,
        lambda: _assert_per_recipient_too_long(
            advanta(api_gateway, "sendsms", {**send, "message": eleven})
        ),
    )
    single = {**account.eapi_creds, "msisdn": MOBILE, "message": eleven}
    assert "at most 10 parts" in eapi(api_gateway, SEND_SMS, single)
    refused = telesign(api_gateway, account, {"recipients": MOBILE, "template": eleven})
    assert refused.status_code == 400 and "at most 10 parts" in refused.text
    generous = api_gateway.create_account(credit="1000", options={"max_parts": 11})
    body = {**generous.creds, "mobile": MOBILE, "shortcode": "SMSGATE", "message": eleven}
    assert advanta(api_gateway, "sendsms", body)["responses"][0]["response-code"] == 200


def _assert_per_recipient_too_long(reply: dict[str, Any]) -> None:
    [entry] = reply["responses"]
    assert entry["response-code"] == 1009 and "at most 10 parts" in entry["response-description"]


def test_a_message_no_concatenation_header_can_number_is_refused(
    api_gateway: GatewayServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The reproduction: 39,168 characters (256 parts) were accepted and charged,
    then failed the connector's whole claimed batch."""
    most = api_gateway.create_account(credit="1000", options={"max_parts": 255})
    body = {**most.creds, "mobile": MOBILE, "shortcode": "SMSGATE", "message": "x" * 39_168}
    refused_without_a_write(
        api_gateway,
        most,
        lambda: _assert_advanta_code(
            advanta(api_gateway, "sendsms", body)["responses"][0], 1009, "at most 255 parts"
        ),
    )
    assert tracebacks(caplog) == []


# ----------------------------------------------------------------- field lengths


def test_over_long_fields_are_refused(api_gateway: GatewayServer, account: TestAccount) -> None:
    send = {**account.creds, "mobile": MOBILE, "message": "hi", "shortcode": "SMSGATE"}
    reply = advanta(api_gateway, "sendsms", {**send, "clientsmsid": "r" * 1_001})
    _assert_advanta_code(reply, 1009, "clientsmsid is longer than 1000 characters")
    many = ",".join(f"2547123{i:05d}" for i in range(1_000))  # a recipient list is not cut
    assert len(advanta(api_gateway, "sendsms", {**send, "mobile": many})["responses"]) == 1_000
    fields = {**account.eapi_creds, "msisdn": MOBILE, "message": "hi", "sender": "s" * 1_001}
    assert "sender is longer than 1000" in eapi(api_gateway, SEND_SMS, fields)


# ------------------------------------------------------------------ EAPI test mode


def test_test_always_fail_records_nothing(api_gateway: GatewayServer, account: TestAccount) -> None:
    fields = {**account.eapi_creds, "msisdn": MOBILE, "message": "hi", "test_always_fail": "1"}
    refused_without_a_write(
        api_gateway,
        account,
        lambda: _assert_eapi_reply(eapi(api_gateway, SEND_SMS, fields), "22|"),
    )
    invalid = {**fields, "msisdn": "12ab"}
    assert eapi(api_gateway, SEND_SMS, invalid).startswith("24|data validation failed")


def _assert_eapi_reply(reply: str, start: str) -> None:
    assert reply.startswith(start) and reply.count("|") == 2, reply


# ------------------------------------------------------------------------- CSV


def test_a_stray_quote_in_send_batch_costs_only_its_row(
    api_gateway: GatewayServer, account: TestAccount
) -> None:
    rich = api_gateway.create_account(credit="100000")
    rows = [f"2547{i:08d},row {i}" for i in range(2_001)]
    rows[10] = '254700000010,"it is 5 tall'
    batch_data = "\ufeffmsisdn,message\n" + "\n".join(rows) + "\n"
    reply = eapi(api_gateway, SEND_BATCH, {**rich.eapi_creds, "batch_data": batch_data})
    assert reply.startswith("0|IN_PROGRESS|"), reply
    stored = snapshot(api_gateway, rich)["messages"]
    assert len(stored) == 2_000


# ------------------------------------------------------------------ reply shapes


def test_sendbulk_answers_mobile_and_messageid_as_strings(
    api_gateway: GatewayServer, account: TestAccount
) -> None:
    entry = {**account.creds, "mobile": MOBILE, "message": "hi", "shortcode": "SMSGATE"}
    [reply] = advanta(api_gateway, "sendbulk", {"count": 1, "smslist": [entry]})["responses"]
    assert reply["mobile"] == MOBILE and isinstance(reply["messageid"], str)
    [single] = advanta(api_gateway, "sendsms", entry)["responses"]
    assert single["mobile"] == int(MOBILE) and isinstance(single["messageid"], int)


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_wrong_methods_get_each_dialects_envelope(api_gateway: GatewayServer, method: str) -> None:
    base = api_gateway.base_url
    reply = requests.request(method, base + "/api/services/getdlr", timeout=30)
    assert reply.status_code == 200 and reply.json()["response-code"] == 1010
    reply = requests.request(method, base + SEND_SMS, timeout=30)
    assert reply.status_code == 200
    assert reply.text == f"24|data validation failed: {method} is not supported|"
    reply = requests.request(method, base + TELESIGN, timeout=30)
    assert reply.status_code == 405 and reply.json()["errors"][0]["code"] == -10001
    reply = requests.get(base + "/eapi/no/such/endpoint", timeout=30)
    assert reply.status_code == 200 and reply.text.startswith("24|")
    reply = requests.get(base + TELESIGN + "/a%2Fb/c", timeout=30)
    assert reply.status_code == 401 and reply.json()["errors"]  # the envelope, not plain text
    # A line break in the path defeats the catch-all routes; the envelope still answers.
    reply = requests.get(base + TELESIGN + "/%0A0", timeout=30)
    assert reply.json()["errors"][0]["code"] == -10001
    reply = requests.get(base + "/eapi/sub%0Amission/send_sms/2/2.0", timeout=30)
    assert reply.status_code == 200 and reply.text.startswith("24|data validation failed: ")
    reply = requests.get(base + "/api/services/send%0Asms", timeout=30)
    assert reply.status_code == 200 and reply.json()["response-code"] == 1009


def test_a_url_too_long_to_parse_gets_each_dialects_envelope(api_gateway: GatewayServer) -> None:
    long_query = "?x=" + "a" * 100_000
    base = api_gateway.base_url
    reply = requests.get(base + "/api/services/sendsms" + long_query, timeout=30)
    assert reply.status_code == 200 and reply.json()["response-code"] == 1009
    reply = requests.get(base + SEND_SMS + long_query, timeout=30)
    assert reply.status_code == 200 and reply.text.startswith("24|data validation failed: ")
    reply = requests.post(base + TELESIGN + long_query, timeout=30)
    assert reply.status_code == 400 and reply.json()["errors"][0]["code"] == -10001
