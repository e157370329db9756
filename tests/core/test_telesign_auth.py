"""Telesign request authentication, checked against the official SDK's own signing code.

The SDK is the client customers run unchanged, so its output (not a
re-implementation of the spec) is the reference for what must verify.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from telesign.rest import RestClient
from telesign.util import verify_telesign_callback_signature

from smsgate.core.telesign_auth import (
    AuthCode,
    AuthFailure,
    Credentials,
    new_api_key,
    new_customer_id,
    parse_authorization,
    sign_callback,
    string_to_sign,
    verify_tsa,
)

PATH = "/v1/verify/bulk_sms"
CUSTOMER_ID = "FFFFFFFF-EEEE-DDDD-1234-AB1234567890"
API_KEY = base64.b64encode(bytes(range(64))).decode()
OTHER_KEY = base64.b64encode(bytes(range(1, 65))).decode()
NOW = datetime(2022, 6, 23, 19, 3, 32, tzinfo=UTC)
DATE = format_datetime(NOW, usegmt=True)
FIELDS = {
    "recipients": "381606878232:255E3E34AB,254700000001",
    "template": "Your code is 1234 — ünïcode & more=yes",
    "ucid": "OTHR",
}
BODY: str = RestClient._encode_params(FIELDS)

printable_token = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=16, max_size=64
)


def sdk_headers(
    *,
    body: str = BODY,
    date: str = DATE,
    nonce: str | None = None,
    auth_method: str | None = None,
    api_key: str = API_KEY,
) -> dict[str, str]:
    headers: dict[str, str] = RestClient.generate_telesign_headers(
        CUSTOMER_ID,
        api_key,
        "POST",
        PATH,
        body,
        date_rfc2616=date,
        nonce=nonce,
        auth_method=auth_method,
    )
    return headers


def verify(
    headers: dict[str, str],
    *,
    body: bytes = BODY.encode(),
    api_key: str = API_KEY,
    now: datetime = NOW,
) -> str:
    authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
    credentials = parse_authorization(authorization)
    return verify_tsa(
        credentials,
        api_key_b64=api_key,
        method="POST",
        path=PATH,
        headers=headers,
        body=body,
        now=now,
    )


def failure_code(excinfo: pytest.ExceptionInfo[AuthFailure]) -> int:
    return excinfo.value.code


# --- what the SDK really sends over the wire -------------------------------------------


@dataclass
class Captured:
    path: str
    headers: dict[str, str]
    body: bytes


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[Captured]]]:
    """A real HTTP server, so headers and body are checked as the SDK puts them on the wire."""
    captured: list[Captured] = []

    class Recorder(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            captured.append(Captured(self.path, dict(self.headers.items()), body))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", captured
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_sdk_digest_request_as_received_verifies(
    recorder: tuple[str, list[Captured]],
) -> None:
    url, captured = recorder
    client = RestClient(CUSTOMER_ID, API_KEY, rest_endpoint=url)
    assert client.post(PATH, **FIELDS).status_code == 200
    (request,) = captured
    assert request.path == PATH
    credentials = parse_authorization(request.headers["Authorization"])
    assert credentials.scheme == "TSA"
    assert credentials.customer_id == CUSTOMER_ID
    nonce = verify_tsa(
        credentials,
        api_key_b64=API_KEY,
        method="POST",
        path=request.path,
        headers=request.headers,
        body=request.body,
        now=datetime.now(UTC),
    )
    assert nonce == request.headers["x-ts-nonce"]
    assert len(nonce) == 36


def test_sdk_basic_request_as_received_verifies(recorder: tuple[str, list[Captured]]) -> None:
    url, captured = recorder
    client = RestClient(CUSTOMER_ID, API_KEY, rest_endpoint=url, auth_method="Basic")
    assert client.post(PATH, **FIELDS).status_code == 200
    (request,) = captured
    credentials = parse_authorization(request.headers["Authorization"])
    assert credentials == Credentials("Basic", CUSTOMER_ID, API_KEY)


# --- success paths with generated headers ----------------------------------------------


def test_sdk_digest_headers_verify_and_return_the_nonce() -> None:
    headers = sdk_headers(nonce="0f8fad5b-d9cb-469f-a165-70867728950e")
    assert verify(headers) == "0f8fad5b-d9cb-469f-a165-70867728950e"


def test_header_names_are_matched_case_insensitively() -> None:
    headers = sdk_headers()
    assert verify({name.lower(): value for name, value in headers.items()})
    assert verify({name.upper(): value for name, value in headers.items()})


def test_date_within_tolerance_either_side_verifies() -> None:
    headers = sdk_headers()
    verify(headers, now=NOW + timedelta(minutes=14, seconds=59))
    verify(headers, now=NOW - timedelta(minutes=15))


def test_auth_method_is_matched_case_insensitively_and_signed_as_sent() -> None:
    headers = sdk_headers()
    headers["x-ts-auth-method"] = "hmac-sha256"
    with pytest.raises(AuthFailure) as excinfo:
        verify(headers)
    assert failure_code(excinfo) == AuthCode.INVALID_SIGNATURE
    message = string_to_sign(
        method="POST",
        content_type=headers["Content-Type"],
        date=DATE,
        auth_method="hmac-sha256",
        nonce=headers["x-ts-nonce"],
        body=BODY,
        path=PATH,
    )
    headers["Authorization"] = f"TSA {CUSTOMER_ID}:{_sign(message)}"
    verify(headers)


def test_sdk_basic_headers_parse_and_verify() -> None:
    credentials = parse_authorization(sdk_headers(auth_method="Basic")["Authorization"])
    assert (credentials.scheme, credentials.secret) == ("Basic", API_KEY)


def test_scheme_names_are_case_insensitive() -> None:
    signature = sdk_headers()["Authorization"].split(" ", 1)[1]
    assert parse_authorization(f"tsa {signature}").scheme == "TSA"
    basic = sdk_headers(auth_method="Basic")["Authorization"].split(" ", 1)[1]
    assert parse_authorization(f"BASIC {basic}").scheme == "Basic"


def test_credentials_repr_hides_the_secret() -> None:
    credentials = parse_authorization(sdk_headers(auth_method="Basic")["Authorization"])
    assert API_KEY not in repr(credentials)


# --- the string to sign ----------------------------------------------------------------


def test_string_to_sign_layout_matches_the_spec() -> None:
    assert string_to_sign(
        method="POST",
        content_type="application/x-www-form-urlencoded",
        date="",
        auth_method="HMAC-SHA256",
        nonce="abcdefgh-1234-5678",
        body="a=1&b=2",
        path=PATH,
        ts_date="Thu, 23 Jun 2022 19:03:32 GMT",
    ) == (
        "POST\n"
        "application/x-www-form-urlencoded\n"
        "\n"
        "x-ts-auth-method:HMAC-SHA256\n"
        "x-ts-date:Thu, 23 Jun 2022 19:03:32 GMT\n"
        "x-ts-nonce:abcdefgh-1234-5678\n"
        "a=1&b=2\n"
        "/v1/verify/bulk_sms"
    )


@pytest.mark.parametrize(("content_type", "body"), [("", "a=1"), ("text/plain", "")])
def test_string_to_sign_omits_the_body_line_without_content_type_and_body(
    content_type: str, body: str
) -> None:
    message = string_to_sign(
        method="GET",
        content_type=content_type,
        date=DATE,
        auth_method="HMAC-SHA256",
        nonce="n" * 16,
        body=body,
        path=PATH,
    )
    assert message == (
        f"GET\n{content_type}\n{DATE}\nx-ts-auth-method:HMAC-SHA256\nx-ts-nonce:{'n' * 16}\n{PATH}"
    )


def hand_signed_headers(*, date: str | None, ts_date: str) -> dict[str, str]:
    """Headers signed by hand with an ``x-ts-date`` (the SDK never sends one)."""
    nonce = "0f8fad5b-d9cb-469f-a165-70867728950e"
    message = string_to_sign(
        method="POST",
        content_type="application/x-www-form-urlencoded",
        date=date or "",
        auth_method="HMAC-SHA256",
        nonce=nonce,
        body=BODY,
        path=PATH,
        ts_date=ts_date,
    )
    headers = {
        "Authorization": f"TSA {CUSTOMER_ID}:{_sign(message)}",
        "Content-Type": "application/x-www-form-urlencoded",
        "x-ts-date": ts_date,
        "x-ts-auth-method": "HMAC-SHA256",
        "x-ts-nonce": nonce,
    }
    if date is not None:
        headers["Date"] = date
    return headers


def test_x_ts_date_is_signed_and_wins_over_a_stale_date() -> None:
    stale = format_datetime(NOW - timedelta(days=1), usegmt=True)
    headers = hand_signed_headers(date=stale, ts_date=DATE)
    assert verify(headers) == headers["x-ts-nonce"]
    del headers["x-ts-date"]
    with pytest.raises(AuthFailure) as excinfo:
        verify(headers)
    assert failure_code(excinfo) == AuthCode.DATE_OUT_OF_TOLERANCE


def test_x_ts_date_alone_with_empty_date_line_verifies() -> None:
    headers = hand_signed_headers(date=None, ts_date=DATE)
    assert verify(headers) == headers["x-ts-nonce"]


# --- each failure code -----------------------------------------------------------------


def test_tampered_body_is_an_invalid_signature() -> None:
    with pytest.raises(AuthFailure) as excinfo:
        verify(sdk_headers(), body=BODY.replace("OTHR", "UNKN").encode())
    assert failure_code(excinfo) == AuthCode.INVALID_SIGNATURE
    assert excinfo.value.description == "Invalid Signature."


def test_non_utf8_body_is_an_invalid_signature() -> None:
    with pytest.raises(AuthFailure) as excinfo:
        verify(sdk_headers(), body=BODY.encode() + b"\xff")
    assert failure_code(excinfo) == AuthCode.INVALID_SIGNATURE


def test_wrong_key_is_an_invalid_signature() -> None:
    with pytest.raises(AuthFailure) as excinfo:
        verify(sdk_headers(api_key=OTHER_KEY))
    assert failure_code(excinfo) == AuthCode.INVALID_SIGNATURE


def test_other_path_or_method_is_an_invalid_signature() -> None:
    headers = sdk_headers()
    credentials = parse_authorization(headers["Authorization"])
    for method, path in [("PUT", PATH), ("POST", PATH + "/x"), ("POST", PATH + "?a=1")]:
        with pytest.raises(AuthFailure) as excinfo:
            verify_tsa(
                credentials,
                api_key_b64=API_KEY,
                method=method,
                path=path,
                headers=headers,
                body=BODY.encode(),
                now=NOW,
            )
        assert failure_code(excinfo) == AuthCode.INVALID_SIGNATURE


@pytest.mark.parametrize("skew", [timedelta(minutes=15, seconds=1), -timedelta(hours=2)])
def test_stale_or_future_date_is_outside_tolerance(skew: timedelta) -> None:
    with pytest.raises(AuthFailure) as excinfo:
        verify(sdk_headers(), now=NOW + skew)
    assert failure_code(excinfo) == AuthCode.DATE_OUT_OF_TOLERANCE


def test_tolerance_is_configurable() -> None:
    headers = sdk_headers()
    with pytest.raises(AuthFailure) as excinfo:
        verify_tsa(
            parse_authorization(headers["Authorization"]),
            api_key_b64=API_KEY,
            method="POST",
            path=PATH,
            headers=headers,
            body=BODY.encode(),
            now=NOW + timedelta(minutes=2),
            tolerance=timedelta(minutes=1),
        )
    assert failure_code(excinfo) == AuthCode.DATE_OUT_OF_TOLERANCE


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_missing_date(blank: str | None) -> None:
    headers = sdk_headers()
    del headers["Date"]
    if blank is not None:
        headers["Date"] = blank
    with pytest.raises(AuthFailure) as excinfo:
        verify(headers)
    assert failure_code(excinfo) == AuthCode.MISSING_DATE


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "2022-06-23T19:03:32Z",
        "Thu, 31 Feb 2022 19:03:32 GMT",
        "Thu, 23 Jun 2022 19:03:32 +9999",
        "Thu, 23 Jun 99999999999 19:03:32 GMT",
    ],
)
def test_unparseable_date(text: str) -> None:
    with pytest.raises(AuthFailure) as excinfo:
        verify(sdk_headers(date=text))
    assert failure_code(excinfo) == AuthCode.INVALID_DATE


@pytest.mark.parametrize("method", [None, "HMAC-SHA1", "Basic", ""])
def test_wrong_auth_method(method: str | None) -> None:
    headers = sdk_headers()
    del headers["x-ts-auth-method"]
    if method is not None:
        headers["x-ts-auth-method"] = method
    with pytest.raises(AuthFailure) as excinfo:
        verify(headers)
    assert failure_code(excinfo) == AuthCode.INVALID_AUTH_METHOD


@pytest.mark.parametrize("nonce", ["short", "x" * 15, "x" * 65])
def test_bad_nonce_length(nonce: str) -> None:
    with pytest.raises(AuthFailure) as excinfo:
        verify(sdk_headers(nonce=nonce))
    assert failure_code(excinfo) == AuthCode.INVALID_NONCE


def test_missing_nonce() -> None:
    headers = sdk_headers()
    del headers["x-ts-nonce"]
    with pytest.raises(AuthFailure) as excinfo:
        verify(headers)
    assert failure_code(excinfo) == AuthCode.INVALID_NONCE


@pytest.mark.parametrize("nonce", ["x" * 16, "x" * 64])
def test_nonce_length_bounds_are_inclusive(nonce: str) -> None:
    assert verify(sdk_headers(nonce=nonce)) == nonce


@pytest.mark.parametrize("header", [None, "", "  "])
def test_missing_authorization(header: str | None) -> None:
    with pytest.raises(AuthFailure) as excinfo:
        parse_authorization(header)
    assert failure_code(excinfo) == AuthCode.MISSING_AUTHORIZATION


@pytest.mark.parametrize(
    "header",
    [
        "Bearer abc:def",
        "TSA",
        "TSA nocolon",
        f"TSA {CUSTOMER_ID}:",
        "TSA :signature",
        "Basic",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"nocolon").decode(),
        "Basic " + base64.b64encode(b":key").decode(),
        "Basic " + base64.b64encode(b"id:").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:key").decode(),
        "Basic ünïcode",
    ],
)
def test_malformed_authorization(header: str) -> None:
    with pytest.raises(AuthFailure) as excinfo:
        parse_authorization(header)
    assert failure_code(excinfo) == AuthCode.MALFORMED_AUTHORIZATION


def test_the_tsa_verifier_refuses_basic_credentials() -> None:
    basic = parse_authorization(sdk_headers(auth_method="Basic")["Authorization"])
    with pytest.raises(ValueError):
        verify_tsa(
            basic,
            api_key_b64=API_KEY,
            method="POST",
            path=PATH,
            headers=sdk_headers(),
            body=BODY.encode(),
            now=NOW,
        )


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        verify(sdk_headers(), now=NOW.replace(tzinfo=None))


def test_failure_descriptions_default_from_the_code() -> None:
    failure = AuthFailure(AuthCode.NONCE_REUSED)
    assert failure.code == -30012
    assert failure.description == "Nonce has already been used."
    assert AuthFailure(-30000, "custom").description == "custom"


# --- properties ------------------------------------------------------------------------


@given(st.text())
def test_parse_authorization_only_ever_raises_auth_failure(text: str) -> None:
    for header in (text, f"Basic {text}", f"TSA {text}", f"basic {_b64(text)}"):
        with contextlib.suppress(AuthFailure):
            parse_authorization(header)


@given(st.text())
def test_any_date_text_only_ever_raises_auth_failure(text: str) -> None:
    with contextlib.suppress(AuthFailure):
        verify(sdk_headers(date=text))


fields_strategy = st.dictionaries(st.text(min_size=1), st.text(), max_size=5)
dates_strategy = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=200)
@given(
    fields=fields_strategy,
    nonce=printable_token,
    sent=dates_strategy,
    skew=st.timedeltas(min_value=-timedelta(minutes=15), max_value=timedelta(minutes=15)),
)
def test_sdk_signatures_always_verify(
    fields: dict[str, str], nonce: str, sent: datetime, skew: timedelta
) -> None:
    body = RestClient._encode_params(fields)
    sent = sent.replace(microsecond=0)
    headers = sdk_headers(body=body, date=format_datetime(sent, usegmt=True), nonce=nonce)
    assert verify(headers, body=body.encode(), now=sent + skew) == nonce


@settings(max_examples=200)
@given(
    fields=fields_strategy.filter(bool),
    nonce=printable_token,
    data=st.data(),
)
def test_any_single_byte_change_of_the_body_fails(
    fields: dict[str, str], nonce: str, data: st.DataObject
) -> None:
    body = RestClient._encode_params(fields).encode()
    headers = sdk_headers(body=body.decode(), nonce=nonce)
    index = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    new_byte = data.draw(st.integers(min_value=0, max_value=255).filter(lambda b: b != body[index]))
    tampered = body[:index] + bytes([new_byte]) + body[index + 1 :]
    with pytest.raises(AuthFailure) as excinfo:
        verify(headers, body=tampered)
    assert failure_code(excinfo) == AuthCode.INVALID_SIGNATURE


# --- callbacks and issued credentials --------------------------------------------------


@given(st.binary())
def test_sign_callback_round_trip(body: bytes) -> None:
    header = sign_callback(body, customer_id=CUSTOMER_ID, api_key_b64=API_KEY)
    scheme, _, rest = header.partition(" ")
    customer_id, _, signature = rest.partition(":")
    assert (scheme, customer_id) == ("TSA", CUSTOMER_ID)
    expected = hmac.new(base64.b64decode(API_KEY), body, hashlib.sha256).digest()
    assert base64.b64decode(signature) == expected


def test_sign_callback_passes_the_sdk_callback_check() -> None:
    body = '{"status":{"code":200,"description":"Delivered to handset"},"errors":[]}'
    header = sign_callback(body.encode(), customer_id=CUSTOMER_ID, api_key_b64=API_KEY)
    signature = header.split(":", 1)[1]
    assert verify_telesign_callback_signature(API_KEY, signature, body)
    assert not verify_telesign_callback_signature(OTHER_KEY, signature, body)


def test_new_customer_ids_look_like_telesign_ones() -> None:
    ids = {new_customer_id() for _ in range(50)}
    assert len(ids) == 50
    for customer_id in ids:
        assert re.fullmatch(
            r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}", customer_id
        )


def test_new_api_keys_are_64_random_bytes_in_base64() -> None:
    keys = {new_api_key() for _ in range(50)}
    assert len(keys) == 50
    for key in keys:
        assert len(base64.b64decode(key, validate=True)) == 64


def test_issued_credentials_work_with_the_sdk() -> None:
    customer_id, api_key = new_customer_id(), new_api_key()
    headers = RestClient.generate_telesign_headers(
        customer_id, api_key, "POST", PATH, BODY, date_rfc2616=DATE
    )
    credentials = parse_authorization(headers["Authorization"])
    assert credentials.customer_id == customer_id
    verify(headers, api_key=api_key)


def _sign(message: str) -> str:
    digest = hmac.new(base64.b64decode(API_KEY), message.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
