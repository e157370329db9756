"""Reading carrier ids the one way a connection declares, and comparing handsets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsgate.core.carrier_ids import KEY_WIDTH, IdFormat, carrier_key, handsets_match


@pytest.mark.parametrize(
    ("raw", "id_format", "key"),
    [
        ("0000012345", IdFormat.DECIMAL, "12345"),
        ("12345", IdFormat.DECIMAL, "12345"),
        ("1f3a", IdFormat.HEX, "7994"),
        ("00001F3A", IdFormat.HEX, "7994"),
        ("0", IdFormat.DECIMAL, "0"),
        ("Ab-12", IdFormat.STRING, "ab-12"),
        ("00012", IdFormat.STRING, "00012"),  # a string keeps its zeros
        (" 42 ", IdFormat.DECIMAL, "42"),
        ("1f3a", IdFormat.DECIMAL, "1f3a"),  # not a decimal number: kept as written
        ("²", IdFormat.DECIMAL, "²"),
        ("", IdFormat.HEX, ""),
    ],
)
def test_an_id_is_read_as_declared(raw: str, id_format: IdFormat, key: str) -> None:
    assert carrier_key(raw, id_format) == key


def test_hex_20_and_decimal_20_are_different_messages() -> None:
    """The misattribution guessing caused: hex 20 is 32, decimal 20 is hex 14."""
    assert carrier_key("20", IdFormat.HEX) != carrier_key("20", IdFormat.DECIMAL)
    assert carrier_key("20", IdFormat.HEX) == carrier_key("32", IdFormat.DECIMAL)
    assert carrier_key("14", IdFormat.HEX) == carrier_key("20", IdFormat.DECIMAL)


@given(st.integers(min_value=0, max_value=2**200), st.integers(min_value=0, max_value=30))
def test_one_number_meets_itself_in_any_spelling(number: int, padding: int) -> None:
    decimal = "0" * padding + str(number)
    lower_hex, upper_hex = format(number, "x"), "0" * padding + format(number, "X")
    keys = {
        carrier_key(decimal, IdFormat.DECIMAL),
        carrier_key(lower_hex, IdFormat.HEX),
        carrier_key(upper_hex, IdFormat.HEX),
    }
    if len(decimal) <= KEY_WIDTH and len(upper_hex) <= KEY_WIDTH:
        assert keys == {str(number)}


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=0, max_value=10**12))
def test_different_numbers_never_meet(first: int, second: int) -> None:
    if first != second:
        assert carrier_key(str(first), IdFormat.DECIMAL) != carrier_key(
            format(second, "x"), IdFormat.HEX
        )


@given(st.text(max_size=300), st.sampled_from(list(IdFormat)))
def test_any_id_gives_a_storable_key_without_raising(raw: str, id_format: IdFormat) -> None:
    key = carrier_key(raw, id_format)
    assert len(key) <= KEY_WIDTH
    assert carrier_key(raw, id_format) == key


def test_a_huge_number_stays_cheap() -> None:
    assert len(carrier_key("9" * 5000, IdFormat.DECIMAL)) == KEY_WIDTH


@pytest.mark.parametrize(
    ("receipt_address", "recipient", "same"),
    [
        ("254712345678", "+254712345678", True),
        ("+254712345678", "+254712345678", True),
        ("0712345678", "+254712345678", True),  # national spelling
        ("", "+254712345678", True),  # no address: no check
        ("SHOP", "+254712345678", True),
        ("254712345679", "+254712345678", False),
        ("2345678", "+254712345678", True),
        ("345678", "+254712345678", False),  # too short to name a subscriber
    ],
)
def test_handsets_match(receipt_address: str, recipient: str, same: bool) -> None:
    assert handsets_match(receipt_address, recipient) is same
