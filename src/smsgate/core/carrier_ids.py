"""Carrier message ids, read the one way their connection declares.

A receipt names its message by the id the carrier gave at submission, but
carriers write ids in their own ways: decimal or hex numbers, zero-padded or
not, upper or lower case, or opaque strings. Guessing (trying an id as hex
and as decimal) matches the wrong message as soon as ids are sequential: hex
``20`` and decimal ``20`` are different messages. So each connection
declares how its carrier writes the id in each place (as Kannel's
``msg-id-type`` does), and an id is read in that one way into a key: the
number's decimal digits for ``decimal`` and ``hex``, the case-folded string
for ``string``. A submission and its receipt then meet on equal keys, however
differently each side spells the number.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

KEY_WIDTH: Final = 64
"""Longest key stored; also bounds the cost of reading a number."""


class IdFormat(StrEnum):
    STRING = "string"
    DECIMAL = "decimal"
    HEX = "hex"


_DECIMAL_DIGITS: Final = frozenset("0123456789")
_HEX_DIGITS: Final = frozenset("0123456789abcdefABCDEF")


def carrier_key(raw: str, id_format: IdFormat) -> str:
    """The key ``raw`` is filed and looked up under.

    An id that is not a number of its declared base (a carrier that broke
    its own format) is kept as its case-folded string rather than guessed at:
    it can then only meet the same spelling.
    """
    text = raw.strip()
    if id_format is not IdFormat.STRING and 0 < len(text) <= KEY_WIDTH:
        digits = _DECIMAL_DIGITS if id_format is IdFormat.DECIMAL else _HEX_DIGITS
        if all(character in digits for character in text):
            return str(int(text, 10 if id_format is IdFormat.DECIMAL else 16))
    return text.casefold()[:KEY_WIDTH]


def handsets_match(receipt_address: str, recipient: str) -> bool:
    """Whether a receipt's source address names the number a message went to.

    Carriers write the handset as they like (``+254…``, ``254…``, ``07…``),
    so the digits are compared from the end: equal, or the shorter one (at
    least seven digits, a subscriber number) ends the longer. A receipt
    without a numeric address matches any recipient.
    """
    if not receipt_address or receipt_address == recipient.lstrip("+"):
        return True  # the common case: the carrier echoes the address it was given
    theirs = "".join(c for c in receipt_address if c in _DECIMAL_DIGITS).lstrip("0")
    if not theirs:
        return True
    ours = "".join(c for c in recipient if c in _DECIMAL_DIGITS).lstrip("0")
    if theirs == ours:
        return True
    shorter, longer = sorted((theirs, ours), key=len)
    return len(shorter) >= 7 and longer.endswith(shorter)
