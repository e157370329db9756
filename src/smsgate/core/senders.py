"""Sender id rules: what may appear as the originator of an SMS.

GSM allows an alphanumeric originator of at most 11 characters, or a numeric
one of at most 15 digits. An account may also be restricted to the sender ids
an operator registered for it (case-sensitive, as carriers register them).
"""

from __future__ import annotations

import re

_ALPHANUMERIC = re.compile(r"[A-Za-z0-9 .\-_&'!]{1,11}")
_NUMERIC = re.compile(r"\+?[0-9]{1,15}")


def sender_problem(sender: str, registered: tuple[str, ...]) -> str | None:
    """None if ``sender`` may be used, else a short reason."""
    if not sender:
        return "sender id is missing"
    if not (_NUMERIC.fullmatch(sender) or _ALPHANUMERIC.fullmatch(sender)):
        return "sender id must be up to 11 letters/digits or up to 15 digits"
    if registered and sender not in registered:
        return f"sender id {sender!r} is not registered for this account"
    return None
