"""Turning EAPI ``message`` values into what the gateway sends, and text back for replies.

The BulkSMS-style EAPI carries every parameter value in ISO-8859-1, and what a
``message`` means depends on its ``dca`` (data coding alphabet):

* ``7bit`` (default) – GSM 03.38 text *carried in* ISO-8859-1. Latin-1 has no
  Greek, so the ten Greek capitals of the GSM basic table travel as Latin-1 code
  points that GSM itself does not use (Δ as 0xD0 "Ð", Σ as 0xCA "Ê", ...) and are
  mapped back here. Anything else outside the GSM repertoire becomes ``?``, so
  the result always segments as GSM7 and is billed as such.
* ``8bit`` – hex octets of a binary SMS (ringtones, logos; the client supplies
  the UDH). Sent verbatim, so it must fit one SMS: at most 140 octets.
* ``16bit`` – hex of UTF-16BE text, decoded here; segmentation then treats it as
  UCS2 text like any other.

Replies (``get_report`` bodies, the inbox) go the other way through
``text_to_latin1_gsm`` so a client that decodes the way it encodes gets back the
characters it sent.

The GSM tables come from ``smsgate.core.encoding``; this module only adds the
Latin-1 carriage on top of them. ``latin1_gsm_to_text`` runs for every row of
30,000-row batches, so it is two C-level calls over precomputed tables.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from smsgate.core.encoding import GSM7_BASIC, GSM7_ESCAPE, GSM7_EXTENSION

__all__ = [
    "BINARY_MAX_OCTETS",
    "GREEK_LATIN1_CARRIAGE",
    "Dca",
    "InvalidMessageData",
    "decode_message",
    "latin1_gsm_to_text",
    "parse_dca",
    "text_to_latin1_gsm",
]


class Dca(StrEnum):
    """The EAPI ``dca`` parameter; the value is the wire spelling."""

    SEVEN_BIT = "7bit"
    EIGHT_BIT = "8bit"
    SIXTEEN_BIT = "16bit"


class InvalidMessageData(ValueError):
    """A ``message`` (or ``dca``) the EAPI must reject; ``str()`` is the reason.

    A ``ValueError`` so callers that already turn ``ValueError`` into status 24
    (data validation failed) need no new branch.
    """


BINARY_MAX_OCTETS = 140
"""Octets in one SMS. ``8bit`` messages carry their own UDH, so they cannot be split."""

GREEK_LATIN1_CARRIAGE: Mapping[str, int] = MappingProxyType(
    {
        "Δ": 0xD0,  # Ð
        "Φ": 0xDE,  # Þ
        "Γ": 0xAC,  # ¬
        "Λ": 0xC2,  # Â
        "Ω": 0xDB,  # Û
        "Π": 0xBA,  # º
        "Ψ": 0xDD,  # Ý
        "Σ": 0xCA,  # Ê
        "Θ": 0xD4,  # Ô
        "Ξ": 0xB1,  # ±
    }
)
"""GSM Greek capital -> the ISO-8859-1 code point that carries it in ``7bit`` EAPI text.

None of these code points is itself a GSM character, so the mapping is
unambiguous in both directions; every other GSM character that Latin-1 has
(``£ ¥ è é Ç Ø Å Æ ß É Ä Ö Ñ Ü § ¿ ä ö ñ ü à ¡ ¤`` ...) is carried as itself.
"""

_REPLACEMENT = "?"

# --- precomputed tables ---------------------------------------------------------------

_GSM_CHARS = frozenset(GSM7_BASIC[:GSM7_ESCAPE] + GSM7_BASIC[GSM7_ESCAPE + 1 :]) | frozenset(
    GSM7_EXTENSION
)
_CARRIED_GREEK: dict[int, str] = {cp: greek for greek, cp in GREEK_LATIN1_CARRIAGE.items()}


def _latin1_table(special: Mapping[int, str]) -> str:
    """A 256-char ``charmap_decode`` table: ``special``, GSM chars as themselves, else ``?``."""
    return "".join(
        special.get(cp) or (chr(cp) if chr(cp) in _GSM_CHARS else _REPLACEMENT) for cp in range(256)
    )


class _ReplaceMissing(dict[int, str]):
    """A ``str.translate`` table that sends every code point it lacks to ``?``.

    Only used for text with code points above U+00FF, which ISO-8859-1 input never
    has; nothing is cached on a miss, so odd input cannot grow the table.
    """

    def __missing__(self, key: int) -> str:
        return _REPLACEMENT


# Carriage -> text. Latin-1 code points: a byte table decoded in C.
_FROM_LATIN1 = _latin1_table(_CARRIED_GREEK)
# Above U+00FF only the GSM characters Latin-1 lacks (real Greek capitals, €) survive.
_FROM_ANY = _ReplaceMissing({cp: _FROM_LATIN1[cp] for cp in range(256)})
_FROM_ANY.update({ord(c): c for c in _GSM_CHARS if ord(c) > 0xFF})

# Text -> carriage. A literal "Ð" in the text is not GSM and becomes "?", never "Δ".
_TO_LATIN1 = _latin1_table({})
_TO_ANY = _ReplaceMissing({cp: _TO_LATIN1[cp] for cp in range(256)})
_TO_ANY.update({ord(greek): chr(cp) for greek, cp in GREEK_LATIN1_CARRIAGE.items()})

_HEX = re.compile(r"[0-9A-Fa-f]*")


# --- public API -----------------------------------------------------------------------


def parse_dca(raw: str | None) -> Dca:
    """The ``dca`` of a request or CSV row; absent or empty means the documented ``7bit``.

    Case and surrounding blanks are forgiven (the EAPI parses leniently), but an
    unknown alphabet is rejected: guessing would send a binary or Unicode payload
    as garbage text that the customer still pays for.
    """
    if raw is None:
        return Dca.SEVEN_BIT
    value = raw.strip().lower()
    if not value:
        return Dca.SEVEN_BIT
    try:
        return Dca(value)
    except ValueError:
        raise InvalidMessageData(f"unknown dca {raw!r} (expected 7bit, 8bit or 16bit)") from None


def latin1_gsm_to_text(raw: str) -> str:
    """A ``7bit`` message (already decoded from ISO-8859-1) as the GSM text it stands for.

    The carried Greek code points become Greek capitals, GSM characters stay, and
    everything else becomes ``?``, so ``encoding.is_gsm7`` holds for the result
    and the message is priced as GSM7 as the client expects. Input above U+00FF
    cannot come from ISO-8859-1; if a caller passes some anyway, GSM characters
    among it (Greek capitals, €) are kept and the rest replaced.
    """
    try:
        data = raw.encode("latin-1")
    except UnicodeEncodeError:
        return raw.translate(_FROM_ANY)
    return codecs.charmap_decode(data, "strict", _FROM_LATIN1)[0]


def text_to_latin1_gsm(text: str) -> str:
    """GSM ``text`` in the ``7bit`` Latin-1 carriage, for reply bodies; inverse of the above.

    Greek capitals go back to their carrying code points, so
    ``latin1_gsm_to_text(text_to_latin1_gsm(t)) == t`` for every GSM text ``t``
    without ``€``. The result is always encodable in ISO-8859-1: ``€`` (GSM, but
    not Latin-1) and non-GSM characters become ``?``, and a literal ``Ð`` (not GSM)
    becomes ``?`` rather than something the client would read back as ``Δ``.
    """
    try:
        data = text.encode("latin-1")
    except UnicodeEncodeError:
        return text.translate(_TO_ANY)
    return codecs.charmap_decode(data, "strict", _TO_LATIN1)[0]


def _hex_octets(raw: str, dca: Dca) -> bytes:
    """``raw`` as octets, rejecting anything ``bytes.fromhex`` would quietly forgive.

    ``fromhex`` skips whitespace, which would make a corrupted payload look valid.
    """
    if _HEX.fullmatch(raw) is None:
        raise InvalidMessageData(f"{dca} message is not hex")
    if len(raw) % 2:
        raise InvalidMessageData(f"{dca} message has an odd number of hex digits")
    return bytes.fromhex(raw)


def _decode_8bit(raw: str) -> bytes:
    """Binary payload: must fit one SMS because its UDH is the client's, not ours to split."""
    data = _hex_octets(raw, Dca.EIGHT_BIT)
    if len(data) > BINARY_MAX_OCTETS:
        raise InvalidMessageData(
            f"8bit message is {len(data)} octets; at most {BINARY_MAX_OCTETS} fit one SMS"
        )
    return data


def _decode_16bit(raw: str) -> str:
    """UTF-16BE payload as text; a handset shows a broken surrogate as garbage, so reject it."""
    data = _hex_octets(raw, Dca.SIXTEEN_BIT)
    if len(data) % 2:
        raise InvalidMessageData("16bit message has an odd number of octets (not UTF-16)")
    try:
        return data.decode("utf-16-be")
    except UnicodeDecodeError:
        raise InvalidMessageData("16bit message has an unpaired UTF-16 surrogate") from None


def decode_message(raw: str, dca: Dca) -> str | bytes:
    """The payload ``raw`` stands for under ``dca``: text for 7bit/16bit, octets for 8bit.

    Never raises anything but ``InvalidMessageData``, so a bad row in a batch is a
    validation failure (code 24, or skipped under lenient parsing), never a 500.
    16bit text is not limited here: it is ordinary UCS2 text, and whether it may
    span several parts is the submission's ``allow_concat_text_sms`` decision.
    """
    if dca is Dca.SEVEN_BIT:
        return latin1_gsm_to_text(raw)
    if dca is Dca.EIGHT_BIT:
        return _decode_8bit(raw)
    return _decode_16bit(raw)
