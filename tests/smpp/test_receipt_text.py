"""Delivery receipt texts as carriers actually send them, and id correlation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsgate.core.states import Reason, State
from smsgate.smpp.receipt_text import (
    STAT_TO_STATE,
    ReceiptText,
    format_receipt_text,
    parse_receipt_text,
    receipt_date_ms,
)


def ms(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp() * 1000)


def test_the_conventional_form() -> None:
    parsed = parse_receipt_text(
        "id:0123456789 sub:001 dlvrd:001 submit date:2211221530 done date:2211221531"
        " stat:DELIVRD err:000 text:Hello"
    )
    assert parsed == ReceiptText(
        message_id="0123456789",
        stat="DELIVRD",
        err="000",
        submit_date="2211221530",
        done_date="2211221531",
        submitted=1,
        delivered=1,
        text="Hello",
    )


@pytest.mark.parametrize(
    ("text", "message_id", "stat", "fields"),
    [
        (
            "ID:1A2B3C SUB:001 DLVRD:000 SUBMIT DATE:2211221530 DONE DATE:2211221545"
            " STAT:UNDELIV ERR:001 TEXT:Hi there",
            "1A2B3C",
            "UNDELIV",
            {"err": "001", "done_date": "2211221545", "delivered": 0, "text": "Hi there"},
        ),
        (
            "id:abc123 sub:001 dlvrd:001 submit date:221122153001 done date:221122153159"
            " stat:DELIVRD err:000",
            "abc123",
            "DELIVRD",
            {"submit_date": "221122153001", "done_date": "221122153159", "text": ""},
        ),
        (
            "stat:EXPIRED   err:000   id:  77  done date:2211230000",
            "77",
            "EXPIRED",
            {"done_date": "2211230000", "submitted": None, "submit_date": ""},
        ),
        (
            "id:5 submit_date:2211221530 done_date:2211221531 stat:delivrd",
            "5",
            "DELIVRD",
            {"submit_date": "2211221530", "done_date": "2211221531", "err": ""},
        ),
        (
            "id:00000000000000000042 stat:REJECTD err:0B3 text:id:9 stat:DELIVRD",
            "00000000000000000042",
            "REJECTD",
            {"err": "0B3", "text": "id:9 stat:DELIVRD"},
        ),
        (
            "id:42 text:Your code is 1234 stat:DELIVRD err:000",
            "42",
            "DELIVRD",
            {"err": "000", "text": "Your code is 1234"},
        ),
        ("id:7 sub:x dlvrd:99999999999 stat:ACCEPTD", "7", "ACCEPTD", {"delivered": None}),
        ("id: stat:UNKNOWN", "", "UNKNOWN", {}),
        ("\tid:X1\r\nstat:DELETED\n", "X1", "DELETED", {}),
    ],
)
def test_real_world_variants(
    text: str, message_id: str, stat: str, fields: dict[str, object]
) -> None:
    parsed = parse_receipt_text(text)
    assert parsed is not None
    assert (parsed.message_id, parsed.stat) == (message_id, stat)
    for name, value in fields.items():
        assert getattr(parsed, name) == value, name


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "stat:DELIVRD err:000",
        "id:123 sub:001 dlvrd:001",
        "msgid:123 stat:DELIVRD",  # "id:" only counts as a key on its own
        "id:123 status:DELIVRD",
    ],
)
def test_no_id_or_no_stat_is_no_receipt(text: str) -> None:
    assert parse_receipt_text(text) is None


@given(st.text())
@settings(max_examples=1000)
def test_never_raises_on_any_text(text: str) -> None:
    parsed = parse_receipt_text(text)
    assert parsed is None or isinstance(parsed, ReceiptText)


_WORDS = st.sampled_from(
    ["id:", "sub:", "dlvrd:", "submit date:", "done date:", "stat:", "err:", "text:", "ID :", " "]
)


@given(st.lists(st.one_of(_WORDS, st.text(max_size=12)), max_size=20))
@settings(max_examples=1000)
def test_never_raises_on_key_soup(pieces: list[str]) -> None:
    parse_receipt_text(" ".join(pieces))


@given(
    message_id=st.text("0123456789abcdefABCDEF-_", min_size=1, max_size=65),
    stat=st.sampled_from(["DELIVRD", "EXPIRED", "UNDELIV", "REJECTD", "ACCEPTD", "UNKNOWN"]),
    err=st.text("0123456789", min_size=3, max_size=3),
    submit_ms=st.integers(ms(2000, 1, 1), ms(2098, 12, 31)),
    delay_ms=st.integers(0, 10**9),
    text=st.text(max_size=40),
)
def test_format_then_parse(
    message_id: str, stat: str, err: str, submit_ms: int, delay_ms: int, text: str
) -> None:
    done_ms = submit_ms + delay_ms
    formatted = format_receipt_text(
        message_id=message_id, stat=stat, err=err, submit_ms=submit_ms, done_ms=done_ms, text=text
    )
    parsed = parse_receipt_text(formatted)
    assert parsed is not None
    assert parsed.message_id == message_id
    assert parsed.stat == stat
    assert parsed.err == err
    assert parsed.submitted == 1
    assert parsed.delivered == (1 if stat == "DELIVRD" else 0)
    assert parsed.text == text[:20].strip()
    assert receipt_date_ms(parsed.submit_date) == submit_ms // 60_000 * 60_000
    assert receipt_date_ms(parsed.done_date) == done_ms // 60_000 * 60_000


def test_format_is_the_conventional_form() -> None:
    text = format_receipt_text(
        message_id="0A1B",
        stat="DELIVRD",
        submit_ms=ms(2022, 11, 22, 15, 30, 59),
        done_ms=ms(2022, 11, 22, 15, 31),
        text="Your verification code is 123456",
    )
    assert text == (
        "id:0A1B sub:001 dlvrd:001 submit date:2211221530 done date:2211221531"
        " stat:DELIVRD err:000 text:Your verification co"
    )
    failed = format_receipt_text(message_id="1", stat="UNDELIV", err="001", submit_ms=0, done_ms=0)
    assert " dlvrd:000 " in failed
    assert failed.endswith("stat:UNDELIV err:001 text:")


def test_receipt_dates() -> None:
    assert receipt_date_ms("2211221530") == ms(2022, 11, 22, 15, 30)
    assert receipt_date_ms("221122153045") == ms(2022, 11, 22, 15, 30, 45)
    for bad in ("", "22112215", "2213221530", "22112215301", "abcdefghij", "２２１１２２１５３０"):
        assert receipt_date_ms(bad) is None


def test_stat_to_state() -> None:
    assert STAT_TO_STATE["DELIVRD"] == (State.DELIVERED, Reason.NONE)
    assert STAT_TO_STATE["EXPIRED"] == (State.EXPIRED, Reason.VALIDITY_EXPIRED)
    assert STAT_TO_STATE["UNDELIV"] == (State.UNDELIVERABLE, Reason.UNKNOWN)
    assert STAT_TO_STATE["REJECTD"] == (State.REJECTED, Reason.CARRIER_REJECTED)
    assert STAT_TO_STATE["DELETED"] == (State.FAILED, Reason.UNKNOWN)
    assert STAT_TO_STATE["UNKNOWN"] == (State.FAILED, Reason.UNKNOWN)
    assert "ACCEPTD" not in STAT_TO_STATE
    assert "ENROUTE" not in STAT_TO_STATE
    assert STAT_TO_STATE["DELIVRD"][0].value == "delivered"
