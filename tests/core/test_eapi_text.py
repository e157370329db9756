"""EAPI message data: the Latin-1 carriage of GSM text, and the 8bit/16bit hex payloads."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsgate.core.eapi_text import (
    BINARY_MAX_OCTETS,
    GREEK_LATIN1_CARRIAGE,
    Dca,
    InvalidMessageData,
    decode_message,
    latin1_gsm_to_text,
    parse_dca,
    text_to_latin1_gsm,
)
from smsgate.core.encoding import (
    GSM7_BASIC,
    GSM7_ESCAPE,
    GSM7_EXTENSION,
    Encoding,
    is_gsm7,
    segment,
)

# The table as the EAPI spec gives it, written out independently of the module.
SPEC_GREEK = [
    ("Δ", 0xD0),
    ("Φ", 0xDE),
    ("Γ", 0xAC),
    ("Λ", 0xC2),
    ("Ω", 0xDB),
    ("Π", 0xBA),
    ("Ψ", 0xDD),
    ("Σ", 0xCA),
    ("Θ", 0xD4),
    ("Ξ", 0xB1),
]
GSM_CHARS = GSM7_BASIC[:GSM7_ESCAPE] + GSM7_BASIC[GSM7_ESCAPE + 1 :] + "".join(GSM7_EXTENSION)
LATIN1_GSM = "£¥èéùìòÇØøÅåÆæßÉÄÖÑÜ§¿äöñüà¡¤"


# --- dca ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, Dca.SEVEN_BIT),
        ("", Dca.SEVEN_BIT),
        ("  ", Dca.SEVEN_BIT),
        ("7bit", Dca.SEVEN_BIT),
        ("8bit", Dca.EIGHT_BIT),
        ("16bit", Dca.SIXTEEN_BIT),
        (" 16BIT ", Dca.SIXTEEN_BIT),
    ],
)
def test_parse_dca(raw: str | None, expected: Dca) -> None:
    assert parse_dca(raw) is expected


@pytest.mark.parametrize("raw", ["7", "unicode", "32bit", "ucs2"])
def test_parse_dca_rejects_unknown(raw: str) -> None:
    with pytest.raises(InvalidMessageData, match="unknown dca"):
        parse_dca(raw)


# --- 7bit: Latin-1 carriage -----------------------------------------------------------


def test_greek_table_is_the_spec_table() -> None:
    assert dict(GREEK_LATIN1_CARRIAGE) == dict(SPEC_GREEK)


def test_carrying_code_points_are_not_gsm_characters() -> None:
    """Otherwise the mapping would be ambiguous: a real GSM character would turn Greek."""
    for _, cp in SPEC_GREEK:
        assert chr(cp) not in GSM_CHARS


@pytest.mark.parametrize(("greek", "cp"), SPEC_GREEK)
def test_each_greek_capital(greek: str, cp: int) -> None:
    carried = bytes([cp]).decode("iso-8859-1")
    assert latin1_gsm_to_text(carried) == greek
    assert text_to_latin1_gsm(greek) == carried
    assert greek in GSM7_BASIC


def test_latin1_gsm_characters_pass_through() -> None:
    assert latin1_gsm_to_text(LATIN1_GSM) == LATIN1_GSM
    assert text_to_latin1_gsm(LATIN1_GSM) == LATIN1_GSM


def test_every_latin1_code_point() -> None:
    """All 256 code points: GSM ones kept, the ten carriers turned Greek, the rest ``?``."""
    carriers = {chr(cp): g for g, cp in SPEC_GREEK}
    for cp in range(256):
        c = chr(cp)
        expected = carriers.get(c) or (c if c in GSM_CHARS else "?")
        assert latin1_gsm_to_text(c) == expected, hex(cp)


def test_mixed_message() -> None:
    wire = "Ð=5, Ê ok? Prix: 3£ - café [x] {y} ~ | ^ \\\nÞ Û"
    text = latin1_gsm_to_text(wire)
    assert text == "Δ=5, Σ ok? Prix: 3£ - café [x] {y} ~ | ^ \\\nΦ Ω"
    assert segment(text).encoding is Encoding.GSM7
    assert text_to_latin1_gsm(text) == wire


def test_outside_repertoire_becomes_question_mark() -> None:
    # ` and DEL/C0 controls and most Latin-1 letters are not GSM.
    assert latin1_gsm_to_text("a`b\x7fc\x00d\x1be\tf") == "a?b?c?d?e?f"
    assert latin1_gsm_to_text("ÀÁÃÈÊËÍÎÏÓÕÚßç") == "????Σ???????ß?"
    assert latin1_gsm_to_text("Àç«»µ°") == "??????"
    assert latin1_gsm_to_text("Ç") == "Ç"  # capital C cedilla is GSM 0x09, small ç is not


def test_non_latin1_input() -> None:
    """Cannot come from ISO-8859-1, but must still give GSM text: GSM kept, rest ``?``."""
    assert latin1_gsm_to_text("€ Δ Привет 😀") == "€ Δ ?????? ?"


def test_euro() -> None:
    """€ is GSM (extension table) but not Latin-1: no 7bit EAPI client can send it.

    Neither the seed nor the spec gives it a carrying code point, so none is
    invented: 0xA4 is ¤, which is itself GSM (basic 0x24) and stays ¤. A decoded
    € is kept on the way in, and replaced on the way out so replies stay Latin-1.
    """
    assert latin1_gsm_to_text("\xa4") == "¤"
    assert latin1_gsm_to_text("5€") == "5€"
    assert text_to_latin1_gsm("5€") == "5?"


def test_reply_direction_replaces_non_gsm() -> None:
    # A literal Ð is not GSM: it must not reach the client as the carrier of Δ.
    assert text_to_latin1_gsm("Ð Δ Привет `") == "? Ð ?????? ?"
    assert text_to_latin1_gsm("Ð`") == "??"


def test_extension_characters_pass_through() -> None:
    ext = "".join(c for c in GSM7_EXTENSION if c != "€")
    assert latin1_gsm_to_text(ext) == ext
    assert text_to_latin1_gsm(ext) == ext


# --- 8bit -----------------------------------------------------------------------------


def test_8bit_valid() -> None:
    udh_ringtone = "0B0504158100000003A1B2C3" + "ff" * 10
    assert decode_message(udh_ringtone, Dca.EIGHT_BIT) == bytes.fromhex(udh_ringtone)
    assert decode_message("00", Dca.EIGHT_BIT) == b"\x00"
    assert decode_message("ab" * BINARY_MAX_OCTETS, Dca.EIGHT_BIT) == b"\xab" * 140


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("0g", "8bit message is not hex"),
        ("00 11", "8bit message is not hex"),  # bytes.fromhex would skip the blank
        ("0x11", "8bit message is not hex"),
        ("٠١", "8bit message is not hex"),  # Arabic-Indic digits are not hex
        ("abc", "8bit message has an odd number of hex digits"),
        ("ab" * (BINARY_MAX_OCTETS + 1), "8bit message is 141 octets; at most 140"),
    ],
)
def test_8bit_invalid(raw: str, reason: str) -> None:
    with pytest.raises(InvalidMessageData) as exc:
        decode_message(raw, Dca.EIGHT_BIT)
    assert str(exc.value).startswith(reason)


# --- 16bit ----------------------------------------------------------------------------


def test_16bit_cyrillic() -> None:
    raw = "041F04400438043204350442"
    assert raw == "Привет".encode("utf-16-be").hex().upper()
    assert decode_message(raw, Dca.SIXTEEN_BIT) == "Привет"
    assert decode_message(raw.lower(), Dca.SIXTEEN_BIT) == "Привет"


def test_16bit_surrogate_pair() -> None:
    assert decode_message("D83DDE00", Dca.SIXTEEN_BIT) == "😀"
    assert decode_message("0048D83DDE000021", Dca.SIXTEEN_BIT) == "H😀!"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("04ZZ", "16bit message is not hex"),
        ("041", "16bit message has an odd number of hex digits"),
        ("041F04", "16bit message has an odd number of octets"),
        ("D83D", "16bit message has an unpaired UTF-16 surrogate"),  # high at the end
        ("DE000041", "16bit message has an unpaired UTF-16 surrogate"),  # lone low
        ("D83D0041", "16bit message has an unpaired UTF-16 surrogate"),  # high, no low
    ],
)
def test_16bit_invalid(raw: str, reason: str) -> None:
    with pytest.raises(InvalidMessageData) as exc:
        decode_message(raw, Dca.SIXTEEN_BIT)
    assert str(exc.value) == reason or str(exc.value).startswith(reason)


def test_decode_7bit_dispatches() -> None:
    assert decode_message("Ð", Dca.SEVEN_BIT) == "Δ"


# --- properties -----------------------------------------------------------------------

# GSM text a 7bit client can send: every GSM character except € (the only one Latin-1
# cannot carry, even with the Greek mapping).
latin1_carriable_gsm = st.text(alphabet=st.sampled_from(GSM_CHARS.replace("€", "")))


@given(st.text())
def test_output_is_always_gsm7(raw: str) -> None:
    assert is_gsm7(latin1_gsm_to_text(raw))


@given(st.text(alphabet=st.characters(max_codepoint=0xFF)))
def test_latin1_input_is_always_gsm7(raw: str) -> None:
    text = latin1_gsm_to_text(raw)
    assert is_gsm7(text)
    assert len(text) == len(raw)  # one character per character: no shifting of the text


@given(latin1_carriable_gsm)
def test_round_trip(text: str) -> None:
    """For GSM text without €: the reply is valid ISO-8859-1 and reads back unchanged."""
    wire = text_to_latin1_gsm(text)
    wire.encode("iso-8859-1")
    assert latin1_gsm_to_text(wire) == text


@given(st.text())
def test_reply_is_always_latin1(text: str) -> None:
    wire = text_to_latin1_gsm(text)
    wire.encode("iso-8859-1")
    assert is_gsm7(latin1_gsm_to_text(wire))


hexish = st.text(alphabet=st.sampled_from("0123456789abcdefABCDEF"))


@pytest.mark.parametrize("dca", list(Dca))
@given(raw=st.one_of(st.text(), hexish))
def test_decode_message_only_raises_invalid_message_data(dca: Dca, raw: str) -> None:
    try:
        result = decode_message(raw, dca)
    except InvalidMessageData:
        return
    assert isinstance(result, bytes if dca is Dca.EIGHT_BIT else str)


@given(st.text(max_size=70))
def test_16bit_round_trips_any_text(text: str) -> None:
    raw = text.encode("utf-16-be", "surrogatepass").hex()
    try:
        decoded = decode_message(raw, Dca.SIXTEEN_BIT)
    except InvalidMessageData:
        # Only text a well-formed client could not have sent (lone surrogates).
        assert any(0xD800 <= ord(c) <= 0xDFFF for c in text)
    else:
        assert decoded == text
