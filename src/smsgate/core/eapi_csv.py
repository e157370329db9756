r"""Reading the ``batch_data`` CSV of EAPI ``send_batch``.

The BulkSMS documentation promises a lenient reader: "Although there is no
official standard for CSV, most common formats should be supported", and
"Invalid lines that you submit should be ignored; invalid values for fields
will be ignored or corrected (e.g. by truncating values that are too long) as
far as possible". Clients were told to escape newlines and double quotes
inside quoted fields "with a backslash", so that dialect has to be read too,
next to the usual RFC 4180 doubled quote. The rules, in full:

* The first non-blank record is the header; names are trimmed and compared
  case-insensitively. ``msisdn`` and ``message`` must be present, otherwise the
  whole batch is unusable (:class:`BatchFormatError`). Every other named column
  is a per-row override of the batch-wide parameter of that name, passed on
  uninterpreted; columns with an empty name are ignored.
* Fields are separated by ``,``; records end at CR LF, LF or a lone CR. Blank
  (or whitespace-only) lines are ignored and do not count as rows.
* A field is quoted if its first character after any spaces is ``"``. Inside
  quotes, ``,`` and line breaks are data, and ``""`` as well as ``\"`` mean
  ``"``; ``\`` followed by a line break means that line break ("escape
  newlines and double quotes (with a backslash)"). ``\\`` means one
  backslash: not in the seed, but without it a quoted message could not end in
  a backslash. Any other backslash is kept as typed, so ``C:\temp`` survives.
  The same escapes work in unquoted fields (a trailing ``\`` there continues
  the field on the next line); otherwise unquoted fields are verbatim apart
  from leading spaces.
* A record is skipped, and its first line reported, if its field count differs
  from the header's, its ``msisdn`` is blank, anything but ``,`` or the line
  end follows a closing quote (even a space), or a quote is never closed.
  A record that spans several lines (a quoted field holding line breaks) and
  is broken in any of these ways is taken to be an unterminated quote: only
  its first line is skipped and reading resumes on the line after it, so a
  stray quote never swallows the rows below it. A quoted field may span at
  most :data:`MAX_RECORD_LINES` lines; a longer one is such a broken record.
* A byte order mark before the header (Excel's "CSV UTF-8"; in ISO-8859-1
  its bytes read as ``ï»¿``) is ignored.
* Values longer than the column's limit are cut (see
  :data:`DEFAULT_MAX_LENGTHS`). ``msisdn`` is never cut: a shortened number
  would reach someone else, so the number check must refuse it instead.
  Override values are trimmed and left out when blank: they are ids, flags and
  numbers, where surrounding blanks never mean anything.

Batches reach 30,000 rows, so the C ``csv`` reader does the tokenizing: its
``escapechar`` and ``strict`` options express the rules above once lone
backslashes are protected, and a row costs a few Python operations.
"""

from __future__ import annotations

import csv
import re
import sys
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _csv import Reader

__all__ = [
    "DEFAULT_MAX_LENGTHS",
    "MAX_RECORD_LINES",
    "BatchFormatError",
    "BatchRow",
    "BatchTooLarge",
    "ParsedBatch",
    "parse_batch",
    "raw_records",
]

DEFAULT_MAX_LENGTHS: Mapping[str, int] = MappingProxyType(
    {
        # No limit in the seed; 2000 characters is 13 GSM7 parts, more than any
        # route concatenates, so only abuse is cut.
        "message": 2000,
        # The seed: "an alphanumeric ... id ... Max 20 characters".
        "source_id": 20,
        # The seed's larger sender limit (numeric, 15 digits); whether the
        # 11-character alphanumeric limit applies is the sender check's call.
        "sender": 15,
    }
)
"""Per-column character limits (lower-case names); columns not listed are not cut."""

CHARSET = "iso-8859-1"
"""What EAPI clients send and read: its 7-bit text is GSM carried in Latin-1."""
MAX_BATCH_ROWS = 30_000
"""Rows one send_batch may carry."""
MAX_RECORD_LINES = 40
"""Lines one record may span. It bounds what re-reading after a stray quote
costs: at most this many lines per skipped line, not the rest of the batch."""

_BYTE_ORDER_MARKS = ("\ufeff", "\u00ef\u00bb\u00bf")  # as text, and as ISO-8859-1 bytes
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


# Not frozen: a frozen dataclass costs three times as much to build, and a
# bulk request builds 30,000 of these. Treat instances as immutable.
@dataclass(slots=True)
class BatchRow:
    """One message of the batch, with the line it came from for error reports."""

    line: int
    msisdn: str
    message: str
    overrides: dict[str, str]


@dataclass(frozen=True, slots=True)
class ParsedBatch:
    """The readable rows, and where the unreadable ones were, so a reply can say so."""

    rows: list[BatchRow]
    skipped_lines: list[int]


class BatchFormatError(ValueError):
    """The batch as a whole cannot be used; ``str()`` is the reason for the client.

    A ``ValueError`` so callers that already map ``ValueError`` to status 24
    (data validation failed) need no new branch.
    """


class BatchTooLarge(BatchFormatError):
    """More data rows than allowed: the EAPI answers status 201, not 24."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"batch has {count} rows; at most {limit} are allowed")
        self.count = count
        self.limit = limit


class _Dialect(csv.Dialect):
    # With ``strict`` the reader raises on text after a closing quote and on a
    # quote still open at the end of the input, so such a record is skipped
    # rather than glued into, or swallowed by, a message.
    delimiter = ","
    quotechar = '"'
    escapechar = "\\"
    doublequote = True
    skipinitialspace = True
    lineterminator = "\n"
    quoting = csv.QUOTE_MINIMAL
    strict = True


# ``csv`` drops an escape character before any character; the seed only escapes
# quotes and line breaks, so a backslash before anything else is doubled first
# and comes out as typed. A backslash before a backslash is left alone: the pair
# is one escaped backslash to both readings.
_LONE_BACKSLASH = re.compile(r'\\(?![\\"\r\n])')


class _Lines:
    """The batch's lines (breaks kept: CR LF, LF, CR), fed to a reader from
    any line on, at most ``MAX_RECORD_LINES`` for one record: a longer record
    meets the end of its input and fails as an unterminated quote."""

    def __init__(self, text: str) -> None:
        if "\\" in text:
            text = _LONE_BACKSLASH.sub(r"\\\\", text)
        self.lines = _LINE.findall(text)
        self.record_start = 0  # index of the current record's first line
        self.next = 0  # index of the next line to hand out

    def reader_from(self, index: int) -> Reader:
        self.record_start = self.next = index
        return csv.reader(self._feed(), _Dialect)

    def rest(self) -> Reader:
        """The lines not yet handed out, with no limit per record (for counting)."""
        return csv.reader(iter(self.lines[self.next :]), _Dialect)

    def _feed(self) -> Iterator[str]:
        # Runs once per line of a 30,000-row batch: the loop keeps its state
        # in locals and publishes the position for the caller's bookkeeping.
        lines, end, most = self.lines, len(self.lines), MAX_RECORD_LINES
        index = self.next
        while index < end and index - self.record_start < most:
            index += 1
            self.next = index
            yield lines[index - 1]


def _is_blank(fields: list[str]) -> bool:
    return not fields or (len(fields) == 1 and (not fields[0] or fields[0].isspace()))


def _read_header(reader: Reader) -> list[str]:
    """Lower-cased column names from the first non-blank record."""
    try:
        raw_names = next((fields for fields in reader if not _is_blank(fields)), None)
    except csv.Error:
        raise BatchFormatError(
            "the header row cannot be read: a quote left open or text after a closing quote"
        ) from None
    if raw_names is None:
        raise BatchFormatError("batch_data is empty; expected a header row naming msisdn,message")
    names = [name.strip().lower() for name in raw_names]
    seen: set[str] = set()
    for name in names:
        if name and name in seen:
            raise BatchFormatError(f"the header row names the column {name!r} twice")
        seen.add(name)
    missing = [name for name in ("msisdn", "message") if name not in seen]
    if missing:
        raise BatchFormatError(
            f"the header row lacks the column(s) {', '.join(missing)}; got {','.join(names)!r}"
        )
    return names


def _count_records(reader: Reader) -> int:
    """Non-blank records left in ``reader``, readable or not, without building rows."""
    count = 0
    while True:
        try:
            for fields in reader:
                if len(fields) > 1 or (fields and fields[0] and not fields[0].isspace()):
                    count += 1
            return count
        except csv.Error:
            count += 1


def parse_batch(
    text: str,
    *,
    max_rows: int | None = None,
    max_lengths: Mapping[str, int] = DEFAULT_MAX_LENGTHS,
) -> ParsedBatch:
    """Read ``batch_data``, skipping what cannot be read instead of refusing the batch.

    Only a missing or unusable header, or more than ``max_rows`` data rows
    (readable or not, blank lines aside), make the whole batch fail. Values
    longer than ``max_lengths`` (lower-case column name to characters) allows
    are cut.
    """
    for mark in _BYTE_ORDER_MARKS:
        text = text.removeprefix(mark)
    source = _Lines(text)
    reader = source.reader_from(0)
    names = _read_header(reader)
    width = len(names)
    msisdn_at = names.index("msisdn")
    message_at = names.index("message")
    message_limit = max_lengths.get("message")
    others = [
        (index, name, max_lengths.get(name))
        for index, name in enumerate(names)
        if name and name not in ("msisdn", "message")
    ]
    # Oversized batches are refused as soon as the first extra record is read,
    # before more rows are built; only the rest is then counted, by the C reader.
    limit = sys.maxsize if max_rows is None else max_rows
    count = 0
    rows: list[BatchRow] = []
    skipped: list[int] = []
    append = rows.append
    first = source.next  # index of the next record's first line (its number - 1)
    source.record_start = first
    while True:
        # The body runs 30,000 times per batch, so it is kept flat, and the
        # reader is iterated by ``for`` (C speed), re-entered only after errors.
        broken = False
        try:
            for fields in reader:
                line = first + 1
                first = source.record_start = source.next
                if len(fields) != width and _is_blank(fields):
                    continue
                count += 1
                if count > limit:
                    raise BatchTooLarge(count + _count_records(source.rest()), limit)
                msisdn = fields[msisdn_at].strip() if len(fields) == width else ""
                if not msisdn:
                    skipped.append(line)
                    if first - line >= 1:  # spanned lines: a stray quote, its line alone
                        broken = True
                        first = line
                        break
                    continue
                overrides: dict[str, str] = {}
                for index, name, cut in others:
                    value = fields[index].strip()
                    if value:
                        overrides[name] = value[:cut]
                append(BatchRow(line, msisdn, fields[message_at][:message_limit], overrides))
            if not broken:
                return ParsedBatch(rows, skipped)
        except csv.Error:
            count += 1
            if count > limit:
                raise BatchTooLarge(count + _count_records(source.rest()), limit) from None
            skipped.append(first + 1)
            # The record went wrong on its last line read: if that was its
            # first, reading resumes on the next; otherwise the record is a
            # stray quote and only its first line is given up.
            first += 1
        reader = source.reader_from(first)


def raw_records(lines: Iterable[str]) -> Iterator[str]:
    """The raw text of each non-blank record, as the gateway's reader delimits it.

    The C reader pulls a line only when the record it is reading needs one, so
    the lines pulled for a record are exactly its text. A broken record that
    spans lines is, as in ``parse_batch``, a stray quote: its first line alone
    is a (skipped) record and the lines after it are read again, so the
    gateway counts the same rows as this split does.
    """
    source = iter(lines)
    given_back: deque[str] = deque()
    pulled: list[str] = []

    def feed() -> Iterator[str]:
        while len(pulled) < MAX_RECORD_LINES:
            line = given_back.popleft() if given_back else next(source, None)
            if line is None:
                return
            pulled.append(line)
            # parse_batch's protection of lone backslashes, so that a line like
            # "\ " is as blank, or not, as the gateway finds it. It looks one
            # character ahead, never past a line break, so per line is the same.
            yield _LONE_BACKSLASH.sub(r"\\\\", line) if "\\" in line else line

    width, msisdn_at = 0, 0
    while True:
        fields: list[str] | None
        try:
            fields = next(csv.reader(feed(), _Dialect))
        except StopIteration:
            return
        except csv.Error:
            fields = None
        record, pulled[:] = list(pulled), []
        if fields is not None and _is_blank(fields):
            continue
        if not width:  # the header
            names = [name.strip().lower() for name in fields or ()]
            width, msisdn_at = len(names) or 1, names.index("msisdn") if "msisdn" in names else 0
            yield "".join(record)
            continue
        broken = fields is None or len(fields) != width or not fields[msisdn_at].strip()
        if broken and len(record) > 1:
            given_back.extendleft(reversed(record[1:]))
            record = record[:1]
        yield "".join(record)
