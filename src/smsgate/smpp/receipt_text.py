"""The text of SMPP delivery receipts (SMPP 3.4 appendix B), read and written.

The appendix only suggests a format, so carriers vary it: key case, field
order, missing fields, 10 or 12 digit dates. How the id itself is written
(decimal or hex, padded or not) is the connection's declared format, read in
``core.carrier_ids``, not guessed here. The parser takes whatever it
can find and gives up only when the two fields that matter, ``id:`` and
``stat:``, are absent; it never raises, because a receipt arrives inside a
deliver_sm and an exception there would cost the whole session.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Final

from smsgate.core.states import Reason, State


@dataclass(frozen=True, slots=True)
class ReceiptText:
    """Fields of a receipt text, as spelled by the carrier (``stat`` upper-cased).

    Absent fields are empty strings; ``submitted``/``delivered`` are None when
    absent or not numeric.
    """

    message_id: str
    stat: str
    err: str
    submit_date: str
    done_date: str
    submitted: int | None
    delivered: int | None
    text: str


STAT_TO_STATE: Final[Mapping[str, tuple[State, Reason]]] = MappingProxyType(
    {
        "DELIVRD": (State.DELIVERED, Reason.NONE),
        "EXPIRED": (State.EXPIRED, Reason.VALIDITY_EXPIRED),
        "UNDELIV": (State.UNDELIVERABLE, Reason.UNKNOWN),
        "REJECTD": (State.REJECTED, Reason.CARRIER_REJECTED),
        "DELETED": (State.FAILED, Reason.UNKNOWN),
        "UNKNOWN": (State.FAILED, Reason.UNKNOWN),
        # Spelled out by some aggregators instead of the 7-letter forms.
        "DELIVERED": (State.DELIVERED, Reason.NONE),
        "UNDELIVERED": (State.UNDELIVERABLE, Reason.UNKNOWN),
        "UNDELIVERABLE": (State.UNDELIVERABLE, Reason.UNKNOWN),
        "REJECTED": (State.REJECTED, Reason.CARRIER_REJECTED),
        "FAILED": (State.FAILED, Reason.UNKNOWN),
    }
)
"""Final receipt states. ``ACCEPTD`` and ``ENROUTE`` are not final and so absent."""

MAP_ERROR_OF_REASON: Final[Mapping[Reason, int]] = MappingProxyType(
    {
        Reason.UNKNOWN_SUBSCRIBER: 1,  # unknownSubscriber
        Reason.ABSENT_SUBSCRIBER: 6,  # absentSubscriberSM
        Reason.SENDER_BLOCKED: 13,  # callBarred
    }
)
"""The GSM MAP error behind a failure, as many SMSCs put it in ``err:`` and in
the network_error_code TLV."""

REASON_OF_MAP_ERROR: Final[Mapping[int, Reason]] = MappingProxyType(
    {
        **{code: reason for reason, code in MAP_ERROR_OF_REASON.items()},
        5: Reason.UNKNOWN_SUBSCRIBER,  # unidentifiedSubscriber
        27: Reason.ABSENT_SUBSCRIBER,  # absentSubscriber
    }
)
"""Why an undeliverable message failed, read back from that error code."""

# A key starts the text or follows whitespace, so "dlvrd:" never reads as "id:"
# and "id:" inside an id never starts a field. ASCII-only matching keeps
# case-folding of characters like "ı" from producing keys that are not keys.
_KEY: Final = re.compile(
    r"(?<!\S)(id|sub|dlvrd|submit[\s_]*date|done[\s_]*date|stat|err|text)\s*:",
    re.IGNORECASE | re.ASCII,
)
_DIGITS: Final = re.compile(r"[0-9]+", re.ASCII)


def _canonical(key: str) -> str:
    key = key.lower()
    if key.startswith("submit"):
        return "submit date"
    if key.startswith("done"):
        return "done date"
    return key


def numeric_field(value: str) -> int | None:
    """A receipt field that should be a number (``sub:``, ``dlvrd:``, ``err:``), or
    None when it is not one; never raises, and keeps ``int()`` cheap."""
    if len(value) > 9 or not _DIGITS.fullmatch(value):
        return None
    return int(value)


def parse_receipt_text(text: str) -> ReceiptText | None:
    """The fields of a receipt text; None when it has no ``id:`` or no ``stat:``.

    ``text:`` is conventionally last and its value may contain anything,
    including words that look like keys, so once the header has both id and
    stat everything after ``text:`` is the text. Only when id or stat is still
    missing are keys after ``text:`` read, and the text then ends at the first.
    """
    matches = list(_KEY.finditer(text))
    found: dict[str, str] = {}
    text_start = -1
    text_end = -1
    for index, match in enumerate(matches):
        key = _canonical(match.group(1))
        if key == "text":
            if text_start < 0:
                text_start = match.end()
            continue
        if key in found:
            continue
        if text_start >= 0 and text_end < 0:
            if "id" in found and "stat" in found:
                break
            text_end = match.start()
        stop = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        tokens = text[match.end() : stop].split(None, 1)
        found[key] = tokens[0] if tokens else ""
    if "id" not in found or "stat" not in found:
        return None
    body = ""
    if text_start >= 0:
        body = text[text_start : len(text) if text_end < 0 else text_end].strip()
    return ReceiptText(
        message_id=found["id"],
        stat=found["stat"].upper(),
        err=found.get("err", ""),
        submit_date=found.get("submit date", ""),
        done_date=found.get("done date", ""),
        submitted=numeric_field(found.get("sub", "")),
        delivered=numeric_field(found.get("dlvrd", "")),
        text=body,
    )


def receipt_date_ms(value: str) -> int | None:
    """A receipt date ``yyMMddhhmm[ss]`` read as UTC, in epoch ms; None if it is not one."""
    if len(value) not in (10, 12) or not _DIGITS.fullmatch(value):
        return None
    try:
        moment = datetime(
            2000 + int(value[0:2]),
            int(value[2:4]),
            int(value[4:6]),
            int(value[6:8]),
            int(value[8:10]),
            int(value[10:12] or 0),
            tzinfo=UTC,
        )
    except ValueError:
        return None
    return int(moment.timestamp()) * 1000


def _date(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%y%m%d%H%M")


def format_receipt_text(
    *, message_id: str, stat: str, err: str = "000", submit_ms: int, done_ms: int, text: str = ""
) -> str:
    """The conventional appendix B receipt text, as SMSCs (and the simulator) send it."""
    delivered = "001" if stat == "DELIVRD" else "000"
    return (
        f"id:{message_id} sub:001 dlvrd:{delivered} submit date:{_date(submit_ms)}"
        f" done date:{_date(done_ms)} stat:{stat} err:{err} text:{text[:20]}"
    )
