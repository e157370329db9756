"""Log lines: masked numbers, levels, the JSON format."""

from __future__ import annotations

import io
import logging

import orjson
from hypothesis import given
from hypothesis import strategies as st

from smsgate.observe.logs import configure_logging, mask_number, mask_numbers


def test_mask_number_keeps_enough_to_tell_numbers_apart() -> None:
    assert mask_number("254712345678") == "2547*****678"
    assert mask_number("+254712345678") == "+2547*****678"
    assert mask_number("0712345678") == "0712***678"


@given(st.from_regex(r"\+?[0-9]{8,15}", fullmatch=True), st.text(alphabet=" ,:;=|()'\"/"))
def test_no_number_survives_masking(number: str, around: str) -> None:
    masked = mask_numbers(f"to {number}{around} and {number}")
    assert number.lstrip("+") not in masked
    assert masked.count("*") >= 2


def test_short_numbers_stay_readable() -> None:
    assert mask_numbers("message 1234567 of batch 12 on port 2775") == (
        "message 1234567 of batch 12 on port 2775"
    )


def _capture(level: str, fmt: str) -> io.StringIO:
    stream = io.StringIO()
    configure_logging(level, fmt, stream=stream)
    return stream


def test_the_filter_masks_what_a_line_forgot_including_tracebacks() -> None:
    stream = _capture("INFO", "text")
    log = logging.getLogger("smsgate.test")
    log.info("sent to %s", "254712345678")
    log.debug("not shown at INFO")
    try:
        raise ValueError("bad number 254733000111")
    except ValueError:
        log.exception("failed for %s", "0712345678")
    text = stream.getvalue()
    assert "2547*****678" in text and "254712345678" not in text
    assert "254733000111" not in text and "0712345678" not in text
    assert "not shown" not in text
    assert text.count("Traceback") == 1


def test_json_lines_carry_the_event_fields() -> None:
    stream = _capture("DEBUG", "json")
    logging.getLogger("smsgate.test").info(
        "refused %s", "254712345678", extra={"event": "request_refused", "code": "1003"}
    )
    entry = orjson.loads(stream.getvalue().splitlines()[-1])
    assert entry["level"] == "INFO" and entry["logger"] == "smsgate.test"
    assert entry["message"] == "refused 2547*****678"
    assert entry["event"] == "request_refused" and entry["code"] == "1003"


def test_httpx_request_lines_are_quiet_at_info() -> None:
    stream = _capture("INFO", "text")
    logging.getLogger("httpx").info('HTTP Request: GET http://x/?msisdn=254712345678 "200 OK"')
    assert stream.getvalue() == ""
