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
from typing import NamedTuple

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


# Not frozen: a frozen dataclass costs three times as much to build, and a
# bulk request builds 30,000 of these. Treat instances as immutable.
@dataclass(slots=True)
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

# Named groups of the per-length classifier regexes, mapped to phonenumbers' types.
_GROUP_TYPES: dict[str | None, int] = {
    "premium_rate": PhoneNumberType.PREMIUM_RATE,
    "toll_free": PhoneNumberType.TOLL_FREE,
    "shared_cost": PhoneNumberType.SHARED_COST,
    "voip": PhoneNumberType.VOIP,
    "personal_number": PhoneNumberType.PERSONAL_NUMBER,
    "pager": PhoneNumberType.PAGER,
    "uan": PhoneNumberType.UAN,
    "voicemail": PhoneNumberType.VOICEMAIL,
    "fixed_line_or_mobile": PhoneNumberType.FIXED_LINE_OR_MOBILE,
    "fixed_line": PhoneNumberType.FIXED_LINE,
    "mobile": PhoneNumberType.MOBILE,
}
_SPECIAL_DESCS = (  # _number_type_helper's order of precedence
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
)

_Desc = tuple[frozenset[int], str]


def _desc(desc: PhoneNumberDesc | None) -> _Desc | None:
    """A PhoneNumberDesc as _is_number_matching_desc reads it: lengths, pattern."""
    if desc is None or not desc.national_number_pattern:
        return None
    return frozenset(desc.possible_length), desc.national_number_pattern


class _Descs(NamedTuple):
    """What _number_type_helper looks at in a region's metadata."""

    general: _Desc | None
    specials: list[tuple[str, _Desc | None]]  # in order of precedence
    fixed: _Desc | None
    mobile: _Desc | None
    same_mobile_and_fixed: bool


def _applies(desc: _Desc | None, length: int) -> str | None:
    """The desc's pattern if a national number of this length could match it."""
    if desc is None:
        return None
    lengths, pattern = desc
    if lengths and length not in lengths:
        return None
    return pattern


def _likely(length: int, descs: _Descs) -> re.Pattern[str] | None:
    """A regex matching exactly the numbers of this length that _number_type_helper
    calls MOBILE (FIXED_LINE_OR_MOBILE where both share one pattern).

    That is what most recipients are, and this group-free check with negative
    lookaheads for the types that take precedence is cheaper than the full
    classifier.
    """
    general, specials, fixed, mobile, same_mobile_and_fixed = descs
    general_pattern = _applies(general, length)
    target = _applies(fixed if same_mobile_and_fixed else mobile, length)
    if general_pattern is None or target is None:
        return None
    preceding = [pattern for _, desc in specials if (pattern := _applies(desc, length)) is not None]
    if not same_mobile_and_fixed and (fixed_pattern := _applies(fixed, length)) is not None:
        preceding.append(fixed_pattern)
    exclusion = f"(?!(?:{'|'.join(preceding)})\\Z)" if preceding else ""
    return re.compile(f"(?=(?:{general_pattern})\\Z){exclusion}(?:{target})")


def _classifier(length: int, descs: _Descs) -> re.Pattern[str] | None:
    """phonenumbers._number_type_helper for one length, as a single regex.

    Calling ``fullmatch`` once instead of up to eleven times is most of the
    speed-up. The general desc is a lookahead; the typed descs are named
    alternatives in the helper's order of precedence, and a backtracking
    ``fullmatch`` settles on the first alternative that matches the whole
    number, so ``lastgroup`` names the type the helper would return. None
    means the helper answers UNKNOWN for every number of this length.
    """
    general, specials, fixed, mobile, same_mobile_and_fixed = descs
    general_pattern = _applies(general, length)
    if general_pattern is None:
        return None
    alternatives = [
        f"(?P<{name}>{pattern})"
        for name, desc in specials
        if (pattern := _applies(desc, length)) is not None
    ]
    fixed_pattern = _applies(fixed, length)
    mobile_pattern = _applies(mobile, length)
    if fixed_pattern is not None:
        if same_mobile_and_fixed:
            alternatives.append(f"(?P<fixed_line_or_mobile>{fixed_pattern})")
        else:
            if mobile_pattern is not None:
                alternatives.append(
                    f"(?P<fixed_line_or_mobile>(?=(?:{mobile_pattern})\\Z)(?:{fixed_pattern}))"
                )
            alternatives.append(f"(?P<fixed_line>{fixed_pattern})")
    if not same_mobile_and_fixed and mobile_pattern is not None:
        alternatives.append(f"(?P<mobile>{mobile_pattern})")
    if not alternatives:
        return None
    classifier = re.compile(f"(?=(?:{general_pattern})\\Z)(?:{'|'.join(alternatives)})")
    if classifier.groups != len(alternatives):
        raise _UNSURE  # a desc pattern with groups of its own would confuse lastgroup
    return classifier


class _Plan:
    """One region's metadata, pre-digested for the fast path.

    Every method mirrors a private phonenumbers helper (named in its
    docstring) and must stay behaviourally identical to it.
    """

    __slots__ = (
        "country_code",
        "country_code_str",
        "descs",
        "general",
        "idd",
        "leading_digits",
        "length_verdicts",
        "likely_type",
        "national_prefix",
        "sole_region",
        "transform",
        "typers",
    )

    def __init__(self, metadata: PhoneMetadata) -> None:
        general = metadata.general_desc
        if metadata.country_code is None or general is None or not general.possible_length:
            raise _UNSURE
        self.country_code: int = metadata.country_code
        self.country_code_str = str(metadata.country_code)
        regions = COUNTRY_CODE_TO_REGION_CODE.get(self.country_code, ())
        # region_code_for_number needs no pattern when the code has a single region.
        self.sole_region = regions[0] if len(regions) == 1 and regions[0] == metadata.id else None
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
            raise _UNSURE  # phonenumbers would index an empty group tuple here
        leading = metadata.leading_digits
        self.leading_digits = re.compile(leading) if leading is not None else None

        possible = general.possible_length
        local = frozenset(general.possible_length_local_only)
        self.length_verdicts = tuple(
            _length_verdict(length, possible, local) for length in range(_TABLE_LENGTHS)
        )
        same = metadata.same_mobile_and_fixed_line_pattern
        self.descs = _Descs(
            _desc(general),
            [(name, _desc(getattr(metadata, name))) for name in _SPECIAL_DESCS],
            _desc(metadata.fixed_line),
            _desc(metadata.mobile),
            same,
        )
        self.likely_type = PhoneNumberType.FIXED_LINE_OR_MOBILE if same else PhoneNumberType.MOBILE
        # Per length (likely, classifier), compiled on first use: a region's plan is
        # needed for a handful of lengths, and +1 alone spans 25 regions.
        self.typers: list[tuple[re.Pattern[str] | None, re.Pattern[str] | None] | None]
        self.typers = [None] * _TABLE_LENGTHS

    def number_type(self, nsn: str) -> int:
        """phonenumbers._number_type_helper."""
        length = len(nsn)
        if length >= _TABLE_LENGTHS:
            raise _UNSURE
        likely, classifier = self.typers[length] or self.typer(length)
        if likely is not None and likely.fullmatch(nsn) is not None:
            return self.likely_type
        if classifier is None:
            return PhoneNumberType.UNKNOWN
        match = classifier.fullmatch(nsn)
        if match is None:
            return PhoneNumberType.UNKNOWN
        return _GROUP_TYPES[match.lastgroup]

    def typer(self, length: int) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
        """The (likely, classifier) regexes for national numbers of this length."""
        typer = self.typers[length] = (
            _likely(length, self.descs),
            _classifier(length, self.descs),
        )
        return typer

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
_MAIN_PLANS: dict[int, _Plan] = {}  # by country code, for its main region


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


def _main_plan(country_code: int) -> _Plan:
    """The metadata parse switches to once it has read a country code."""
    plan = _plan(country_code, COUNTRY_CODE_TO_REGION_CODE[country_code][0])
    if plan is None:
        raise _UNSURE
    _MAIN_PLANS[country_code] = plan
    return plan


def _country_code_table() -> dict[str, tuple[int, int]]:
    """(code, its length) for every 3-digit start, as _extract_country_code would split it."""
    table: dict[str, tuple[int, int]] = {}
    for start in range(100, 1000):
        text = str(start)
        for size in (1, 2, 3):
            if int(text[:size]) in COUNTRY_CODE_TO_REGION_CODE:
                table[text] = (int(text[:size]), size)
                break
    return table


_COUNTRY_CODES = _country_code_table()


def _split_country_code(digits: str) -> tuple[int, str]:
    """phonenumbers._extract_country_code, for at least 3 digits: (0, digits) if none."""
    found = _COUNTRY_CODES.get(digits[:3])
    if found is None:
        return 0, digits
    return found[0], digits[found[1] :]


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
        if text.isdigit() and text.isascii():
            digits, plus = text, False
        elif text[:1] == "+" and text[1:].isdigit() and text.isascii():
            digits, plus = text[1:], True
        else:
            digits, plus = _clean(text)

        try:
            reading = self._fast_read(digits, plus)
        except _Unsure:
            reading = self._slow_read(digits, plus)
        if reading is None and not plus and (digits[:1] != "0" or digits[:2] == "00"):
            # Read as international. ("+0…" would only be the national reading again.)
            digits = digits[2:] if digits[:2] == "00" else digits
            try:
                reading = self._fast_read(digits, True)
            except _Unsure:
                reading = self._slow_read(digits, True)
        if reading is None:
            raise InvalidNumber(_REASON_INVALID)
        country_code, nsn, region, number_type = reading
        if number_type not in SMS_CAPABLE_TYPES:
            raise InvalidNumber(_REASON_NOT_MOBILE)
        return Normalized(f"+{country_code}{nsn}", country_code, region)

    def _fast_read(self, digits: str, plus: bool) -> _Reading:
        """phonenumbers.parse + is_valid_number + number_type, replayed for '[+]digits'.

        The comments quote the outcome phonenumbers reaches at each step; a
        parse exception is an invalid reading.
        """
        home = self._home
        if home is None or len(digits) < 3:
            raise _UNSURE  # short inputs meet parse's viability rules; not worth replaying
        country_code = 0
        nsn = digits
        if plus and (found := _COUNTRY_CODES.get(digits[:3])) is not None:
            country_code, size = found
            nsn = digits[size:]
        settled = False  # nsn is known to be left alone by home.strip_national_prefix
        if country_code == 0:
            # Without '+', or after a '+' not followed by a known country code (parse then
            # drops the '+' and retries): the region's IDD, or its own country code.
            idd = home.idd
            match = idd.match(digits) if idd is not None else None
            if match is not None and digits[match.end() : match.end() + 1] != "0":
                after = digits[match.end() :]
                if len(after) <= _MIN_NSN:
                    return None  # TOO_SHORT_AFTER_IDD
                country_code, nsn = _split_country_code(after)
                if country_code == 0:
                    return None  # INVALID_COUNTRY_CODE
            elif digits.startswith(home.country_code_str):
                rest = digits[len(home.country_code_str) :]
                prefix = home.national_prefix
                candidate = (
                    home.strip_national_prefix(rest)
                    if prefix is not None and prefix.match(rest)
                    else rest
                )
                if (not home.is_viable(digits) and home.is_viable(candidate)) or (
                    home.length_verdict(digits) == _TOO_LONG
                ):
                    country_code, nsn = home.country_code, candidate
                    settled = candidate == rest
            if plus and country_code == 0:
                return None  # INVALID_COUNTRY_CODE: "Could not interpret numbers after plus-sign."

        if country_code == 0:
            plan = home
            country_code = home.country_code
        else:
            plan = _MAIN_PLANS.get(country_code) or _main_plan(country_code)
        if len(nsn) < _MIN_NSN:
            return None  # TOO_SHORT_NSN
        prefix = plan.national_prefix
        if not (settled and plan is home) and prefix is not None and prefix.match(nsn):
            stripped = plan.strip_national_prefix(nsn)
            if stripped != nsn and plan.length_verdict(stripped) in (_IS_POSSIBLE, _TOO_LONG):
                nsn = stripped
        if not _MIN_NSN <= len(nsn) <= _MAX_NSN:
            return None  # TOO_LONG / TOO_SHORT_NSN

        region = plan.sole_region
        if region is None:
            region = _region_for(country_code, nsn)
            number_plan = _plan(country_code, region) if region is not None else None
            if region is None or number_plan is None:
                return None
            plan = number_plan
        # plan.number_type(nsn), inlined.
        likely, classifier = plan.typers[len(nsn)] or plan.typer(len(nsn))
        if likely is not None and likely.fullmatch(nsn) is not None:
            return country_code, nsn, region, plan.likely_type
        match = classifier.fullmatch(nsn) if classifier is not None else None
        if match is None:
            return None
        return country_code, nsn, region, _GROUP_TYPES[match.lastgroup]

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
