"""Uploading a CSV file of any size to a gateway's EAPI ``send_batch``.

``send_batch`` refuses more than 30,000 rows, so a large file has to go as
several submissions. Each submission repeats the header row, so that per-row
columns (``sender``, ``source_id``, ``dca`` ...) keep their meaning, and no
record is ever cut in two: a cut record would be skipped by the gateway, or
worse, turn into two wrong messages.

Record boundaries are found by the gateway's own reader
(:mod:`smsgate.core.eapi_csv`) running over the file line by line, so the
client splits exactly where the server will read a record, including its
backslash escapes and its recovery from broken records. The raw text of each
record is forwarded untouched; nothing is re-quoted.

Retrying is safe because every submission carries a ``stop_dup_id`` derived
from a per-run random base: a submission the gateway accepted but whose reply
was lost is answered again with its first reply and is not charged twice.
"""

from __future__ import annotations

import codecs
import io
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO
from urllib.parse import urlencode

import httpx

from smsgate.core.eapi_csv import (
    CHARSET,
    MAX_BATCH_ROWS,
    BatchFormatError,
    parse_batch,
    raw_records,
)
from smsgate.core.eapi_text import GREEK_LATIN1_CARRIAGE

__all__ = [
    "MAX_STOP_DUP_BASE",
    "RESERVED_FIELDS",
    "SEND_BATCH_PATH",
    "Backoff",
    "Chunk",
    "Failure",
    "UploadSummary",
    "parse_params",
    "send_batch_url",
    "split_batches",
    "upload_batches",
]

SEND_BATCH_PATH = "/eapi/submission/send_batch/1/1.0"

MAX_STOP_DUP_BASE = 2_000_000_000
"""Upper bound of the random ``stop_dup_id`` base: leaves room below the EAPI's
2,147,483,647 for far more submissions than any file needs."""

RESERVED_FIELDS = frozenset({"username", "password", "batch_data", "stop_dup_id"})
"""Form fields the uploader sets itself; a user parameter must not override them."""

_SUCCESS = frozenset({0, 1})
# 40 is the gateway saying "retry"; 26 and 28 are upstream credit and quota
# shortages that the provider lifts without the client changing anything.
_RETRYABLE = frozenset({26, 28, 40})
_TRANSIENT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_FORM = {"Content-Type": f"application/x-www-form-urlencoded; charset={CHARSET}"}
# Latin-1 has no Greek; in 7-bit EAPI text the GSM Greek capitals travel as
# these Latin-1 code points, so a UTF-8 file's "Δ" arrives as Δ instead of "?".
_GREEK_CARRIAGE = str.maketrans({greek: chr(cp) for greek, cp in GREEK_LATIN1_CARRIAGE.items()})


# --- splitting ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Chunk:
    """One submission: the header and whole records, with the data rows it covers."""

    index: int
    first_row: int
    rows: int
    text: str

    @property
    def last_row(self) -> int:
        return self.first_row + self.rows - 1


def split_batches(
    stream: IO[bytes], *, rows_per_batch: int = MAX_BATCH_ROWS, encoding: str = "utf-8"
) -> Iterator[Chunk]:
    """Cut a CSV byte stream into submissions of at most ``rows_per_batch`` records.

    Only one submission is held in memory at a time. The header is checked
    with the gateway's rules before the first submission is produced, so a file
    the gateway would refuse as a whole fails here, before anything is sent.
    A UTF-8 byte order mark (as spreadsheet exports write) is dropped, or the
    first column would not be called ``msisdn``. ``stream`` is left open.
    """
    if not 1 <= rows_per_batch <= MAX_BATCH_ROWS:
        raise ValueError(f"rows per batch must be between 1 and {MAX_BATCH_ROWS}")
    if codecs.lookup(encoding).name == "utf-8":
        encoding = "utf-8-sig"
    # newline="" splits lines at CR LF, LF and lone CR and keeps the breaks,
    # exactly as parse_batch reads batch_data.
    text = io.TextIOWrapper(stream, encoding=encoding, newline="")
    try:
        records = raw_records(text)
        header = next(records, None)
        if header is None:
            raise BatchFormatError("the file is empty; expected a header row naming msisdn,message")
        parse_batch(header)
        if not header.endswith(("\n", "\r")):
            header += "\n"
        pending: list[str] = []
        index = 0
        first_row = 1
        for record in records:
            pending.append(record)
            if len(pending) == rows_per_batch:
                yield Chunk(index, first_row, len(pending), header + "".join(pending))
                index += 1
                first_row += len(pending)
                pending = []
        if pending:
            yield Chunk(index, first_row, len(pending), header + "".join(pending))
    finally:
        # Closing the wrapper would close the caller's stream.
        text.detach()


# --- uploading ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Backoff:
    """How often, and how patiently, one submission is retried."""

    max_attempts: int = 8
    first_delay: float = 1.0
    max_delay: float = 60.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.first_delay * 2 ** (attempt - 1), self.max_delay))


@dataclass(frozen=True, slots=True)
class Failure:
    """A submission the gateway refused, or that never got through; the run stopped there."""

    chunk: int
    first_row: int
    last_row: int
    reply: str


@dataclass(slots=True)
class UploadSummary:
    """What went out: the batch ids to look reports up by, and where a stopped run ended."""

    chunks_sent: int = 0
    rows_sent: int = 0
    batch_ids: list[int] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)


def parse_params(pairs: Iterable[str]) -> dict[str, str]:
    """``key=value`` strings as form fields; the value may itself contain ``=``."""
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"{pair!r} is not key=value")
        if key in RESERVED_FIELDS:
            raise ValueError(f"{key} is set by the uploader itself")
        params[key] = value
    return params


def send_batch_url(base_url: str) -> httpx.URL:
    """The ``send_batch`` endpoint under ``base_url``; a bad URL fails before any upload."""
    try:
        url = httpx.URL(base_url.rstrip("/") + SEND_BATCH_PATH)
    except httpx.InvalidURL as exc:
        raise ValueError(f"{base_url!r} is not a URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"{base_url!r} is not an http(s) URL such as http://127.0.0.1:8080")
    return url


def _form_body(fields: Mapping[str, str]) -> bytes:
    # httpx would encode form fields as UTF-8; the EAPI reads ISO-8859-1.
    return urlencode(fields, encoding=CHARSET, errors="replace").encode("ascii")


def _read_reply(line: str) -> tuple[int, str] | None:
    """``(code, batch_id)`` of a ``code|description|batch_id`` line, or None if it is not one."""
    parts = line.split("|")
    if len(parts) != 3 or not parts[0].isdigit():
        return None
    return int(parts[0]), parts[2]


def _submit(
    client: httpx.Client,
    url: httpx.URL,
    body: bytes,
    chunk: Chunk,
    backoff: Backoff,
    sleep: Callable[[float], None],
    on_retry: Callable[[Chunk, int, str, float], None] | None,
) -> int | Failure:
    """The batch id the gateway gave ``chunk``, or why it was not accepted."""

    def failure(reply: str) -> Failure:
        return Failure(chunk.index, chunk.first_row, chunk.last_row, reply)

    attempt = 1
    while True:
        try:
            response = client.post(url, content=body, headers=_FORM)
        except _TRANSIENT_ERRORS as exc:
            problem = f"{type(exc).__name__}: {exc}"
        except httpx.HTTPError as exc:
            return failure(f"{type(exc).__name__}: {exc}")
        else:
            reply_line = response.content.decode(CHARSET).strip()
            if response.status_code != 200:
                problem = f"HTTP {response.status_code}"
            else:
                reply = _read_reply(reply_line)
                if reply is None:
                    return failure(f"not an EAPI reply: {reply_line[:200]!r}")
                code, batch_id = reply
                if code in _SUCCESS and batch_id.isdigit():
                    return int(batch_id)
                if code not in _RETRYABLE:
                    return failure(reply_line)
                problem = reply_line
        if attempt >= backoff.max_attempts:
            return failure(f"gave up after {attempt} attempts; last: {problem}")
        delay = backoff.delay(attempt)
        if on_retry is not None:
            on_retry(chunk, attempt, problem, delay)
        sleep(delay)
        attempt += 1


def upload_batches(
    chunks: Iterable[Chunk],
    *,
    base_url: str,
    username: str,
    password: str,
    params: Mapping[str, str] | None = None,
    client: httpx.Client | None = None,
    backoff: Backoff | None = None,
    stop_dup_base: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_accepted: Callable[[Chunk, int], None] | None = None,
    on_retry: Callable[[Chunk, int, str, float], None] | None = None,
) -> UploadSummary:
    """Submit ``chunks`` in order, stopping at the first one that cannot be accepted.

    Later chunks are not sent after a failure, so the file's rows that went
    out are always one unbroken run from the top and the failure says where
    it ends. ``params`` never replace the fields in :data:`RESERVED_FIELDS`.
    ``client`` is closed only if it was created here.
    """
    url = send_batch_url(base_url)
    extra = {key: value.translate(_GREEK_CARRIAGE) for key, value in (params or {}).items()}
    base = stop_dup_base if stop_dup_base is not None else random.randint(1, MAX_STOP_DUP_BASE)
    if not 1 <= base <= MAX_STOP_DUP_BASE:
        raise ValueError(f"stop_dup_id base must be between 1 and {MAX_STOP_DUP_BASE}")
    summary = UploadSummary()
    own_client = client is None
    http = (
        client if client is not None else httpx.Client(timeout=httpx.Timeout(300.0, connect=10.0))
    )
    try:
        for chunk in chunks:
            body = _form_body(
                {
                    **extra,
                    "username": username,
                    "password": password,
                    "batch_data": chunk.text.translate(_GREEK_CARRIAGE),
                    "stop_dup_id": str(base + chunk.index),
                }
            )
            outcome = _submit(http, url, body, chunk, backoff or Backoff(), sleep, on_retry)
            if isinstance(outcome, Failure):
                summary.failures.append(outcome)
                break
            summary.chunks_sent += 1
            summary.rows_sent += chunk.rows
            summary.batch_ids.append(outcome)
            if on_accepted is not None:
                on_accepted(chunk, outcome)
    finally:
        if own_client:
            http.close()
    return summary


GET_REPORT_PATH = "/eapi/status_reports/get_report/2/2.0"


def accepted_rows(
    batch_ids: Iterable[int],
    *,
    base_url: str,
    username: str,
    password: str,
    client: httpx.Client | None = None,
) -> int | None:
    """How many messages the gateway stored for these batches (rows it skipped
    as unusable are not among them), read from ``get_report``; None if a
    report could not be read."""
    http = client or httpx.Client(timeout=httpx.Timeout(300.0, connect=10.0))
    total = 0
    try:
        for batch_id in batch_ids:
            body = _form_body(
                {"username": username, "password": password, "batch_id": str(batch_id)}
            )
            try:
                response = http.post(
                    base_url.rstrip("/") + GET_REPORT_PATH, content=body, headers=_FORM
                )
            except httpx.HTTPError:
                return None
            status, _, rows = response.content.decode(CHARSET).partition("\n")
            if response.status_code != 200 or not status.startswith("0|"):
                return None
            total += sum(1 for line in rows.splitlines() if line.strip())
    finally:
        if client is None:
            http.close()
    return total
