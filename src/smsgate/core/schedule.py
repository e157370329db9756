"""When a message should leave: parsing customer send times.

Customers give a local wall-clock time ("2019-09-01 18:00") meaning the
account's time zone, or a unix timestamp. Both end up as epoch milliseconds,
the one unit the store and the dispatcher compare.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_SCHEDULE_AHEAD = timedelta(days=2 * 366)

_DATE_TIME = re.compile(
    r"\s*(\d{4})[-/](\d{1,2})[-/](\d{1,2})"
    r"(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?\s*$"
)


class InvalidSendTime(ValueError):
    """The send time cannot be understood or is out of range; str() says why."""


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidSendTime(f"unknown time zone {name!r}") from exc


def parse_unix(raw: str | int | float) -> int:
    """A unix timestamp in seconds (or milliseconds, if it is that large) to ms."""
    try:
        value = float(raw)
    except (TypeError, ValueError) as exc:
        raise InvalidSendTime(f"not a unix timestamp: {raw!r}") from exc
    if not math.isfinite(value) or value < 0:
        raise InvalidSendTime(f"not a unix timestamp: {raw!r}")
    if value >= 1e11:  # no one schedules for the year 5138: this is milliseconds
        value /= 1000
    return int(value * 1000)


def parse_local(raw: str, tz_name: str) -> int:
    """``yyyy-mm-dd[ hh:mm[:ss]][offset]`` in the account's zone, to epoch ms."""
    match = _DATE_TIME.fullmatch(raw)
    if not match:
        raise InvalidSendTime(f"not a date and time: {raw!r}")
    year, month, day, hour, minute, second, offset = match.groups()
    try:
        local = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
        )
    except ValueError as exc:
        raise InvalidSendTime(f"not a valid date: {raw!r}") from exc
    if offset:
        try:
            stamp = datetime.fromisoformat(
                local.isoformat() + ("+00:00" if offset == "Z" else _colon(offset))
            )
        except ValueError as exc:  # +99:99: offsets are less than 24 hours, minutes < 60
            raise InvalidSendTime(f"not a valid time zone offset: {offset!r}") from exc
    else:
        stamp = local.replace(tzinfo=zone(tz_name))
    return int(stamp.timestamp() * 1000)


def parse_send_time(raw: str | int | float, tz_name: str) -> int:
    """Either form, as the partnerID/apikey dialect's ``timeToSend`` allows."""
    if isinstance(raw, int | float) or (isinstance(raw, str) and _is_number(raw)):
        return parse_unix(raw)
    return parse_local(raw, tz_name)


def due_at(requested_ms: int | None, now_ms: int) -> int:
    """The dispatch time: never in the past, never beyond the scheduling horizon."""
    if requested_ms is None or requested_ms <= now_ms:
        return now_ms
    if requested_ms - now_ms > MAX_SCHEDULE_AHEAD.total_seconds() * 1000:
        raise InvalidSendTime("send time is more than two years ahead")
    return requested_ms


def format_local(epoch_ms: int, tz_name: str, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, zone(tz_name)).strftime(fmt)


def local_midnight(epoch_ms: int, tz_name: str) -> int:
    """The start of the local day containing ``epoch_ms``: where a daily quota resets."""
    local = datetime.fromtimestamp(epoch_ms / 1000, zone(tz_name))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return int(midnight.timestamp() * 1000)


def _colon(offset: str) -> str:
    return offset if ":" in offset else f"{offset[:3]}:{offset[3:]}"


def _is_number(raw: str) -> bool:
    try:
        float(raw)
    except ValueError:
        return False
    return True
