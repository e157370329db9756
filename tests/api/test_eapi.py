"""The EAPI dialect over a real socket: ISO-8859-1 in, pipe-delimited lines out."""

from __future__ import annotations

from urllib.parse import quote

import pytest
import requests
from tests.support.receiver import CallbackReceiver
from tests.support.server import GatewayServer, TestAccount

from smsgate.core.states import FINAL_STATES

SEND_SMS = "/eapi/submission/send_sms/2/2.0"
GET_REPORT = "/eapi/status_reports/get_report/2/2.0"
GET_CREDITS = "/eapi/user/get_credits/1/1.1"


def call(server: GatewayServer, path: str, fields: dict[str, str], *, post: bool = True) -> str:
    """Send fields as ISO-8859-1, the way EAPI clients encode them."""
    encoded = "&".join(f"{k}={quote(v, encoding='iso-8859-1')}" for k, v in fields.items())
    if post:
        response = requests.post(
            server.base_url + path,
            data=encoded,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=10,
        )
    else:
        response = requests.get(f"{server.base_url}{path}?{encoded}", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.content.decode("iso-8859-1")


def report(
    server: GatewayServer, account: TestAccount, batch_id: str, **extra: str
) -> list[list[str]]:
    reply = call(server, GET_REPORT, {**account.eapi_creds, "batch_id": batch_id, **extra})
    head, _, body = reply.partition("\n\n")
    assert head == "0|Results to follow"
    return [line.split("|") for line in body.splitlines()]


@pytest.fixture
def account(sqlite_gateway: GatewayServer) -> TestAccount:
    return sqlite_gateway.create_account(credit="10")


def test_send_sms_delivers_and_reports(gateway: GatewayServer, receiver: CallbackReceiver) -> None:
    account = gateway.create_account(credit="10", callback_url=receiver.url)
    reply = call(
        gateway,
        SEND_SMS,
        {
            **account.eapi_creds,
            "msisdn": "254712345678,254712345000",
            "message": "\xd0elta \xd0 Caf\xe9",
            "source_id": "camp-1",
        },
        post=False,
    )
    code, status, batch_id = reply.split("|")
    assert (code, status) == ("0", "IN_PROGRESS") and batch_id.isdigit()

    def finished() -> bool:
        return all(
            line[1] != "0" and line[1] != "10" for line in report(gateway, account, batch_id)
        )

    gateway.wait_until(finished, what="final report codes")
    lines = report(gateway, account, batch_id, optional_fields="body,source_id,credits")
    assert lines == [
        ["254712345678", "11", "\xd0elta \xd0 Caf\xe9", "camp-1", "1.00"],
        ["254712345000", "51", "\xd0elta \xd0 Caf\xe9", "camp-1", "1.00"],
    ]
    only = report(gateway, account, batch_id, msisdn="254712345000")
    assert [line[:2] for line in only] == [["254712345000", "51"]]
    assert call(gateway, GET_CREDITS, account.eapi_creds) == "0|8.00"
    pushed = receiver.wait_for(2)
    statuses = {r.path.split("status=")[1].split("&")[0] for r in pushed}
    assert statuses == {"11", "51"}
    assert all(r.method == "GET" and f"batch_id={batch_id}" in r.path for r in pushed)


def test_scheduled_send_answers_status_1(
    sqlite_gateway: GatewayServer, account: TestAccount
) -> None:
    later = str(sqlite_gateway.rt.store.clock() // 1000 + 3600)
    reply = call(
        sqlite_gateway,
        SEND_SMS,
        {
            **account.eapi_creds,
            "msisdn": "254712345678",
            "message": "later",
            "send_time_unixtime": later,
        },
    )
    code, status, batch_id = reply.split("|")
    assert (code, status) == ("1", "SCHEDULED")
    assert report(sqlite_gateway, account, batch_id) == [["254712345678", "0"]]
    past = call(
        sqlite_gateway,
        SEND_SMS,
        {
            **account.eapi_creds,
            "msisdn": "254712345678",
            "message": "now",
            "send_time": "2020-01-01 10:00:00",
        },
    )
    assert past.startswith("0|IN_PROGRESS|")
    too_far = call(
        sqlite_gateway,
        SEND_SMS,
        {
            **account.eapi_creds,
            "msisdn": "254712345678",
            "message": "x",
            "send_time": "2099-01-01 10:00:00",
        },
    )
    assert too_far.startswith("24|")


def test_stop_dup_id_returns_the_first_reply(
    sqlite_gateway: GatewayServer, account: TestAccount
) -> None:
    fields = {
        **account.eapi_creds,
        "msisdn": "254712345678",
        "message": "once",
        "stop_dup_id": "4711",
    }
    first = call(sqlite_gateway, SEND_SMS, fields)
    assert first.startswith("0|IN_PROGRESS|")
    assert call(sqlite_gateway, SEND_SMS, fields) == first
    assert call(sqlite_gateway, GET_CREDITS, account.eapi_creds) == "0|9.00"
    failed = {**fields, "stop_dup_id": "4712", "msisdn": "nonsense"}
    assert call(sqlite_gateway, SEND_SMS, failed).startswith("24|")
    # A failed submission is not remembered: the same id may then succeed.
    assert call(sqlite_gateway, SEND_SMS, {**failed, "msisdn": "254712345678"}).startswith("0|")


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"username": "nobody", "password": "x"}, "23"),
        ({"password": "x"}, "23"),
        ({"msisdn": ""}, "24"),
        ({"message": ""}, "24"),
        ({"dca": "9bit"}, "24"),
        ({"dca": "16bit", "message": "zz"}, "24"),
        ({"want_report": "maybe"}, "24"),
        ({"stop_dup_id": "0"}, "24"),
        ({"send_time": "soon"}, "24"),
    ],
)
def test_submission_errors(
    sqlite_gateway: GatewayServer, account: TestAccount, fields: dict[str, str], code: str
) -> None:
    base = {**account.eapi_creds, "msisdn": "254712345678", "message": "hi"}
    reply = call(sqlite_gateway, SEND_SMS, {**base, **fields})
    assert reply.split("|")[0] == code
    assert reply.count("|") == 2


def test_25_insufficient_credits(sqlite_gateway: GatewayServer) -> None:
    poor = sqlite_gateway.create_account(credit="1")
    reply = call(
        sqlite_gateway,
        SEND_SMS,
        {**poor.eapi_creds, "msisdn": "254712345678,254712345679", "message": "hi"},
    )
    assert reply == "25|insufficient credits|"


def test_16bit_messages(sqlite_gateway: GatewayServer, account: TestAccount) -> None:
    hex_text = "Привет".encode("utf-16-be").hex()
    reply = call(
        sqlite_gateway,
        SEND_SMS,
        {**account.eapi_creds, "msisdn": "254712345678", "message": hex_text, "dca": "16bit"},
    )
    assert reply.startswith("0|IN_PROGRESS|")


def test_reports_are_scoped_to_the_account(
    sqlite_gateway: GatewayServer, account: TestAccount
) -> None:
    other = sqlite_gateway.create_account()
    batch_id = call(
        sqlite_gateway, SEND_SMS, {**other.eapi_creds, "msisdn": "254712345678", "message": "mine"}
    ).split("|")[2]
    reply = call(sqlite_gateway, GET_REPORT, {**account.eapi_creds, "batch_id": batch_id})
    assert reply.startswith("24|")


SEND_BATCH = "/eapi/submission/send_batch/1/1.0"


def csv_batch(rows: int, *, start: int = 0) -> str:
    lines = ["msisdn,message,source_id"]
    lines += [f'"25471{start + i:06d}9","Hi \\"{i}\\"",s{i}' for i in range(rows)]
    return "\n".join(lines)


def test_send_batch_rows_overrides_and_skipped_lines(sqlite_gateway: GatewayServer) -> None:
    account = sqlite_gateway.create_account(senders=())  # any valid sender id
    batch = "\n".join(
        [
            "msisdn,message,sender,source_id",
            '"254712000001","First",,a',
            '"254712000002","Second",OTHER,b',
            '"254712000003","too","many","fields","here"',
            '"not-a-number","Skipped by validation",,c',
            '"254712000004","Multi\\',
            'line",,d',
        ]
    )
    reply = call(
        sqlite_gateway, SEND_BATCH, {**account.eapi_creds, "batch_data": batch, "sender": "SHOP"}
    )
    code, status, batch_id = reply.split("|")
    assert (code, status) == ("0", "IN_PROGRESS")
    lines = report(
        sqlite_gateway, account, batch_id, optional_fields="body,origin_address,source_id"
    )
    assert [line[0] for line in lines] == ["254712000001", "254712000002", "254712000004"]
    assert [line[3] for line in lines] == ["SHOP", "OTHER", "SHOP"]
    assert lines[2][2] == "Multi\\nline" and [line[4] for line in lines] == ["a", "b", "d"]


def test_send_batch_size_limit(sqlite_gateway: GatewayServer) -> None:
    rich = sqlite_gateway.create_account(credit="100000")
    too_big = call(sqlite_gateway, SEND_BATCH, {**rich.eapi_creds, "batch_data": csv_batch(30_001)})
    assert too_big == "201|maximum batch size exceeded|"
    assert call(sqlite_gateway, GET_CREDITS, rich.eapi_creds) == "0|100000.00"
    full = call(sqlite_gateway, SEND_BATCH, {**rich.eapi_creds, "batch_data": csv_batch(30_000)})
    code, status, batch_id = full.split("|")
    assert (code, status) == ("0", "IN_PROGRESS")
    assert len(report(sqlite_gateway, rich, batch_id)) == 30_000
    assert call(sqlite_gateway, GET_CREDITS, rich.eapi_creds) == "0|70000.00"


@pytest.mark.parametrize("batch_data", ["", "number,text\n1,2", "msisdn,message\nnot,valid"])
def test_send_batch_unusable(
    sqlite_gateway: GatewayServer, account: TestAccount, batch_data: str
) -> None:
    reply = call(sqlite_gateway, SEND_BATCH, {**account.eapi_creds, "batch_data": batch_data})
    assert reply.startswith("24|data validation failed") and reply.count("|") == 2


SANDBOX_CODES = {"011": "11", "000": "51", "001": "51", "002": "55", "003": "53", "004": "52"}


def test_30000_row_batch_is_delivered_and_reported(gateway: GatewayServer) -> None:
    """Acceptance: a full batch is accepted, delivered through the sandbox and
    reported line by line with the sandbox's outcome for each number."""
    suffixes = list(SANDBOX_CODES)
    numbers = [f"2547{i:05d}{suffixes[i % len(suffixes)]}" for i in range(30_000)]
    rich = gateway.create_account(credit="100000")
    batch = "msisdn,message\n" + "\n".join(f"{n},Hello {i}" for i, n in enumerate(numbers))
    reply = call(gateway, SEND_BATCH, {**rich.eapi_creds, "batch_data": batch})
    code, status, batch_id = reply.split("|")
    assert (code, status) == ("0", "IN_PROGRESS")

    def final() -> bool:  # asked of the store: a 30,000-line report a poll would slow it down
        states = gateway.call(gateway.rt.store.count_by_state(rich.id))
        return sum(n for state, n in states.items() if state in FINAL_STATES) == len(numbers)

    gateway.wait_until(final, timeout=120, what="30,000 final states")
    lines = report(gateway, rich, batch_id)
    assert not any(line[1] in ("0", "10") for line in lines)
    assert [line[0] for line in lines] == numbers
    assert all(line[1] == SANDBOX_CODES[line[0][-3:]] for line in lines)
    # 30,000 charged; the 5,000 the carrier refused outright (ending 004) refunded.
    assert call(gateway, GET_CREDITS, rich.eapi_creds) == "0|75000.00"


def test_get_report_of_an_id_beyond_bigint(
    sqlite_gateway: GatewayServer, account: TestAccount
) -> None:
    reply = call(sqlite_gateway, GET_REPORT, {**account.eapi_creds, "batch_id": "9" * 30})
    assert reply == "24|data validation failed: batch_id must be ASCII digits, below 2^63|"
