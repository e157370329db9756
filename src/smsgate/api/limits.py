"""The limits every request meets at the door, before anything is looked up or stored.

A request that breaks one is refused whole, with the dialect's own "malformed"
code, so nothing it carries can reach the store (PostgreSQL refuses a NUL in
text, and a refused statement inside a shared group commit would fail other
tenants' work), the reply renderer (which cannot serialise arbitrarily deep
JSON) or the carrier (which cannot carry control characters).

Decided once for all dialects and documented in the README ("Limits and
abuse"): NUL and the C0 control characters other than tab, line feed, form
feed and carriage return are *refused*, not removed, so a client learns its
data is wrong instead of sending something else than it meant.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

MAX_JSON_DEPTH = 8
"""Nesting of a JSON body: the deepest real request (a sendbulk entry's field) is 3."""

MAX_FIELD_CHARS = 1_000
"""A field that is not a message body or a list of recipients (ids, keys, senders...)."""

MAX_ID = 2**63 - 1
"""Ids are signed 64-bit integers in the store."""

_MAX_ID_DIGITS = len(str(MAX_ID))

# What a carrier cannot carry and PostgreSQL cannot store (NUL): C0 controls
# except \t \n \x0c \r. DEL is left alone: GSM maps it like any unknown character.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0e-\x1f]")


def forbidden_character(text: str) -> str | None:
    """A description of the first character no field may hold, or None."""
    found = _FORBIDDEN.search(text)
    if found is None:
        return None
    return f"control character U+{ord(found.group()):04X} at position {found.start()}"


def field_problem(fields: dict[str, Any], long_fields: Collection[str]) -> str | None:
    """Why these request fields break a door limit, or None.

    ``long_fields`` are the dialect's message bodies and recipient lists: only
    the body cap bounds them (the message's parts limit is checked per message).
    """
    return _problem(fields, "", long_fields, 1)


def _problem(value: Any, name: str, long_fields: Collection[str], depth: int) -> str | None:
    # Called for every field of every message in a bulk request: each string
    # is checked inline by the compiled regex and its length, and described
    # (the f-strings) only once it breaks a limit.
    if isinstance(value, str):
        return _text_problem(value, name, long_fields)
    if not isinstance(value, dict | list):
        return None
    if depth > MAX_JSON_DEPTH:
        return f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
    search = _FORBIDDEN.search
    if isinstance(value, list):
        for item in value:
            if isinstance(item, str):
                if search(item) or (len(item) > MAX_FIELD_CHARS and name not in long_fields):
                    return _text_problem(item, name, long_fields)
            elif problem := _problem(item, name, long_fields, depth + 1):
                return problem
        return None
    for key, item in value.items():
        if isinstance(key, str) and (search(key) or len(key) > MAX_FIELD_CHARS):
            return _text_problem(key, "a field name", ())
        if isinstance(item, str):
            if search(item) or (len(item) > MAX_FIELD_CHARS and key not in long_fields):
                return _text_problem(item, key, long_fields)
        elif problem := _problem(item, key, long_fields, depth + 1):
            return problem
    return None


def _text_problem(value: str, name: str, long_fields: Collection[str]) -> str | None:
    bad = forbidden_character(value)
    if bad is not None:
        return f"{bad} in {name}" if name else bad
    if len(value) > MAX_FIELD_CHARS and name not in long_fields:
        return f"{name or 'a field'} is longer than {MAX_FIELD_CHARS} characters"
    return None


def plain_id(raw: object) -> int | None:
    """An id as clients must write it: ASCII digits, within the store's range.

    ``str.isdigit`` also accepts "²" and other Unicode digits, and ``int()``
    of 5,000 digits raises; both are refused here, as is anything >= 2**63.
    """
    text = str(raw).strip() if isinstance(raw, str | int) and not isinstance(raw, bool) else ""
    if not (text.isascii() and text.isdigit()) or len(text.lstrip("0")) > _MAX_ID_DIGITS:
        return None
    value = int(text)
    return value if value <= MAX_ID else None
