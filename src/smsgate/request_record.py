"""The compact, redacted record of the request that brought a batch in.

The console's message history starts with the request, so the batch keeps one
bounded record of it, written in the accepting transaction as a column of the
batch row: one value per batch, however many messages it carries (a bulk of
30,000 stores one record of at most ``LIMIT`` characters, not 30,000). It is
built with a single ``orjson`` dump per request, so a single send does not pay
for it measurably.

Secrets never reach the store: any field or header whose name says it carries
one (API keys, passwords, ``Authorization``, signatures, tokens) is replaced by
``REDACTED`` before anything is serialised. Headers are not recorded at all
(``Authorization`` and signature headers among them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

LIMIT = 2048
_ROWS = 5  # list items kept before the rest is counted
REDACTED = "[redacted]"
TRUNCATED = "…[truncated]"
_SECRET_WORDS = ("apikey", "api_key", "password", "passwd", "secret", "token", "authorization")
_SECRET_PREFIXES = ("sig", "x-ts-auth")


def is_secret(name: str) -> bool:
    """Whether a field or header name says its value is a credential."""
    lowered = name.lower()
    return lowered.startswith(_SECRET_PREFIXES) or any(w in lowered for w in _SECRET_WORDS)


@dataclass(frozen=True, slots=True)
class RequestSeen:
    """What a dialect saw of a submitting request; the gateway, which knows the
    dialect and the time of acceptance, makes the record of it."""

    operation: str
    client: str
    fields: Mapping[str, Any]


def request_record(dialect: str, seen: RequestSeen, at_ms: int) -> str:
    """The record as stored: JSON of dialect, operation, client address, time
    and the redacted parameters, cut to ``LIMIT`` characters with a mark (a
    cut record is no longer JSON, which the console shows as text)."""
    params = _redacted(seen.fields)
    record = {
        "dialect": dialect,
        "operation": seen.operation,
        "client": seen.client,
        "at": at_ms,
        "params": params,
    }
    try:
        text = orjson.dumps(record, default=str).decode()
    except TypeError:  # an integer past 64 bits, which only the stdlib writes
        text = json.dumps(record, default=str, ensure_ascii=False, separators=(",", ":"))
    if len(text) <= LIMIT:
        return text
    return text[: LIMIT - len(TRUNCATED)] + TRUNCATED


def _redacted(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Fields with their secrets replaced, at any depth (Advanta's bulk
    carries credentials in each object of its list)."""
    return {k: REDACTED if is_secret(str(k)) else _bounded(v) for k, v in fields.items()}


def _bounded(value: Any) -> Any:
    """A value cut (and redacted) before serialising, so that a 30,000-row
    bulk costs one dump of a few rows, not of the whole body."""
    if isinstance(value, str) and len(value) > LIMIT:
        return value[:LIMIT] + TRUNCATED
    if isinstance(value, dict):
        return _redacted(value)
    if isinstance(value, list):
        kept = [_bounded(item) for item in value[:_ROWS]]
        return kept if len(value) <= _ROWS else [*kept, f"{TRUNCATED} {len(value) - _ROWS} more"]
    return value
