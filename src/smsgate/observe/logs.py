"""Logging set-up: one readable line per notable event, no phone numbers.

Log lines travel further than the database (log shippers, support tickets),
so numbers are masked where they are written (``mask_number``) and again by
a filter on the handler, a safety net for any line that forgot. Message text
is left out unless the operator asks for it (``SMSGATE_LOG_MESSAGE_TEXT``).
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any, TextIO

import orjson

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
FORMATS = ("text", "json")

# Runs of 8 to 15 digits, optionally after '+': E.164 and national numbers.
# Shorter runs (ids, codes, ports) stay readable.
_NUMBER = re.compile(r"(?<![0-9A-Za-z])\+?\d{8,15}(?![0-9A-Za-z])")

# Libraries whose routine lines would drown the gateway's own: httpx logs
# every callback it sends, with the URL and its query (the handset's number).
_QUIET_LIBRARIES = ("httpx", "httpcore", "alembic", "aiosqlite", "asyncio", "uvicorn.access")

_text_allowed = False


def mask_number(number: str) -> str:
    """A phone number with its middle hidden: enough to tell numbers apart in
    a support conversation, not enough to contact the handset."""
    digits = number.lstrip("+")
    if len(digits) < 7:
        return "*" * len(digits)
    keep_head = min(4, len(digits) - 6)
    return number[: len(number) - len(digits)] + (
        digits[:keep_head] + "*" * (len(digits) - keep_head - 3) + digits[-3:]
    )


def mask_numbers(text: str) -> str:
    """``text`` with every number-like run of digits masked."""
    return _NUMBER.sub(lambda match: mask_number(match.group(0)), text)


def message_text(body: str) -> str:
    """What a log line may say of a message's text: its length, or the text
    itself when ``SMSGATE_LOG_MESSAGE_TEXT`` is on."""
    return repr(body) if _text_allowed else f"({len(body)} characters)"


class MaskNumbers(logging.Filter):
    """Masks numbers in the rendered message and in the traceback of a record."""

    _traceback = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_numbers(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._traceback.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_numbers(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers: time, level, logger,
    message, the event's own fields (``extra=``), and the traceback if any."""

    _STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in self._STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["traceback"] = record.exc_text
        return orjson.dumps(entry, default=str).decode()


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_logging(
    level: str = "INFO",
    fmt: str = "text",
    *,
    message_text: bool = False,
    stream: TextIO | None = None,
) -> None:
    """Route every logger to one handler on ``stream`` (stderr by default)."""
    global _text_allowed
    _text_allowed = message_text
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(MaskNumbers())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    # uvicorn installs handlers of its own; its lines go through ours instead.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
