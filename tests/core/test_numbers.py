"""smsgate.core.numbers must decide exactly as phonenumbers does, only faster.

The fast path replays phonenumbers' parsing on pre-compiled metadata, so the
proof that it is right is comparison: ``reference`` below does the same job
plainly with phonenumbers.parse / is_valid_number / number_type, and the
property tests feed both thousands of generated inputs.
"""

from __future__ import annotations

import random
import re
import unicodedata

import phonenumbers
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from smsgate.core.numbers import InvalidNumber, Normalized, NumberNormalizer, normalizer_for

REGIONS = [
    "KE", "NG", "US", "GB", "IT", "DE", "IN", "BR", "RU", "KZ", "CA", "ZA", "UG", "TZ", "FR",
    # Shared country codes seen from the smaller region, and a national-prefix transform rule.
    "GG", "VA", "AR", "MX",
]  # fmt: skip

SMS_TYPES = {
    PhoneNumberType.MOBILE,
    PhoneNumberType.FIXED_LINE_OR_MOBILE,
    PhoneNumberType.PERSONAL_NUMBER,
    PhoneNumberType.VOIP,
}

ALL_TYPES = [
    PhoneNumberType.MOBILE,
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.TOLL_FREE,
    PhoneNumberType.PREMIUM_RATE,
    PhoneNumberType.SHARED_COST,
    PhoneNumberType.VOIP,
    PhoneNumberType.PERSONAL_NUMBER,
    PhoneNumberType.PAGER,
    PhoneNumberType.UAN,
    PhoneNumberType.VOICEMAIL,
]

_ALLOWED = re.compile(r"[\s().\-]*[+\uff0b]?[\d\s().\-]*")


def reference(raw: str, region: str) -> Normalized | str:
    """The documented behaviour, written plainly on top of phonenumbers (a reason on refusal)."""
    text = raw.strip()
    if not text:
        return "empty number"
    if len(text) > 20:
        return "too long to be a phone number"
    if _ALLOWED.fullmatch(text) is None:
        if any(char.isalpha() for char in text):
            return "contains letters"
        if re.search(r"[^\d\s().\-+\uff0b]", text):
            return "contains characters that are not digits"
        return "'+' is only allowed before the first digit"
    digits = phonenumbers.normalize_digits_only(text)
    plus = "+" in text or "\uff0b" in text
    if not digits:
        return "not a valid phone number"

    def valid(candidate: str) -> phonenumbers.PhoneNumber | None:
        try:
            number = phonenumbers.parse(candidate, region)
        except NumberParseException:
            return None
        return number if phonenumbers.is_valid_number(number) else None

    number = valid(("+" if plus else "") + digits)
    if number is None and not plus:
        number = valid("+" + (digits[2:] if digits.startswith("00") else digits))
    if number is None:
        return "not a valid phone number"
    if phonenumbers.number_type(number) not in SMS_TYPES:
        return "not a mobile number"
    assert number.country_code is not None
    return Normalized(
        phonenumbers.format_number(number, PhoneNumberFormat.E164),
        number.country_code,
        phonenumbers.region_code_for_number(number),
    )


def outcome(raw: str, region: str) -> Normalized | str:
    try:
        return normalizer_for(region).normalize(raw)
    except InvalidNumber as exc:
        return str(exc)


def check(raw: str, region: str) -> None:
    assert outcome(raw, region) == reference(raw, region), (raw, region)


# --- examples -------------------------------------------------------------------------

KE_MOBILE = Normalized("+254712345678", 254, "KE")


@pytest.mark.parametrize(
    "raw",
    [
        "0712345678",
        "712345678",
        "+254712345678",
        "254712345678",
        "00254712345678",
        "+254 712-345 678",
        "  0712 345 678\n",
        "(0712) 345.678",
        "(+254) 712 345 678",
        "+254 (0) 712 345 678",
        "\u0660\u0667\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668",  # Arabic-Indic digits
        "\uff0b254712345678",  # full-width plus
    ],
)
def test_kenyan_mobile_forms(raw: str) -> None:
    assert normalizer_for("KE").normalize(raw) == KE_MOBILE
    check(raw, "KE")


def test_kenyan_landline_is_not_mobile() -> None:
    with pytest.raises(InvalidNumber, match=r"^not a mobile number$"):
        normalizer_for("KE").normalize("+254202222222")
    with pytest.raises(InvalidNumber, match=r"^not a mobile number$"):
        normalizer_for("KE").normalize("0202222222")


def test_foreign_numbers_from_kenya() -> None:
    ke = normalizer_for("KE")
    # NANPA numbers cannot be told from mobiles: FIXED_LINE_OR_MOBILE is accepted.
    assert ke.normalize("+1 (212) 555-0123") == Normalized("+12125550123", 1, "US")
    assert ke.normalize("0012125550123") == Normalized("+12125550123", 1, "US")
    assert ke.normalize("+1 416 555 0123") == Normalized("+14165550123", 1, "CA")
    uk = ke.normalize("+44 7400 123456")
    assert uk == Normalized("+447400123456", 44, "GB")
    # Without '+', a number that is no Kenyan number is read as international.
    assert ke.normalize("447400123456") == uk


def test_uk_mobile_in_its_own_region() -> None:
    gb = normalizer_for("GB")
    assert gb.normalize("07400 123456") == Normalized("+447400123456", 44, "GB")
    assert gb.normalize("+44 (0)7400 123456") == Normalized("+447400123456", 44, "GB")
    with pytest.raises(InvalidNumber, match=r"^not a mobile number$"):
        gb.normalize("020 7946 0000")


def test_shared_country_codes_report_the_matching_region() -> None:
    assert normalizer_for("RU").normalize("+7 701 234 5678").region == "KZ"
    assert normalizer_for("KZ").normalize("8 912 345 6789").region == "RU"
    assert normalizer_for("GB").normalize("07781 123456").region == "GG"


def test_italian_leading_zero_is_kept() -> None:
    # Italian fixed lines keep their leading 0 in E.164; they are still not mobiles.
    check("+39 06 6982 0000", "KE")
    assert reference("+39 06 6982 0000", "KE") == "not a mobile number"
    assert normalizer_for("IT").normalize("312 345 6789") == Normalized("+393123456789", 39, "IT")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty number"),
        ("   ", "empty number"),
        ("0712abc678", "contains letters"),
        ("+254712345678 ext 12", "contains letters"),
        ("0712#345678", "contains characters that are not digits"),
        ("0712/345678", "contains characters that are not digits"),
        ("0712+345678", "'+' is only allowed before the first digit"),
        ("++254712345678", "'+' is only allowed before the first digit"),
        ("+254 712 345 678 901 234", "too long to be a phone number"),
        ("1" * 21, "too long to be a phone number"),
        ("()", "not a valid phone number"),
        ("+", "not a valid phone number"),
        ("12345", "not a valid phone number"),
        ("0712345", "not a valid phone number"),
        ("+999712345678", "not a valid phone number"),
        ("1" * 20, "not a valid phone number"),
    ],
)
def test_refusals(raw: str, reason: str) -> None:
    with pytest.raises(InvalidNumber) as caught:
        normalizer_for("KE").normalize(raw)
    assert str(caught.value) == reason
    assert reference(raw, "KE") == reason


def test_unknown_region_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="unknown region"):
        NumberNormalizer("XX")
    assert NumberNormalizer("ke").normalize("0712345678") == KE_MOBILE


def test_normalizer_for_is_shared() -> None:
    assert normalizer_for("KE") is normalizer_for("KE")


def test_every_region_and_type_agrees() -> None:
    """Every example number phonenumbers knows, in its own region and from Kenya."""
    checked = 0
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for number_type in ALL_TYPES:
            example_number = phonenumbers.example_number_for_type(region, number_type)
            if example_number is None:
                continue
            nsn = phonenumbers.national_significant_number(example_number)
            cc = str(example_number.country_code)
            prefix = phonenumbers.ndd_prefix_for_region(region, True) or ""
            for home in (region, "KE", "US"):
                for raw in (f"+{cc}{nsn}", f"00{cc}{nsn}", f"{cc}{nsn}", prefix + nsn, nsn):
                    check(raw, home)
                    checked += 1
    for code in phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS:
        example_number = phonenumbers.example_number_for_non_geo_entity(code)
        if example_number is not None:
            nsn = phonenumbers.national_significant_number(example_number)
            for home in ("KE", "US"):
                check(f"+{code}{nsn}", home)
                check(f"00{code}{nsn}", home)
    assert checked > 5000


# --- properties -----------------------------------------------------------------------

_DIGITS = st.text(alphabet="0123456789", min_size=4, max_size=17)
_SOME_DIGITS = st.text(alphabet="0123456789", max_size=3)


def _dialling_prefixes(region: str) -> tuple[str, str]:
    """(international, national) prefixes as a customer of the region would dial them."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    assert metadata is not None
    idd = metadata.preferred_international_prefix or metadata.international_prefix or "00"
    if not idd.isdigit():
        idd = "00"
    return idd, phonenumbers.ndd_prefix_for_region(region, True) or "0"


@st.composite
def example_based(draw: st.DrawFn, home: str, source_regions: list[str]) -> str:
    """An example number of the home or another region, mutated, written in some shape.

    The shapes stack international and national prefixes in the ways that
    steer phonenumbers' parser down its different branches.
    """
    region = draw(st.sampled_from([home, *source_regions]))
    number_type = draw(
        st.sampled_from([PhoneNumberType.MOBILE] * 4 + [PhoneNumberType.FIXED_LINE, *ALL_TYPES])
    )
    example_number = (
        phonenumbers.example_number_for_type(region, number_type)
        or phonenumbers.example_number_for_type(region, PhoneNumberType.MOBILE)
        or phonenumbers.example_number(region)
    )
    if example_number is None:  # a region phonenumbers has no numbers for (e.g. AQ)
        return draw(_DIGITS)
    nsn = phonenumbers.national_significant_number(example_number)
    keep = draw(st.integers(min_value=max(0, len(nsn) - 5), max_value=len(nsn)))
    replaced = len(nsn) - keep
    tail = draw(
        st.text(alphabet="0123456789", min_size=max(0, replaced - 1), max_size=replaced + 1)
    )
    nsn = nsn[:keep] + tail
    cc = str(example_number.country_code)
    _, national = _dialling_prefixes(region)
    idd, _ = _dialling_prefixes(home)
    return draw(
        st.sampled_from(
            [
                f"+{cc}{nsn}",
                f"00{cc}{nsn}",
                f"{idd}{cc}{nsn}",
                f"{cc}{nsn}",
                f"{national}{nsn}",
                nsn,
                f"+{cc}{national}{nsn}",
                f"{cc}{national}{nsn}",
                f"{cc}{national}{national}{nsn}",
                f"{national}{national}{nsn}",
                f"+{national}{nsn}",
                f"{idd}{national}{nsn}",
                f"+{idd}{cc}{nsn}",
            ]
        )
    )


@st.composite
def cases(draw: st.DrawFn, homes: list[str], sources: list[str]) -> tuple[str, str]:
    """(raw input, account region): example-based most of the time, else random digits."""
    home = draw(st.sampled_from(homes))
    if draw(st.integers(0, 3)) == 0:
        prefix = draw(st.sampled_from(["+", "00", "0", "", *_dialling_prefixes(home)]))
        raw = prefix + draw(_DIGITS)
    else:
        raw = draw(example_based(home, sources))
    if draw(st.booleans()):  # a customer's typo or a truncated paste
        cut = draw(st.integers(0, len(raw)))
        raw = raw[:cut] + draw(_SOME_DIGITS) + raw[cut + draw(st.integers(0, 2)) :]
    return draw(with_separators(st.just(raw))), home


@st.composite
def with_separators(draw: st.DrawFn, numbers: st.SearchStrategy[str]) -> str:
    """Sometimes sprinkle the separators customers type between the characters."""
    raw = draw(numbers)
    if draw(st.booleans()):
        return raw
    out = []
    for index, char in enumerate(raw):
        if index and draw(st.integers(0, 4)) == 0:
            out.append(draw(st.sampled_from([" ", "-", ".", "(", ")", " - "])))
        out.append(char)
    return "".join(out)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases(REGIONS, REGIONS))
@example(case=("254712345678", "KE"))
@example(case=("00254712345678", "KE"))
@example(case=("+000254712345678", "KE"))
@example(case=("25400712345678", "KE"))
@example(case=("011 44 7400 123456", "US"))
@example(case=("0 11 15 2345 6789", "AR"))
@example(case=("+54 9 11 2345 6789", "AR"))
@example(case=("06 698 12345", "VA"))
@example(case=("+13937910", "VG"))  # parse switches to the US metadata for +1
@example(case=("01113335173", "BM"))
def test_agrees_with_phonenumbers(case: tuple[str, str]) -> None:
    check(*case)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases(sorted(phonenumbers.SUPPORTED_REGIONS), sorted(phonenumbers.SUPPORTED_REGIONS)))
def test_agrees_with_phonenumbers_in_every_region(case: tuple[str, str]) -> None:
    check(*case)


@settings(max_examples=500, deadline=None)
@given(raw=st.text(alphabet="0123456789+-.() x#٣\t", max_size=24), region=st.sampled_from(REGIONS))
def test_agrees_on_arbitrary_text(raw: str, region: str) -> None:
    check(raw, region)


def test_formatted_examples_agree() -> None:
    """Numbers as phonenumbers itself prints them, as customers copy them."""
    for region in REGIONS:
        for number_type in ALL_TYPES:
            example_number = phonenumbers.example_number_for_type(region, number_type)
            if example_number is None:
                continue
            for fmt in (PhoneNumberFormat.NATIONAL, PhoneNumberFormat.INTERNATIONAL):
                raw = phonenumbers.format_number(example_number, fmt)
                check(raw, region)
                check(raw, "KE")


# --- the fast path is the path ------------------------------------------------------


def _kenyan_numbers(count: int) -> list[str]:
    rng = random.Random(254)
    subscribers: set[str] = set()
    while len(subscribers) < count:
        subscribers.add(f"7{rng.randrange(10**8):08d}")
    shapes = ["254{}", "+254{}", "0{}", "00254{}"]
    return [shapes[index % 4].format(sub) for index, sub in enumerate(sorted(subscribers))]


def test_typical_inputs_never_need_phonenumbers(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: NumberNormalizer, digits: str, plus: bool) -> None:
        raise AssertionError(f"slow path for {digits!r}")

    monkeypatch.setattr(NumberNormalizer, "_slow_read", refuse)
    normalizer = NumberNormalizer("KE")
    for raw in _kenyan_numbers(2000):
        normalizer.normalize(raw)
    for raw in ("+447400123456", "+12125550123", "+2348031234567", "+919876543210"):
        normalizer.normalize(raw)


def test_unicode_digits_are_decimal_only() -> None:
    # Superscripts are digits to str.isdigit but not decimal digits.
    assert unicodedata.decimal("\u0663") == 3
    with pytest.raises(InvalidNumber, match="not digits"):
        normalizer_for("KE").normalize("07123456\u00b2\u00b2")
