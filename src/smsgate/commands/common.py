"""What every command shares: settings, the store, one-line failures, input checks.

A command never shows a traceback. Whatever goes wrong becomes ``CliError``:
one line saying what failed and how to fix it, and a non-zero exit status
(2 for bad input or configuration, 1 for everything else).
"""

from __future__ import annotations

import asyncio
import calendar
import re
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

import phonenumbers
from rich.console import Console
from rich.table import Table

from smsgate.config import Settings, SettingsError
from smsgate.core.schedule import InvalidSendTime, zone
from smsgate.core.senders import sender_problem
from smsgate.observe.logs import configure_logging
from smsgate.store.repo import Store

T = TypeVar("T")

# Rich would wrap long values and colour them: wide and plain, so hosts, URLs
# and keys can be copied as shown. Into a pipe or a file, a table is as wide
# as its values (Rich would otherwise fold them to 80 columns, or to whatever
# terminal the process happens to inherit), so scripts read one row a line.
_PIPED_WIDTH = 10_000
console = Console(
    soft_wrap=True, highlight=False, width=None if sys.stdout.isatty() else _PIPED_WIDTH
)


class CliError(Exception):
    """A failure to report as one line (``exit_code`` 2: bad input)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def settings(**overrides: object) -> Settings:
    try:
        return Settings.from_env(None, **{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        raise CliError(f"configuration error: {exc}", 2) from None


def set_up_logging(current: Settings) -> None:
    configure_logging(current.log_level, current.log_format, message_text=current.log_message_text)


def describe_database(current: Settings) -> str:
    url = current.effective_database_url
    if url.startswith("sqlite"):
        return f"SQLite {url.removeprefix('sqlite:///')}"
    return "PostgreSQL " + _without_password(url)


def _without_password(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def database_problem(exc: BaseException, current: Settings) -> str:
    """One line for a database that cannot be opened, with the fix."""
    text = f"{exc}".splitlines()[0] if str(exc) else type(exc).__name__
    where = describe_database(current)
    if "no schema has been selected" in text or "InvalidSchemaName" in type(exc).__name__:
        return (
            f"cannot set up {where}: the schema in search_path does not exist; "
            "create it (CREATE SCHEMA name) or fix SMSGATE_DATABASE_URL"
        )
    if isinstance(exc, OSError | TimeoutError) or "refused" in text or "connect" in text:
        return (
            f"cannot reach {where}: {text}; start the database server or fix SMSGATE_DATABASE_URL"
        )
    if "password authentication" in text or "does not exist" in text:
        return f"cannot open {where}: {text}; fix SMSGATE_DATABASE_URL"
    return f"cannot open {where}: {type(exc).__name__}: {text}"


async def open_store(current: Settings) -> Store:
    try:
        return await Store.open(
            current.effective_database_url, sqlite_synchronous=current.sqlite_synchronous
        )
    except Exception as exc:
        raise CliError(database_problem(exc, current)) from None


def with_store(work: Callable[[Store], Awaitable[T]]) -> T:
    """Open the configured database, run ``work`` on it, close it."""
    current = settings()
    set_up_logging(current)

    async def run() -> T:
        store = await open_store(current)
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def table(*columns: str) -> Table:
    """A table that never cuts a value off: long hosts and URLs wrap whole."""
    grid = Table(*columns)
    for column in grid.columns:
        column.overflow = "fold"
    return grid


# ---------------------------------------------------------------- input checks


def check_url(value: str, option: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise CliError(f"{option}: {value!r} is not an http(s) URL with a host", 2)
    return value


def check_region(value: str) -> str:
    region = value.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise CliError(f"--region: {value!r} is not an ISO 3166 country code (KE, UG, GB …)", 2)
    return region


def check_timezone(value: str) -> str:
    try:
        zone(value)
    except (InvalidSendTime, OSError):  # a directory name (Africa) is an OSError
        raise CliError(
            f"--timezone: {value!r} is not an IANA time zone (Africa/Nairobi …)", 2
        ) from None
    return value


def check_senders(values: list[str]) -> list[str]:
    for value in values:
        problem = sender_problem(value, ())
        if problem:
            raise CliError(f"--sender {value!r}: {problem}", 2)
    return values


def check_country_codes(values: list[str]) -> list[int]:
    codes = []
    for value in values:
        digits = value.lstrip("+")
        if (
            not (digits.isascii() and digits.isdigit())
            or int(digits) not in phonenumbers.COUNTRY_CODE_TO_REGION_CODE
        ):
            raise CliError(f"--country {value!r}: not a country calling code (254, 256 …)", 2)
        codes.append(int(digits))
    return codes


_RELATIVE = re.compile(r"(\d{1,9})([smhd])", re.ASCII)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_time(value: str, option: str, now_ms: int | None = None) -> int:
    """``10m``/``2h``/``3d`` ago, or ``YYYY-MM-DD[ HH:MM[:SS]]`` in UTC, as epoch ms."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    relative = _RELATIVE.fullmatch(value.strip())
    if relative:
        return now - int(relative.group(1)) * _UNIT_SECONDS[relative.group(2)] * 1000
    for pattern in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            parsed = time.strptime(value.strip(), pattern)
        except ValueError:
            continue
        return calendar.timegm(parsed) * 1000
    raise CliError(f"{option}: {value!r} is neither 10m/2h/3d nor YYYY-MM-DD[ HH:MM] (UTC)", 2)


def format_time(epoch_ms: int | None) -> str:
    if epoch_ms is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch_ms / 1000)) + "Z"
