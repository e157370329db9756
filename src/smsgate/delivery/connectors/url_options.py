"""Connection options written as a URL's query (``?window=10&tps=50``).

Every connector kind takes its options this way, so an operator configures
an SMPP bind and an HTTP upstream alike, and a value that cannot be read is
refused with the option's name, never half-applied.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

Reader = Callable[[str], Any]
Options = dict[str, tuple[str, Reader]]
"""Option name -> (settings field, reader of its text)."""


def read_options(query: str, options: Options) -> dict[str, Any]:
    """The settings fields ``query`` sets; ValueError naming the option at fault."""
    given = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(given) - set(options))
    if unknown:
        raise ValueError(f"unknown option {unknown[0]!r}; known: {', '.join(sorted(options))}")
    values: dict[str, Any] = {}
    for option, raw in given.items():
        field_name, read = options[option]
        try:
            values[field_name] = read(raw)
        except ValueError as exc:
            raise ValueError(f"{option}: {exc}") from None
    return values


def whole(low: int) -> Callable[[str], int]:
    def read(raw: str) -> int:
        if not raw.isascii() or not raw.isdigit() or int(raw) < low:
            raise ValueError(f"expected a whole number of at least {low}, not {raw!r}")
        return int(raw)

    return read


def non_negative(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"expected a number, not {raw!r}") from None
    if not 0 <= value < 1e9:
        raise ValueError(f"expected a non-negative number, not {raw!r}")
    return value


def positive(raw: str) -> float:
    value = non_negative(raw)
    if value <= 0:
        raise ValueError(f"expected a number above 0, not {raw!r}")
    return value


def flag(raw: str) -> bool:
    if raw not in ("0", "1"):
        raise ValueError(f"expected 0 or 1, not {raw!r}")
    return raw == "1"


def name(raw: str) -> str:
    if not raw or len(raw) > 64 or not raw.isprintable():
        raise ValueError("expected 1 to 64 printable characters")
    return raw
