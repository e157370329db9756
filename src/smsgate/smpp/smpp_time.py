"""SMPP 3.4 time fields (schedule_delivery_time, validity_period) as instants.

The field is ``YYMMDDhhmmsstnnp`` (section 7.1.1): absolute when ``p`` is
``+`` or ``-`` (local time ``nn`` quarter hours ahead of or behind UTC, ``t``
tenths of a second), relative to now when ``p`` is ``R`` (``YY`` years,
``MM`` months, ... from now; ``tnn`` is then ``000``). A relative year counts
365 days and a relative month 30, the reading most SMSCs apply, since the
field says nothing of a calendar. An empty field means "not given".
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

_SECOND, _MINUTE, _HOUR, _DAY = 1_000, 60_000, 3_600_000, 86_400_000
_LENGTH = 16
_MAX_QUARTERS = 48  # UTC-12:00 .. UTC+12:00, and a little beyond for +13/+14 zones


def parse_smpp_time(field: str, now_ms: int) -> int | None:
    """The instant (ms since the epoch) ``field`` names, or None when empty.

    Raises ValueError for anything that is not one of the two forms.
    """
    if not field:
        return None
    if len(field) != _LENGTH or not field[:15].isascii() or not field[:15].isdigit():
        raise ValueError(f"expected YYMMDDhhmmsstnnp, got {field!r}")
    yy, mo, dd, hh, mi, ss = (int(field[i : i + 2]) for i in range(0, 12, 2))
    tenths, quarters, kind = int(field[12]), int(field[13:15]), field[15]
    if kind == "R":
        if hh > 23 or mi > 59 or ss > 59 or tenths or quarters:
            raise ValueError(f"a relative time has hh<24, mm<60, ss<60 and tnn 000: {field!r}")
        days = yy * 365 + mo * 30 + dd
        return now_ms + days * _DAY + hh * _HOUR + mi * _MINUTE + ss * _SECOND
    if kind not in "+-":
        raise ValueError(f"the last character must be +, - or R: {field!r}")
    if quarters > _MAX_QUARTERS:
        raise ValueError(f"a UTC offset of {quarters} quarter hours is out of range")
    try:
        local = datetime(2000 + yy, mo, dd, hh, mi, ss)
    except ValueError as exc:
        raise ValueError(f"{field!r}: {exc}") from None
    offset = quarters * 15 * _MINUTE * (1 if kind == "+" else -1)
    return calendar.timegm(local.timetuple()) * _SECOND + tenths * 100 - offset


def format_smpp_time(instant_ms: int) -> str:
    """``instant_ms`` in the absolute form, in UTC (``00+``)."""
    moment = datetime.fromtimestamp(instant_ms // _SECOND, UTC)
    tenths = (instant_ms % _SECOND) // 100
    return moment.strftime("%y%m%d%H%M%S") + f"{tenths}00+"
