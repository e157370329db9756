"""SMPP time fields: both forms read, everything else refused, never a crash."""

from __future__ import annotations

import calendar
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsgate.smpp.smpp_time import format_smpp_time, parse_smpp_time

NOW = 1_780_000_000_000


def test_absolute_forms_and_their_offsets() -> None:
    utc = calendar.timegm(datetime(2026, 12, 2, 14, 30, 0).timetuple()) * 1000
    assert parse_smpp_time("261202143000000+", NOW) == utc
    assert parse_smpp_time("261202173000012+", NOW) == utc  # UTC+3 (12 quarter hours)
    assert parse_smpp_time("261202113000012-", NOW) == utc
    assert parse_smpp_time("261202143000500+", NOW) == utc + 500


def test_relative_form_and_empty() -> None:
    assert parse_smpp_time("", NOW) is None
    assert (
        parse_smpp_time("000001020304000R", NOW) == NOW + ((1 * 24 + 2) * 60 + 3) * 60_000 + 4_000
    )
    assert parse_smpp_time("010200000000000R", NOW) == NOW + (365 + 60) * 86_400_000


@pytest.mark.parametrize(
    "field",
    [
        "2612021430000",
        "261302143000000+",
        "261202143000049+",
        "261202143000000X",
        "000000250000000R",
        "000000000000100R",
        "26120214300000+0",
        "２61202143000000+",
    ],
)
def test_malformed_fields_are_refused(field: str) -> None:
    with pytest.raises(ValueError):
        parse_smpp_time(field, NOW)


@given(st.text(max_size=20))
def test_any_text_is_an_instant_none_or_a_value_error(field: str) -> None:
    try:
        result = parse_smpp_time(field, NOW)
    except ValueError:
        return
    assert result is None if field == "" else isinstance(result, int)


@given(
    st.integers(min_value=946_684_800_000, max_value=4_102_444_799_900).map(lambda t: t - t % 100)
)
def test_format_and_parse_round_trip(instant: int) -> None:
    assert parse_smpp_time(format_smpp_time(instant), NOW) == instant


@given(
    st.integers(0, 99),
    st.integers(0, 11),
    st.integers(0, 30),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
)
def test_relative_fields_add_to_now(yy: int, mo: int, dd: int, hh: int, mi: int, ss: int) -> None:
    field = f"{yy:02d}{mo:02d}{dd:02d}{hh:02d}{mi:02d}{ss:02d}000R"
    expected = (((yy * 365 + mo * 30 + dd) * 24 + hh) * 60 + mi) * 60_000 + ss * 1000
    assert parse_smpp_time(field, NOW) == NOW + expected
