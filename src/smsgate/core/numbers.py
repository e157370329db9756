"""Recipient numbers as customers type them, turned into E.164.

A bulk request carries up to 30,000 recipients and must be accepted well
within a second, but ``phonenumbers.parse`` + ``is_valid_number`` costs tens
of microseconds per number. So the common shapes (digits, optionally with
``+``, ``00`` or the national prefix) go through a fast path that replays
phonenumbers' own parsing and classification steps on pre-compiled copies of
its metadata patterns; any shape the fast path is not certain about is handed
to phonenumbers itself. The outcome must always be exactly what phonenumbers
would decide: the property tests in ``tests/core/test_numbers.py`` compare the
two on thousands of generated numbers.

What is accepted
----------------
The input may carry surrounding whitespace and, between digits, whitespace,
``-``, ``.``, ``(`` and ``)``; one ``+`` may come before the first digit.
Letters (including extension markers such as ``ext``) and any other character
are refused rather than guessed at, since phonenumbers would otherwise
quietly read vanity letters or drop an extension. Inputs longer than 20
characters (after trimming) are refused before any work is done.

The digits are read the way phonenumbers reads them in the account's default
region: ``+`` or the region's international prefix introduces a country
code; otherwise the default region's national prefix is stripped, and a
leading default country code without ``+`` is recognised when phonenumbers
recognises it ("254712345678" in KE). Only if that reading is not a valid
number and the input had no ``+``, the digits are read once more as
international: a leading ``00`` (the ITU international prefix, which many
customers type even where the local prefix differs, e.g. ``000`` in KE) is
replaced by ``+``, otherwise ``+`` is prepended ("447911123456" in KE).

Which numbers can receive SMS
-----------------------------
A valid number is accepted when its ``phonenumbers.number_type`` is MOBILE,
FIXED_LINE_OR_MOBILE (the whole NANPA area, where the two cannot be told
apart), PERSONAL_NUMBER or VOIP, since those commonly route to handsets or
SMS-capable services. FIXED_LINE, TOLL_FREE, PREMIUM_RATE, SHARED_COST, UAN,
VOICEMAIL and PAGER numbers are refused as "not a mobile number": sending to
them costs money and reaches nobody. A number phonenumbers does not consider
valid is refused as "not a valid phone number".

``Normalized.region`` is what ``phonenumbers.region_code_for_number`` says,
so non-geographic numbers (e.g. +870 Inmarsat, +882 networks) carry "001".
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import (
    COUNTRY_CODE_TO_REGION_CODE,
    SUPPORTED_REGIONS,
    NumberParseException,
    PhoneMetadata,
    PhoneNumberDesc,
    PhoneNumberFormat,
    PhoneNumberType,
)

__all__ = ["InvalidNumber", "Normalized", "NumberNormalizer", "normalizer_for"]

MAX_INPUT_LENGTH = 20
"""Longer inputs are refused up front; real numbers with separators fit easily."""

SMS_CAPABLE_TYPES = frozenset(
    {
        PhoneNumberType.MOBILE,
        PhoneNumberType.FIXED_LINE_OR_MOBILE,
        PhoneNumberType.PERSONAL_NUMBER,
        PhoneNumberType.VOIP,
    }
)

_NON_GEO_REGION = "001"
# phonenumbers' own bounds (phonenumberutil._MIN/_MAX_LENGTH_FOR_NSN).
_MIN_NSN = 2
_MAX_NSN = 17
# Lengths the per-length tables cover; a national number never exceeds _MAX_NSN.
_TABLE_LENGTHS = 24

# Results of phonenumbers' _test_number_length, as small ints.
_IS_POSSIBLE = 0
_LOCAL_ONLY = 1
_TOO_SHORT = 2
_INVALID_LENGTH = 3
_TOO_LONG = 4

_SEPARATORS = frozenset("-.()")
_PLUS_SIGNS = frozenset("+\uff0b")

_REASON_EMPTY = "empty number"
_REASON_TOO_LONG = "too long to be a phone number"
_REASON_LETTERS = "contains letters"
_REASON_BAD_CHARS = "contains characters that are not digits"
_REASON_PLUS = "'+' is only allowed before the first digit"
_REASON_INVALID = "not a valid phone number"
_REASON_NOT_MOBILE = "not a mobile number"


@dataclass(frozen=True, slots=True)
class Normalized:
    """A recipient that can be stored, priced and routed as is."""

    e164: str
    country_code: int
    region: str | None


class InvalidNumber(ValueError):
    """Refusal of one recipient; ``str()`` is a short reason safe to show the customer."""


# A verdict on one reading of the digits: (country code, national significant
# number, region, number type), or None when the reading is not a valid number.
_Reading = tuple[int, str, str, int] | None


class _Unsure(Exception):
    """The fast path met a shape it does not replicate; phonenumbers must decide."""


_UNSURE = _Unsure()


def _desc_entry(desc: PhoneNumberDesc | None) -> tuple[frozenset[int], re.Pattern[str]] | None:
    """Pre-compile a PhoneNumberDesc the way _is_number_matching_desc reads it."""
    if desc is None or not desc.national_number_pattern:
        return None
    return frozenset(desc.possible_length), re.compile(desc.national_number_pattern)


def _for_length(
    entry: tuple[frozenset[int], re.Pattern[str]] | None, length: int
) -> re.Pattern[str] | None:
    """The pattern to try for numbers of this length, or None if the desc cannot match."""
    if entry is None:
        return None
    lengths, pattern = entry
    if lengths and length not in lengths:
        return None
    return pattern


class _Plan:
    """One region's metadata, pre-digested for the fast path.

    Every method mirrors a private phonenumbers helper (named in its
    docstring) and must stay behaviourally identical to it.
    """

    __slots__ = (
        "by_length",
        "country_code",
        "country_code_str",
        "general",
        "idd",
        "leading_digits",
        "length_verdicts",
        "national_prefix",
        "transform",
    )

    def __init__(self, metadata: PhoneMetadata) -> None:
        if metadata.country_code is None or metadata.general_desc is None:
            raise _UNSURE
        general = metadata.general_desc
        self.country_code: int = metadata.country_code
        self.country_code_str = str(metadata.country_code)
        general_text = general.national_number_pattern
        self.general = re.compile(general_text) if general_text else None
        # A None prefix means phonenumbers' "NonMatch", which no digit string matches.
        prefix = metadata.international_prefix
        self.idd = re.compile(prefix) if prefix is not None else None
        prefix = metadata.national_prefix_for_parsing
        self.national_prefix = re.compile(prefix) if prefix else None
        self.transform = metadata.national_prefix_transform_rule or None
        if self.transform is not None and (
            self.national_prefix is None or self.national_prefix.groups == 0
        ):
            # phonenumbers would index an empty group tuple here; leave it to it.
            raise _UNSURE
        leading = metadata.leading_digits
        self.leading_digits = re.compile(leading) if leading is not None else None

        possible = general.possible_length
        if not possible:
            raise _UNSURE
        local = frozenset(general.possible_length_local_only)
        self.length_verdicts = tuple(
            _length_verdict(length, possible, local) for length in range(_TABLE_LENGTHS)
        )

        # _number_type_helper, unrolled per length: the descs in phonenumbers'
        # order of precedence, keeping only those that can match that length.
        general_entry = _desc_entry(general)
        specials = [
            (PhoneNumberType.PREMIUM_RATE, _desc_entry(metadata.premium_rate)),
            (PhoneNumberType.TOLL_FREE, _desc_entry(metadata.toll_free)),
            (PhoneNumberType.SHARED_COST, _desc_entry(metadata.shared_cost)),
            (PhoneNumberType.VOIP, _desc_entry(metadata.voip)),
            (PhoneNumberType.PERSONAL_NUMBER, _desc_entry(metadata.personal_number)),
            (PhoneNumberType.PAGER, _desc_entry(metadata.pager)),
            (PhoneNumberType.UAN, _desc_entry(metadata.uan)),
            (PhoneNumberType.VOICEMAIL, _desc_entry(metadata.voicemail)),
        ]
        fixed_entry = _desc_entry(metadata.fixed_line)
        mobile_entry = _desc_entry(metadata.mobile)
        same = metadata.same_mobile_and_fixed_line_pattern
        table: list[_TypeRow | None] = []
        for length in range(_TABLE_LENGTHS):
            general_pattern = _for_length(general_entry, length)
            if general_pattern is None:
                table.append(None)
                continue
            row_specials = tuple(
                (number_type, pattern)
                for number_type, entry in specials
                if (pattern := _for_length(entry, length)) is not None
            )
            table.append(
                _TypeRow(
                    general_pattern,
                    row_specials,
                    _for_length(fixed_entry, length),
                    _for_length(mobile_entry, length),
                    same,
                )
            )
        self.by_length = tuple(table)

    def number_type(self, nsn: str) -> int:
        """phonenumbers._number_type_helper."""
        length = len(nsn)
        if length >= _TABLE_LENGTHS:
            raise _UNSURE
        row = self.by_length[length]
        if row is None or row.general.fullmatch(nsn) is None:
            return PhoneNumberType.UNKNOWN
        for number_type, pattern in row.specials:
            if pattern.fullmatch(nsn) is not None:
                return number_type
        fixed = row.fixed
        if fixed is not None and fixed.fullmatch(nsn) is not None:
            if row.same_mobile_and_fixed:
                return PhoneNumberType.FIXED_LINE_OR_MOBILE
            mobile = row.mobile
            if mobile is not None and mobile.fullmatch(nsn) is not None:
                return PhoneNumberType.FIXED_LINE_OR_MOBILE
            return PhoneNumberType.FIXED_LINE
        if not row.same_mobile_and_fixed:
            mobile = row.mobile
            if mobile is not None and mobile.fullmatch(nsn) is not None:
                return PhoneNumberType.MOBILE
        return PhoneNumberType.UNKNOWN

    def is_viable(self, number: str) -> bool:
        """phonenumbers._match_national_number against the general desc (no length check)."""
        return self.general is not None and self.general.fullmatch(number) is not None

    def length_verdict(self, number: str) -> int:
        """phonenumbers._test_number_length for PhoneNumberType.UNKNOWN."""
        length = len(number)
        if length >= _TABLE_LENGTHS:
            raise _UNSURE
        return self.length_verdicts[length]

    def strip_national_prefix(self, number: str) -> str:
        """phonenumbers._maybe_strip_national_prefix_carrier_code, number part only."""
        prefix = self.national_prefix
        if not number or prefix is None:
            return number
        match = prefix.match(number)
        if match is None:
            return number
        viable_original = self.is_viable(number)
        transform = self.transform
        if transform is None or match.groups()[-1] is None:
            stripped = number[match.end() :]
        else:
            stripped = prefix.sub(transform, number, count=1)
        if viable_original and not self.is_viable(stripped):
            return number
        return stripped


@dataclass(frozen=True, slots=True)
class _TypeRow:
    """The patterns _number_type_helper may try for national numbers of one length."""

    general: re.Pattern[str]
    specials: tuple[tuple[int, re.Pattern[str]], ...]
    fixed: re.Pattern[str] | None
    mobile: re.Pattern[str] | None
    same_mobile_and_fixed: bool


def _length_verdict(length: int, possible: tuple[int, ...], local: frozenset[int]) -> int:
    """phonenumbers._test_number_length's decision for one length."""
    if length in local:
        return _LOCAL_ONLY
    if possible[0] == length:
        return _IS_POSSIBLE
    if possible[0] > length:
        return _TOO_SHORT
    if possible[-1] < length:
        return _TOO_LONG
    return _IS_POSSIBLE if length in possible[1:] else _INVALID_LENGTH


_MISSING = object()  # phonenumbers has no metadata for that region
_UNSUPPORTED = object()  # metadata the fast path does not replicate
_PLANS: dict[tuple[str, int], object] = {}


def _plan(country_code: int, region: str) -> _Plan | None:
    """The plan for phonenumbers' metadata_for_region_or_calling_code(country_code, region).

    None means there is no such metadata; raises _Unsure if the metadata uses
    something the fast path does not replicate.
    """
    key = (region, country_code if region == _NON_GEO_REGION else 0)
    plan = _PLANS.get(key)
    if plan is None:
        plan = _PLANS[key] = _build_plan(country_code, region)
    if isinstance(plan, _Plan):
        return plan
    if plan is _MISSING:
        return None
    raise _UNSURE


def _build_plan(country_code: int, region: str) -> object:
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
    if metadata is None:
        return _MISSING
    try:
        return _Plan(metadata)
    except _Unsure:
        return _UNSUPPORTED


# Country codes by their digits, to split "+254712…" without int() per attempt.
_COUNTRY_CODES: dict[str, int] = {str(code): code for code in COUNTRY_CODE_TO_REGION_CODE}


def _split_country_code(digits: str) -> tuple[int, str]:
    """phonenumbers._extract_country_code: (0, digits) when no code is recognised."""
    if digits[:1] == "0":
        return 0, digits
    for size in (1, 2, 3):
        if size > len(digits):
            break
        code = _COUNTRY_CODES.get(digits[:size])
        if code is not None:
            return code, digits[size:]
    return 0, digits


def _region_for(country_code: int, nsn: str) -> str | None:
    """phonenumbers.region_code_for_number."""
    regions = COUNTRY_CODE_TO_REGION_CODE.get(country_code)
    if regions is None:
        return None
    if len(regions) == 1:
        return regions[0]
    for region in regions:
        plan = _plan(country_code, region)
        if plan is None:
            continue
        if plan.leading_digits is not None:
            if plan.leading_digits.match(nsn) is not None:
                return region
        elif plan.number_type(nsn) != PhoneNumberType.UNKNOWN:
            return region
    return None


class NumberNormalizer:
    """Normalizes recipients of one account region; cheap enough for 30,000 per request."""

    __slots__ = ("_home", "_region")

    def __init__(self, default_region: str) -> None:
        region = default_region.strip().upper()
        if region not in SUPPORTED_REGIONS:
            raise ValueError(f"unknown region {default_region!r}")
        self._region = region
        try:
            self._home: _Plan | None = _plan(0, region)
        except _Unsure:
            self._home = None

    @property
    def default_region(self) -> str:
        return self._region

    def normalize(self, raw: str) -> Normalized:
        """Raises InvalidNumber with a customer-facing reason."""
        text = raw.strip()
        if len(text) > MAX_INPUT_LENGTH:
            raise InvalidNumber(_REASON_TOO_LONG)
        # The overwhelmingly common shapes skip the character-by-character scan.
        if text.isascii() and text.isdigit():
            digits, plus = text, False
        elif text[:1] == "+" and text.isascii() and text[1:].isdigit():
            digits, plus = text[1:], True
        else:
            digits, plus = _clean(text)

        reading = self._read(digits, plus)
        if reading is None and not plus and (digits[:1] != "0" or digits[:2] == "00"):
            # Read as international. ("+0…" would be the national reading again.)
            reading = self._read(digits[2:] if digits[:2] == "00" else digits, True)
        if reading is None:
            raise InvalidNumber(_REASON_INVALID)
        country_code, nsn, region, number_type = reading
        if number_type not in SMS_CAPABLE_TYPES:
            raise InvalidNumber(_REASON_NOT_MOBILE)
        return Normalized(f"+{country_code}{nsn}", country_code, region)

    def _read(self, digits: str, plus: bool) -> _Reading:
        """One reading of the digits, as parse + is_valid_number + number_type would give."""
        try:
            return self._fast_read(digits, plus)
        except _Unsure:
            return self._slow_read(digits, plus)

    def _fast_read(self, digits: str, plus: bool) -> _Reading:
        """Replays phonenumbers.parse for '[+]digits' (see its source for each step)."""
        home = self._home
        if home is None or len(digits) < 3:
            # Short inputs hit parse's viability and IDD-length rules; not worth replaying.
            raise _UNSURE
        country_code, nsn = _split_country_code(digits) if plus else (0, digits)
        if country_code == 0:
            # Without '+', or after a '+' not followed by a known country code (parse then
            # drops the '+' and retries), look for the region's IDD or its country code.
            idd = home.idd
            match = idd.match(digits) if idd is not None else None
            if match is not None and digits[match.end() : match.end() + 1] != "0":
                after = digits[match.end() :]
                if len(after) <= _MIN_NSN:
                    raise _UNSURE
                country_code, nsn = _split_country_code(after)
                if country_code == 0:
                    raise _UNSURE
            elif digits.startswith(home.country_code_str):
                candidate = home.strip_national_prefix(digits[len(home.country_code_str) :])
                if (not home.is_viable(digits) and home.is_viable(candidate)) or (
                    home.length_verdict(digits) == _TOO_LONG
                ):
                    country_code, nsn = home.country_code, candidate
            if plus and country_code == 0:
                return None  # "Could not interpret numbers after plus-sign."

        if country_code == 0:
            plan = home
            country_code = home.country_code
        else:
            # parse switches to the metadata of the code's main region.
            found = _plan(country_code, COUNTRY_CODE_TO_REGION_CODE[country_code][0])
            if found is None:
                raise _UNSURE
            plan = found
        if len(nsn) < _MIN_NSN:
            raise _UNSURE
        stripped = plan.strip_national_prefix(nsn)
        if plan.length_verdict(stripped) in (_IS_POSSIBLE, _TOO_LONG):
            nsn = stripped
        if len(nsn) > _MAX_NSN or len(nsn) < _MIN_NSN:
            raise _UNSURE

        region = _region_for(country_code, nsn)
        if region is None:
            return None
        number_plan = _plan(country_code, region)
        if number_plan is None:
            return None
        number_type = number_plan.number_type(nsn)
        if number_type == PhoneNumberType.UNKNOWN:
            return None
        return country_code, nsn, region, number_type

    def _slow_read(self, digits: str, plus: bool) -> _Reading:
        """The same reading done by phonenumbers itself, for shapes the fast path skips."""
        try:
            number = phonenumbers.parse(("+" if plus else "") + digits, self._region)
        except NumberParseException:
            return None
        if not phonenumbers.is_valid_number(number):
            return None
        region = phonenumbers.region_code_for_number(number)
        if region is None or number.country_code is None:
            return None
        e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
        nsn = e164[len(str(number.country_code)) + 1 :]
        return number.country_code, nsn, region, phonenumbers.number_type(number)


def _clean(text: str) -> tuple[str, bool]:
    """Digits and whether a '+' led them, for inputs with separators or other scripts' digits."""
    if not text:
        raise InvalidNumber(_REASON_EMPTY)
    digits: list[str] = []
    plus = False
    for char in text:
        if "0" <= char <= "9":
            digits.append(char)
        elif char in _SEPARATORS or char.isspace():
            continue
        elif char.isdecimal():
            # Arabic-Indic, full-width… digits, which phonenumbers reads too.
            digits.append(str(unicodedata.decimal(char)))
        elif char in _PLUS_SIGNS and not plus and not digits:
            plus = True
        else:
            raise InvalidNumber(_rejection(text))
    if not digits:
        raise InvalidNumber(_REASON_INVALID)
    return "".join(digits), plus


def _rejection(text: str) -> str:
    """The most telling reason for a malformed input, whichever character came first."""
    if any(char.isalpha() for char in text):
        return _REASON_LETTERS
    if any(
        not (char.isdecimal() or char.isspace() or char in _SEPARATORS or char in _PLUS_SIGNS)
        for char in text
    ):
        return _REASON_BAD_CHARS
    return _REASON_PLUS


@lru_cache(maxsize=512)
def normalizer_for(region: str) -> NumberNormalizer:
    """Shared per region: accounts of one region reuse one normalizer."""
    return NumberNormalizer(region)
