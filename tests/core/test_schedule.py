"""Send-time parsing: the customer's wall clock in the account's zone, or unix time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsgate.core.schedule import (
    InvalidSendTime,
    due_at,
    format_local,
    parse_local,
    parse_send_time,
    parse_unix,
)

NAIROBI = "Africa/Nairobi"  # UTC+3, no DST


def ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2019-09-01 18:00", ms(2019, 9, 1, 15, 0)),
        ("2019-09-01 18:00:30", ms(2019, 9, 1, 15, 0, 30)),
        ("2019-09-01T18:00", ms(2019, 9, 1, 15, 0)),
        ("2019/09/01 18:00", ms(2019, 9, 1, 15, 0)),
        ("2019-09-01", ms(2019, 8, 31, 21, 0)),
        ("2019-09-01 18:00Z", ms(2019, 9, 1, 18, 0)),
        ("2019-09-01T18:00:00+01:00", ms(2019, 9, 1, 17, 0)),
        (" 2019-09-01 18:00 ", ms(2019, 9, 1, 15, 0)),
    ],
)
def test_local_times_use_the_account_zone(raw: str, expected: int) -> None:
    assert parse_send_time(raw, NAIROBI) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1567350000, 1567350000_000),
        ("1567350000", 1567350000_000),
        (1567350000.5, 1567350000_500),
        (1567350000_000, 1567350000_000),  # milliseconds are recognised
    ],
)
def test_unix_timestamps(raw: str | int | float, expected: int) -> None:
    assert parse_send_time(raw, NAIROBI) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "tomorrow",
        "2019-13-01 10:00",
        "2019-02-30",
        "-5",
        "nan",
        "inf",
        "",
        "2019-09-01 25:00",
        "18:00",
    ],
)
def test_nonsense_is_refused(raw: str) -> None:
    with pytest.raises(InvalidSendTime):
        parse_send_time(raw, NAIROBI)


def test_unknown_zone_is_refused() -> None:
    with pytest.raises(InvalidSendTime, match="time zone"):
        parse_local("2019-09-01 18:00", "Mars/Olympus")


def test_due_at_clamps_past_and_refuses_far_future() -> None:
    now = ms(2026, 1, 1)
    assert due_at(None, now) == now
    assert due_at(now - 5000, now) == now
    assert due_at(now + 5000, now) == now + 5000
    assert due_at(now + 730 * 86_400_000, now) == now + 730 * 86_400_000
    with pytest.raises(InvalidSendTime, match="two years"):
        due_at(now + 733 * 86_400_000, now)


def test_format_local_round_trips() -> None:
    stamp = parse_local("2024-11-01 11:15:32", NAIROBI)
    assert format_local(stamp, NAIROBI) == "2024-11-01 11:15:32"


@given(st.text(max_size=40) | st.integers() | st.floats(allow_nan=True))
def test_parser_only_ever_returns_ms_or_refuses(raw: str | int | float) -> None:
    try:
        value = parse_send_time(raw, NAIROBI)
    except InvalidSendTime:
        return
    assert isinstance(value, int) and value >= 0


@given(st.integers(min_value=0, max_value=4_000_000_000))
def test_unix_seconds_round_trip(seconds: int) -> None:
    assert parse_unix(seconds) == seconds * 1000
