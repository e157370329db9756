"""Encoding choice and segment counting: the numbers customers are billed by."""

from __future__ import annotations

import itertools
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsgate.core.encoding import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    GSM7_MULTI_SEPTETS,
    GSM7_SINGLE_SEPTETS,
    UCS2_MULTI_UNITS,
    UCS2_SINGLE_UNITS,
    Encoding,
    Segmentation,
    decode_gsm7,
    encode_gsm7,
    gsm7_units,
    is_gsm7,
    segment,
    split_parts,
)

# --- the tables, checked against Unicode character names (3GPP TS 23.038 §6.2.1) ---------

_L = "LATIN SMALL LETTER "
_C = "LATIN CAPITAL LETTER "
_G = "GREEK CAPITAL LETTER "
EXPECTED_BASIC_NAMES: dict[int, str] = {
    0x00: "COMMERCIAL AT",
    0x01: "POUND SIGN",
    0x02: "DOLLAR SIGN",
    0x03: "YEN SIGN",
    0x04: _L + "E WITH GRAVE",
    0x05: _L + "E WITH ACUTE",
    0x06: _L + "U WITH GRAVE",
    0x07: _L + "I WITH GRAVE",
    0x08: _L + "O WITH GRAVE",
    0x09: _C + "C WITH CEDILLA",
    0x0B: _C + "O WITH STROKE",
    0x0C: _L + "O WITH STROKE",
    0x0E: _C + "A WITH RING ABOVE",
    0x0F: _L + "A WITH RING ABOVE",
    0x10: _G + "DELTA",
    0x11: "LOW LINE",
    0x12: _G + "PHI",
    0x13: _G + "GAMMA",
    0x14: _G + "LAMDA",
    0x15: _G + "OMEGA",
    0x16: _G + "PI",
    0x17: _G + "PSI",
    0x18: _G + "SIGMA",
    0x19: _G + "THETA",
    0x1A: _G + "XI",
    0x1C: _C + "AE",
    0x1D: _L + "AE",
    0x1E: _L + "SHARP S",
    0x1F: _C + "E WITH ACUTE",
    0x24: "CURRENCY SIGN",
    0x40: "INVERTED EXCLAMATION MARK",
    0x5B: _C + "A WITH DIAERESIS",
    0x5C: _C + "O WITH DIAERESIS",
    0x5D: _C + "N WITH TILDE",
    0x5E: _C + "U WITH DIAERESIS",
    0x5F: "SECTION SIGN",
    0x60: "INVERTED QUESTION MARK",
    0x7B: _L + "A WITH DIAERESIS",
    0x7C: _L + "O WITH DIAERESIS",
    0x7D: _L + "N WITH TILDE",
    0x7E: _L + "U WITH DIAERESIS",
    0x7F: _L + "A WITH GRAVE",
}
# Positions not listed above (besides LF, CR and ESC) hold the ASCII character of
# the same code: space, punctuation, digits and letters.
ASCII_SAME_POSITION = (
    set(range(0x20, 0x24))
    | set(range(0x25, 0x40))
    | set(range(0x41, 0x5B))
    | set(range(0x61, 0x7B))
)

GSM_CHARS = sorted(set(GSM7_BASIC.replace("\x1b", "")) | set(GSM7_EXTENSION))
gsm_char = st.sampled_from(GSM_CHARS)
emoji = st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF)
# Mostly GSM with some extension characters, plus any encodable Unicode (astral
# included, lone surrogates not: no real input has them) so both encodings get exercised.
any_char = st.one_of(
    gsm_char, st.sampled_from(list(GSM7_EXTENSION)), st.characters(codec="utf-8"), emoji
)


def sized_text(alphabet: st.SearchStrategy[str], top: int = 480) -> st.SearchStrategy[str]:
    """Texts of a length drawn uniformly, so the multipart boundaries get hit."""
    return st.integers(0, top).flatmap(lambda n: st.text(alphabet, min_size=n, max_size=n))


gsm_texts = sized_text(gsm_char)
any_texts = sized_text(any_char)


def unit_cost(char: str, encoding: Encoding) -> int:
    """Reference cost of one character, written independently of the module."""
    if encoding is Encoding.GSM7:
        return 2 if char in GSM7_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1


def units_as(text: str, encoding: Encoding) -> int:
    return sum(unit_cost(c, encoding) for c in text)


def reference_parts(text: str) -> list[str]:
    """Naive character-by-character greedy packing, as the oracle for the fast code."""
    encoding = Encoding.GSM7 if all(c in GSM_CHARS for c in text) else Encoding.UCS2
    single, multi = (
        (GSM7_SINGLE_SEPTETS, GSM7_MULTI_SEPTETS)
        if encoding is Encoding.GSM7
        else (UCS2_SINGLE_UNITS, UCS2_MULTI_UNITS)
    )
    if units_as(text, encoding) <= single:
        return [text]
    parts, current, used = [], "", 0
    for char in text:
        cost = unit_cost(char, encoding)
        if used + cost > multi:
            parts.append(current)
            current, used = "", 0
        current += char
        used += cost
    parts.append(current)
    return parts


def test_basic_table_matches_23038() -> None:
    assert len(GSM7_BASIC) == 128
    assert len(set(GSM7_BASIC)) == 128
    assert GSM7_BASIC[0x0A] == "\n"
    assert GSM7_BASIC[0x0D] == "\r"
    assert GSM7_BASIC[0x1B] == "\x1b"
    for septet, name in EXPECTED_BASIC_NAMES.items():
        assert unicodedata.name(GSM7_BASIC[septet]) == name, hex(septet)
    for septet in ASCII_SAME_POSITION:
        assert GSM7_BASIC[septet] == chr(septet), hex(septet)
    assert len(EXPECTED_BASIC_NAMES) + len(ASCII_SAME_POSITION) + 3 == 128


def test_greek_capitals_are_greek_code_points() -> None:
    assert [ord(c) for c in GSM7_BASIC[0x10:0x1B] if c != "_"] == [
        0x0394,
        0x03A6,
        0x0393,
        0x039B,
        0x03A9,
        0x03A0,
        0x03A8,
        0x03A3,
        0x0398,
        0x039E,
    ]
    assert GSM7_BASIC[0x09] == "\u00c7"  # capital, not the small ç some tables show


def test_extension_table_matches_23038() -> None:
    assert GSM7_EXTENSION == {
        "\x0c": 0x0A,
        "^": 0x14,
        "{": 0x28,
        "}": 0x29,
        "\\": 0x2F,
        "[": 0x3C,
        "~": 0x3D,
        "]": 0x3E,
        "|": 0x40,
        "\u20ac": 0x65,
    }


# --- examples -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "segments"), [(1, 1), (153, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3)]
)
def test_gsm7_segment_boundaries(length: int, segments: int) -> None:
    assert segment("a" * length) == Segmentation(Encoding.GSM7, length, segments)
    assert len(split_parts("a" * length)) == segments


@pytest.mark.parametrize(
    ("length", "segments"), [(1, 1), (67, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3)]
)
def test_ucs2_segment_boundaries(length: int, segments: int) -> None:
    assert segment("ж" * length) == Segmentation(Encoding.UCS2, length, segments)
    assert len(split_parts("ж" * length)) == segments


def test_euro_costs_two_septets() -> None:
    assert gsm7_units("€") == 2
    assert segment("€") == Segmentation(Encoding.GSM7, 2, 1)
    assert segment("€" * 80) == Segmentation(Encoding.GSM7, 160, 1)
    assert segment("€" * 81).segments == 2
    text = "Price: 5€ [incl. {tax}] ~ a|b \\ ^\f"
    assert gsm7_units(text) == len(text) + 10  # all ten extension characters


def test_escape_pair_is_not_split_across_parts() -> None:
    # Part 1 would end on ESC: the whole € moves to part 2.
    text = "a" * 152 + "€" + "b" * 10
    assert split_parts(text) == ["a" * 152, "€" + "b" * 10]
    assert segment(text) == Segmentation(Encoding.GSM7, 164, 2)
    # Here plain division (ceil(306 / 153) = 2) would under-bill: packing needs 3.
    text = "a" * 152 + "€" + "b" * 152
    assert segment(text) == Segmentation(Encoding.GSM7, 306, 3)
    assert split_parts(text) == ["a" * 152, "€" + "b" * 151, "b"]


def test_astral_character_counts_two_units_and_is_not_split() -> None:
    assert segment("😀") == Segmentation(Encoding.UCS2, 2, 1)
    assert segment("😀" * 35) == Segmentation(Encoding.UCS2, 70, 1)
    text = "a" * 66 + "😀" + "b" * 66
    assert segment(text) == Segmentation(Encoding.UCS2, 134, 3)  # division would say 2
    assert split_parts(text) == ["a" * 66, "😀" + "b" * 65, "b"]


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("€" * 76 + "a", Encoding.GSM7, 153, 1),
        ("€" * 80 + "a", Encoding.GSM7, 161, 2),
        ("€" * 152, Encoding.GSM7, 304, 2),  # 76 per part, exactly full
        ("€" * 153, Encoding.GSM7, 306, 3),  # ceil(306 / 153) = 2 would under-bill
        ("😀" * 66, Encoding.UCS2, 132, 2),  # 33 per part
        ("😀" * 67, Encoding.UCS2, 134, 3),  # ceil(134 / 67) = 2 would under-bill
    ],
)
def test_all_double_width_texts_pack_by_whole_characters(
    text: str, encoding: Encoding, units: int, segments: int
) -> None:
    assert segment(text) == Segmentation(encoding, units, segments)
    assert split_parts(text) == reference_parts(text)


def test_greek_capital_delta_is_gsm_but_small_delta_is_not() -> None:
    assert is_gsm7("Δ")
    assert segment("ΔΦΓΛΩΠΨΣΘΞ").encoding is Encoding.GSM7
    assert not is_gsm7("δ")
    assert segment("δ") == Segmentation(Encoding.UCS2, 1, 1)
    assert not is_gsm7("\u2206")  # INCREMENT looks like Δ but is not the GSM character


def test_backtick_forces_ucs2() -> None:
    assert not is_gsm7("`")
    assert segment("run `ls`") == Segmentation(Encoding.UCS2, 8, 1)


@pytest.mark.parametrize("char", ["\x1b", "\x00", "\t", "\x7f", "ç", "á", "\u00a0", "’"])
def test_characters_outside_gsm(char: str) -> None:
    assert gsm7_units(char) is None
    assert gsm7_units("hello " + char) is None
    assert segment("hello " + char).encoding is Encoding.UCS2


@pytest.mark.parametrize("char", ["@", "$", "_", "\n", "\r", "¤", "§", "¿", "à", "Ç", "É"])
def test_basic_characters_cost_one(char: str) -> None:
    assert gsm7_units(char) == 1
    assert gsm7_units("hello " + char) == 7


def test_lone_surrogate_counts_one_unit_instead_of_crashing() -> None:
    # A Python str can carry one (e.g. from a lax JSON decoder); pricing must not crash.
    assert segment("a\ud800") == Segmentation(Encoding.UCS2, 2, 1)
    assert "".join(split_parts("\ud800" * 100)) == "\ud800" * 100


def test_empty_text() -> None:
    assert segment("") == Segmentation(Encoding.GSM7, 0, 1)
    assert split_parts("") == [""]
    assert gsm7_units("") == 0
    assert is_gsm7("")
    assert encode_gsm7("") == b""
    assert decode_gsm7(b"") == ""


def test_encode_gsm7_examples() -> None:
    assert encode_gsm7("@£$") == b"\x00\x01\x02"
    assert encode_gsm7("Ç") == b"\x09"
    assert encode_gsm7("a€b") == b"\x61\x1b\x65\x62"
    assert encode_gsm7("{}") == b"\x1b\x28\x1b\x29"
    assert encode_gsm7("\f") == b"\x1b\x0a"
    with pytest.raises(ValueError, match="U\\+0060"):
        encode_gsm7("a`b")
    with pytest.raises(ValueError):
        encode_gsm7("\x1b")


def test_decode_gsm7_fallbacks() -> None:
    assert decode_gsm7(b"\x1b\x65") == "€"
    assert decode_gsm7(b"\x1b\x41") == "A"  # unknown escape: the basic-table character
    assert decode_gsm7(b"\x1b\x00x") == "@x"
    assert decode_gsm7(b"\x1b\x1bx") == " x"  # reserved for another extension table
    assert decode_gsm7(b"ab\x1b") == "ab "  # dangling escape
    with pytest.raises(ValueError):
        decode_gsm7(b"\x80")


def test_split_parts_uses_exact_slices_without_pairs() -> None:
    assert split_parts("x" * 307) == ["x" * 153, "x" * 153, "x"]
    assert split_parts("ж" * 135) == ["ж" * 67, "ж" * 67, "ж"]


# --- properties -----------------------------------------------------------------------


@given(gsm_texts)
def test_gsm7_round_trip(text: str) -> None:
    assert decode_gsm7(encode_gsm7(text)) == text


@given(gsm_texts)
def test_gsm7_units_is_encoded_length(text: str) -> None:
    shape = segment(text)
    assert shape.encoding is Encoding.GSM7
    assert shape.units == len(encode_gsm7(text)) == gsm7_units(text)


@given(st.text(any_char, max_size=60))
def test_is_gsm7_iff_every_character_is_in_a_table(text: str) -> None:
    expected = all(c in GSM7_EXTENSION or (c in GSM7_BASIC and c != "\x1b") for c in text)
    assert is_gsm7(text) is expected
    assert (segment(text).encoding is Encoding.GSM7) is expected


@settings(max_examples=300)
@given(st.one_of(gsm_texts, any_texts))
def test_split_parts_properties(text: str) -> None:
    shape = segment(text)
    parts = split_parts(text)
    assert "".join(parts) == text
    assert shape.segments == len(parts)
    assert shape.units == units_as(text, shape.encoding)
    if shape.encoding is Encoding.UCS2:
        assert shape.units == len(text.encode("utf-16-be")) // 2
    multi = GSM7_MULTI_SEPTETS if shape.encoding is Encoding.GSM7 else UCS2_MULTI_UNITS
    single = GSM7_SINGLE_SEPTETS if shape.encoding is Encoding.GSM7 else UCS2_SINGLE_UNITS
    if len(parts) == 1:
        assert shape.units <= single
    else:
        assert shape.units > single
        for part in parts:
            assert 0 < units_as(part, shape.encoding) <= multi
        # Greedy: no part could have taken the next character, so the count is minimal.
        for part, following in itertools.pairwise(parts):
            assert units_as(part + following[0], shape.encoding) > multi
    assert parts == reference_parts(text)
