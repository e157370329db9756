"""Turning requested messages into validated, encoded, priced messages.

Pure and synchronous on purpose: this is the per-message work of a bulk
request (up to 30,000 messages), so it must be cheap and it must be testable
without a database. The dialects call it through ``Gateway.submit``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from smsgate.core.encoding import Encoding, Segmentation, segment
from smsgate.core.model import (
    DEFAULT_MAX_PARTS,
    MAX_PARTS_CEILING,
    Account,
    MessageFlag,
    MessageRequest,
    PartOf,
    PreparedMessage,
    RejectCode,
    Rejection,
)
from smsgate.core.networks import NetworkTable
from smsgate.core.numbers import InvalidNumber, normalizer_for
from smsgate.core.pricing import PriceTable
from smsgate.core.schedule import InvalidSendTime, due_at
from smsgate.core.senders import sender_problem
from smsgate.core.states import State


@dataclass(frozen=True)
class Preparation:
    """Outcome of preparing a request: one entry per requested message, in order."""

    items: list[PreparedMessage | Rejection]

    @property
    def accepted(self) -> list[PreparedMessage]:
        return [item for item in self.items if isinstance(item, PreparedMessage)]

    @property
    def total_cost(self) -> int:
        return sum(item.cost for item in self.accepted)


_REPLIABLE = int(MessageFlag.REPLIABLE)

# No SMS part holds more than 160 characters, so a text longer than this
# needs more parts than any account may have; it is refused without being
# segmented (segmenting megabytes costs).
_LONGEST_TEXT = MAX_PARTS_CEILING * 160

# C0 controls a carrier cannot carry and PostgreSQL cannot store (NUL). The
# door refuses them in raw fields (api/limits.py); this catches what decoding
# produced (an EAPI 16bit message is hex, "0000" is a NUL).
_UNCARRIABLE = re.compile("[\x00-\x08\x0b\x0e-\x1f]")


def max_parts_of(account: Account) -> int:
    """The account's parts limit: option ``max_parts`` (1..255), else 10."""
    limit = account.options.get("max_parts")
    if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 1:
        return min(limit, MAX_PARTS_CEILING)
    return DEFAULT_MAX_PARTS


def prepare(
    account: Account,
    requests: Sequence[MessageRequest],
    *,
    now_ms: int,
    networks: NetworkTable,
    prices: PriceTable,
    reply_numbers: Sequence[str],
) -> Preparation:
    """Validate and price each request. A repliable message is sent from one
    of ``reply_numbers`` (the gateway's own), whatever sender it asked for:
    the first here, and the store picks the one its conversation takes."""
    normalize = normalizer_for(account.region).normalize
    network_of, price_of = networks.lookup, prices.per_segment
    allowed_codes = frozenset(account.allowed_country_codes)
    sender_verdicts: dict[str, str | None] = dict.fromkeys(reply_numbers)
    reply_number = reply_numbers[0]
    segmentations: dict[str, Segmentation] = {}
    items: list[PreparedMessage | Rejection] = []
    append = items.append
    queued, scheduled = State.QUEUED, State.SCHEDULED
    account_parts = max_parts_of(account)
    uncarriable = _UNCARRIABLE.search
    # The loop body runs 30,000 times for one EAPI batch: locals, positional
    # arguments and the common case (send now) first.
    for request in requests:
        sender = reply_number if request.flags & _REPLIABLE else request.sender
        verdict = sender_verdicts.get(sender, "")
        if verdict == "":
            verdict = sender_problem(sender, account.senders)
            sender_verdicts[sender] = verdict
        if verdict is not None:
            append(Rejection(RejectCode.INVALID_SENDER, verdict))
            continue
        binary = request.binary
        if binary is None and not request.text:
            append(Rejection(RejectCode.EMPTY_MESSAGE, "message is empty"))
            continue
        try:
            number = normalize(request.recipient)
        except InvalidNumber as exc:
            append(Rejection(RejectCode.INVALID_NUMBER, str(exc)))
            continue
        if allowed_codes and number.country_code not in allowed_codes:
            append(
                Rejection(
                    RejectCode.NETWORK_NOT_ALLOWED,
                    f"destination country +{number.country_code} is not enabled for this account",
                )
            )
            continue
        when = now_ms
        if request.send_at_ms is not None:
            try:
                when = due_at(request.send_at_ms, now_ms)
            except InvalidSendTime as exc:
                append(Rejection(RejectCode.INVALID_SEND_TIME, str(exc)))
                continue
        client_ref = request.client_ref
        if client_ref is not None and uncarriable(client_ref):
            append(Rejection(RejectCode.MALFORMED, "client reference holds a control character"))
            continue
        if binary is not None:
            body, encoding, segments = binary.hex(), Encoding.BINARY, 1
        else:
            body = request.text
            most = (
                account_parts
                if request.max_parts is None
                else min(request.max_parts, account_parts)
            )
            shape = segmentations.get(body)
            if shape is None:
                if len(body) > _LONGEST_TEXT:
                    append(_too_long(f"message is {len(body)} characters", most))
                    continue
                if uncarriable(body):
                    append(Rejection(RejectCode.MALFORMED, "message holds a control character"))
                    continue
                shape = segmentations[body] = segment(body)
            encoding, segments = shape.encoding, shape.segments
            part_of = request.part_of
            if part_of is not None:
                room = part_room(encoding, part_of)
                if shape.units > room:
                    append(
                        Rejection(
                            RejectCode.TOO_LONG,
                            f"part {part_of.seq} of {part_of.total} is {shape.units}"
                            f" {encoding.value} units; one part holds {room}",
                        )
                    )
                    continue
                segments = 1
            elif segments > most:
                append(_too_long(f"message needs {segments} parts", most))
                continue
        e164 = number.e164
        append(
            PreparedMessage(
                e164,
                network_of(e164),
                sender,
                body,
                encoding,
                segments,
                segments * price_of(e164),
                client_ref,
                when,
                scheduled if when > now_ms else queued,
                request.want_report,
                request.flags,
                request.routing_group,
                request.expires_at_ms,
                request.part_of,
            )
        )
    return Preparation(items)


def part_room(encoding: Encoding, part_of: PartOf) -> int:
    """Septets (GSM7) or UTF-16 units (UCS2) left in one SMS beside the
    concatenation header of ``part_of`` (6 octets, 7 with a 16-bit reference)."""
    header = 7 if part_of.wide else 6
    if encoding is Encoding.GSM7:
        return (140 - header) * 8 // 7
    return (140 - header) // 2


def _too_long(what: str, most: int) -> Rejection:
    return Rejection(RejectCode.TOO_LONG, f"{what}; at most {most} parts allowed")
