"""How a message text travels over SMS, and how many billable segments it needs.

Every accepted message is priced per segment, so this module decides money as
well as wire format. Two data codings are used:

* **GSM7** – the GSM 03.38 / 3GPP TS 23.038 default alphabet. Characters of the
  basic table cost one septet; characters of the default extension table are
  sent as ``ESC`` followed by a septet and therefore cost two.
* **UCS2** – everything else, sent as UTF-16BE (handsets decode UCS-2 as
  UTF-16 in practice). Characters outside the BMP take a surrogate pair, i.e.
  two code units.

A single SMS carries 140 octets: 160 septets or 70 UTF-16 units. A longer text
is split into parts that each lose 6 octets to the concatenation UDH, leaving
153 septets or 67 units per part. A part boundary must never cut an escape pair
or a surrogate pair (the handset would show garbage on both sides), so parts
are packed greedily character by character and the segment count is the number
of packed parts, not a plain division, whenever the two could differ.

``segment`` sits on the hot path of bulk submission (tens of thousands of
messages per request), so the common case – ASCII text – is answered by a few
C-level ``str``/``bytes`` operations instead of a per-character Python loop.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "GSM7_BASIC",
    "GSM7_ESCAPE",
    "GSM7_EXTENSION",
    "GSM7_MULTI_SEPTETS",
    "GSM7_SINGLE_SEPTETS",
    "UCS2_MULTI_UNITS",
    "UCS2_SINGLE_UNITS",
    "Encoding",
    "Segmentation",
    "decode_gsm7",
    "encode_gsm7",
    "gsm7_units",
    "is_gsm7",
    "segment",
    "split_parts",
]


class Encoding(StrEnum):
    """The data coding a message is sent with; the value is what the store keeps."""

    GSM7 = "gsm7"  # GSM 03.38 default alphabet (+ extension table via escape)
    UCS2 = "ucs2"  # UTF-16BE; characters outside the BMP take two code units
    BINARY = "binary"  # 8-bit octets with a user data header, stored as hex


GSM7_SINGLE_SEPTETS = 160
"""Septets in a single, unconcatenated SMS (140 octets * 8 / 7)."""
GSM7_MULTI_SEPTETS = 153
"""Septets per part of a concatenated SMS (6-octet UDH = 7 septets with fill bits)."""
UCS2_SINGLE_UNITS = 70
"""UTF-16 code units in a single SMS (140 octets / 2)."""
UCS2_MULTI_UNITS = 67
"""UTF-16 code units per part of a concatenated SMS ((140 - 6) octets / 2)."""

GSM7_ESCAPE = 0x1B
"""Septet that switches the next septet to the extension table."""

GSM7_BASIC: str = (
    "@£$¥èéùìòÇ\nØø\rÅå"  # 0x00-0x0F (0x09 is CAPITAL C cedilla, per 23.038)
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"  # 0x10-0x1F (Greek capitals U+0393-U+03A9; 0x1B is ESC)
    " !\"#¤%&'()*+,-./"  # 0x20-0x2F (0x24 is the currency sign, not $)
    "0123456789:;<=>?"  # 0x30-0x3F
    "¡ABCDEFGHIJKLMNO"  # 0x40-0x4F
    "PQRSTUVWXYZÄÖÑÜ§"  # 0x50-0x5F
    "¿abcdefghijklmno"  # 0x60-0x6F
    "pqrstuvwxyzäöñüà"  # 0x70-0x7F
)
"""The GSM 03.38 basic character set; the index of a character is its septet.

Position 0x1B holds ``"\\x1b"`` only as a placeholder for the escape code: it is
*not* a character a text may contain, and ``is_gsm7("\\x1b")`` is false.
"""

GSM7_EXTENSION: dict[str, int] = {
    "\f": 0x0A,  # form feed (page break)
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
"""The default extension table: character -> septet sent after ``ESC`` (costs 2)."""

# --- derived lookup tables -------------------------------------------------------------

_BASIC_CHARS = GSM7_BASIC[:GSM7_ESCAPE] + GSM7_BASIC[GSM7_ESCAPE + 1 :]
_EXT_CHARS = "".join(GSM7_EXTENSION)

# The ASCII fast path: after ``str.encode("ascii")`` deleting every basic-table byte
# leaves only extension characters (cost 2) and characters GSM cannot carry
# (backtick, control characters other than LF/CR/FF, DEL). Both deletions run in C.
_ASCII_BASIC = bytes(ord(c) for c in _BASIC_CHARS if c.isascii())
_ASCII_EXT = bytes(ord(c) for c in _EXT_CHARS if c.isascii())

# The non-ASCII path (accented Latin, Greek capitals, €): one regex scan in C.
_GSM7_TEXT = re.compile("[" + re.escape(_BASIC_CHARS + _EXT_CHARS) + "]*")
_GSM7_EXT_CHAR = re.compile("[" + re.escape(_EXT_CHARS) + "]")

_SEPTET_OF: dict[int, str] = {ord(c): chr(i) for i, c in enumerate(GSM7_BASIC)}
del _SEPTET_OF[GSM7_ESCAPE]
_SEPTET_OF.update({ord(c): chr(GSM7_ESCAPE) + chr(s) for c, s in GSM7_EXTENSION.items()})
_EXT_OF_SEPTET: dict[int, str] = {s: c for c, s in GSM7_EXTENSION.items()}
_DECODE_PLAIN: dict[int, str] = dict(enumerate(GSM7_BASIC))


@dataclass(frozen=True, slots=True)
class Segmentation:
    """How a text goes over the air.

    ``units`` are septets for GSM7 (an extension character counts 2) and UTF-16
    code units for UCS2. ``segments`` is what the customer is billed for.
    """

    encoding: Encoding
    units: int
    segments: int


# Single-part results are by far the most common and are immutable, so they are
# built once: the hot path then does a tuple index instead of a dataclass __init__.
_GSM7_SINGLE = tuple(Segmentation(Encoding.GSM7, n, 1) for n in range(GSM7_SINGLE_SEPTETS + 1))
_UCS2_SINGLE = tuple(Segmentation(Encoding.UCS2, n, 1) for n in range(UCS2_SINGLE_UNITS + 1))


def gsm7_units(text: str) -> int | None:
    """Septets ``text`` needs in the GSM 7-bit alphabet, or ``None`` if it cannot be sent so.

    Extension-table characters (``^ { } \\ [ ~ ] | €`` and form feed) count two
    because they travel as ``ESC`` + septet.
    """
    if text.isascii():
        rest = text.encode("ascii").translate(None, _ASCII_BASIC)
        if not rest:
            return len(text)
        if rest.translate(None, _ASCII_EXT):
            return None  # backtick or a control character
        return len(text) + len(rest)
    if _GSM7_TEXT.fullmatch(text) is None:
        return None
    return len(text) + len(_GSM7_EXT_CHAR.findall(text))


def is_gsm7(text: str) -> bool:
    """Whether every character of ``text`` is in the GSM basic or extension table."""
    return gsm7_units(text) is not None


def _ucs2_units(text: str) -> int:
    """UTF-16 code units of ``text``.

    ``surrogatepass`` keeps lone surrogates (which a Python ``str`` can hold but no
    well-formed input produces) countable as one unit instead of raising here.
    """
    return len(text.encode("utf-16-le", "surrogatepass")) >> 1


def _gsm7_units_known(text: str) -> int:
    """``gsm7_units`` for text already known to be GSM7 (slices of a GSM7 text)."""
    units = gsm7_units(text)
    assert units is not None
    return units


def _pack(text: str, capacity: int, units_of: Callable[[str], int]) -> list[str]:
    """Split ``text`` greedily into parts of at most ``capacity`` units.

    Works on whole characters, so an escape pair or a surrogate pair is never
    cut. Each part takes the longest prefix of the remainder that fits, which
    also gives the fewest parts any order-preserving split can. Only needed when
    some character costs 2 units; otherwise fixed-width slicing is exact.
    """
    parts: list[str] = []
    start, n = 0, len(text)
    while start < n:
        end = min(n, start + capacity)  # every character costs at least 1 unit
        used = units_of(text[start:end])
        while used > capacity:
            # A character costs at most 2 units, so at least half the excess must go;
            # dropping that many at once keeps this loop short and never overshoots.
            end -= (used - capacity + 1) >> 1
            used = units_of(text[start:end])
        parts.append(text[start:end])
        start = end
    return parts


def segment(text: str) -> Segmentation:
    """Choose the encoding for ``text`` and count its units and billable segments.

    GSM7 is preferred whenever every character allows it, because it fits more
    than twice as many characters per segment as UCS2. An empty text is one
    segment of zero units: if it is sent at all, it is still one SMS.
    """
    units = gsm7_units(text)
    if units is not None:
        if units <= GSM7_SINGLE_SEPTETS:
            return _GSM7_SINGLE[units]
        if units == len(text):  # no escape pairs, so plain division is exact
            return Segmentation(Encoding.GSM7, units, -(-units // GSM7_MULTI_SEPTETS))
        parts = _pack(text, GSM7_MULTI_SEPTETS, _gsm7_units_known)
        return Segmentation(Encoding.GSM7, units, len(parts))
    units = _ucs2_units(text)
    if units <= UCS2_SINGLE_UNITS:
        return _UCS2_SINGLE[units]
    if units == len(text):  # no surrogate pairs, so plain division is exact
        return Segmentation(Encoding.UCS2, units, -(-units // UCS2_MULTI_UNITS))
    return Segmentation(Encoding.UCS2, units, len(_pack(text, UCS2_MULTI_UNITS, _ucs2_units)))


def split_parts(text: str) -> list[str]:
    """The text of each SMS part, by the same rule that ``segment`` counts.

    The SMPP connector sends each part with a concatenation UDH, so
    ``len(split_parts(t)) == segment(t).segments`` and ``"".join(parts) == t``.
    An empty text is a single empty part.
    """
    units = gsm7_units(text)
    if units is not None:
        single, multi, units_of = GSM7_SINGLE_SEPTETS, GSM7_MULTI_SEPTETS, _gsm7_units_known
    else:
        units = _ucs2_units(text)
        single, multi, units_of = UCS2_SINGLE_UNITS, UCS2_MULTI_UNITS, _ucs2_units
    if units <= single:
        return [text]
    if units == len(text):
        return [text[i : i + multi] for i in range(0, len(text), multi)]
    return _pack(text, multi, units_of)


def encode_gsm7(text: str) -> bytes:
    """``text`` as unpacked GSM 7-bit septets, one per byte.

    Extension characters become ``0x1B`` followed by their extension septet.
    Packing septets into octets is left to the transport (SMPP sends them
    unpacked; the air interface packs them), so this stays a pure table lookup.

    Raises ``ValueError`` naming the first character GSM7 cannot carry.
    """
    if gsm7_units(text) is None:
        bad = next(c for c in text if gsm7_units(c) is None)
        raise ValueError(f"{bad!r} (U+{ord(bad):04X}) is not in the GSM 03.38 alphabet")
    return text.translate(_SEPTET_OF).encode("ascii")


def decode_gsm7(data: bytes) -> str:
    """Unpacked GSM 7-bit septets (one per byte) back to text; inverse of ``encode_gsm7``.

    Follows the receiver rules of 3GPP TS 23.038: ``ESC`` followed by a septet
    that has no extension character shows the basic-table character for that
    septet; ``ESC ESC`` (reserved for a further extension table) and a dangling
    ``ESC`` at the end show a space. Raises ``ValueError`` for bytes above 0x7F,
    which cannot be septets.
    """
    if not data.isascii():
        raise ValueError("GSM 7-bit septets must be in 0x00-0x7F")
    if GSM7_ESCAPE not in data:
        return data.decode("ascii").translate(_DECODE_PLAIN)
    out: list[str] = []
    pos, n = 0, len(data)
    while pos < n:
        esc = data.find(GSM7_ESCAPE, pos)
        if esc < 0:
            out.append(data[pos:].decode("ascii").translate(_DECODE_PLAIN))
            break
        out.append(data[pos:esc].decode("ascii").translate(_DECODE_PLAIN))
        if esc + 1 == n:
            out.append(" ")
            break
        septet = data[esc + 1]
        if septet == GSM7_ESCAPE:
            out.append(" ")
        else:
            out.append(_EXT_OF_SEPTET.get(septet) or GSM7_BASIC[septet])
        pos = esc + 2
    return "".join(out)
