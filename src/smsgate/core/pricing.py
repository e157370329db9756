"""Per-destination prices, in credits per segment.

Money is integer hundredths of a credit (``CREDIT_SCALE``) everywhere below the
wire: balances and ledger entries must add up exactly, which floats do not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from functools import cached_property

CREDIT_SCALE = 100


def to_units(credits: str | int | float | Decimal) -> int:
    """Credits as typed by an operator ("12.5") to integer hundredths."""
    try:
        value = Decimal(str(credits))
    except InvalidOperation as exc:
        raise ValueError(f"not a number of credits: {credits!r}") from exc
    units = value * CREDIT_SCALE
    if units != units.to_integral_value():
        raise ValueError(f"credits have at most two decimals: {credits!r}")
    return int(units)


def credit_units(text: object) -> int | None:
    """A credit amount an upstream wrote ("545.00"), in units; None if it is not one."""
    if not isinstance(text, str | int | float) or len(str(text)) > 24:
        return None
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    return int((value * CREDIT_SCALE).to_integral_value(rounding=ROUND_FLOOR))


def format_units(units: int) -> str:
    """Hundredths to the two-decimal string the dialects print ("545.00")."""
    sign = "-" if units < 0 else ""
    whole, cents = divmod(abs(units), CREDIT_SCALE)
    return f"{sign}{whole}.{cents:02d}"


@dataclass(frozen=True)
class PriceTable:
    """Price per segment by longest matching E.164 prefix, else ``default``."""

    default: int = CREDIT_SCALE
    by_prefix: Mapping[str, int] = field(default_factory=dict)

    def per_segment(self, e164: str) -> int:
        if not self.by_prefix:
            return self.default
        digits = e164.lstrip("+")
        for length in self._lengths:
            price = self.by_prefix.get(digits[:length])
            if price is not None:
                return price
        return self.default

    @cached_property
    def _lengths(self) -> list[int]:
        return sorted({len(prefix) for prefix in self.by_prefix}, reverse=True)

    @classmethod
    def parse(cls, raw: str) -> PriceTable:
        """Read ``"*=1,254=0.8,44=3.5"`` (``*`` sets the default)."""
        default = CREDIT_SCALE
        by_prefix: dict[str, int] = {}
        for item in filter(None, (part.strip() for part in raw.split(","))):
            prefix, sep, price = item.partition("=")
            if not sep:
                raise ValueError(f"expected prefix=credits, got {item!r}")
            units = to_units(price.strip())
            if units < 0:
                raise ValueError(f"negative price for {prefix!r}")
            prefix = prefix.strip().lstrip("+")
            if prefix == "*":
                default = units
            elif prefix.isdigit():
                by_prefix[prefix] = units
            else:
                raise ValueError(f"prefix must be digits or '*', got {prefix!r}")
        return cls(default=default, by_prefix=by_prefix)
