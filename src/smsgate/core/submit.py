"""Turning requested messages into validated, encoded, priced messages.

Pure and synchronous on purpose: this is the per-message work of a bulk
request (up to 30,000 messages), so it must be cheap and it must be testable
without a database. The dialects call it through ``Gateway.submit``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from smsgate.core.encoding import Encoding, Segmentation, segment
from smsgate.core.model import (
    Account,
    MessageFlag,
    MessageRequest,
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


def prepare(
    account: Account,
    requests: Sequence[MessageRequest],
    *,
    now_ms: int,
    networks: NetworkTable,
    prices: PriceTable,
    reply_address: str,
) -> Preparation:
    """Validate and price each request; a repliable message is sent from
    ``reply_address`` (the gateway's own number) whatever sender it asked for."""
    normalizer = normalizer_for(account.region)
    allowed_codes = frozenset(account.allowed_country_codes)
    sender_verdicts: dict[str, str | None] = {reply_address: None}
    segmentations: dict[str, Segmentation] = {}
    items: list[PreparedMessage | Rejection] = []
    for request in requests:
        sender = reply_address if request.flags & MessageFlag.REPLIABLE else request.sender
        verdict = sender_verdicts.get(sender, "")
        if verdict == "":
            verdict = sender_problem(sender, account.senders)
            sender_verdicts[sender] = verdict
        if verdict is not None:
            items.append(Rejection(RejectCode.INVALID_SENDER, verdict))
            continue
        if request.binary is None and not request.text:
            items.append(Rejection(RejectCode.EMPTY_MESSAGE, "message is empty"))
            continue
        try:
            number = normalizer.normalize(request.recipient)
        except InvalidNumber as exc:
            items.append(Rejection(RejectCode.INVALID_NUMBER, str(exc)))
            continue
        if allowed_codes and number.country_code not in allowed_codes:
            items.append(
                Rejection(
                    RejectCode.NETWORK_NOT_ALLOWED,
                    f"destination country +{number.country_code} is not enabled for this account",
                )
            )
            continue
        try:
            when = due_at(request.send_at_ms, now_ms)
        except InvalidSendTime as exc:
            items.append(Rejection(RejectCode.INVALID_SEND_TIME, str(exc)))
            continue
        if request.binary is not None:
            body, encoding, segments = request.binary.hex(), Encoding.BINARY, 1
        else:
            shape = segmentations.get(request.text)
            if shape is None:
                shape = segmentations[request.text] = segment(request.text)
            body, encoding, segments = request.text, shape.encoding, shape.segments
            if request.max_parts is not None and segments > request.max_parts:
                items.append(
                    Rejection(
                        RejectCode.TOO_LONG,
                        f"message needs {segments} parts; at most {request.max_parts} allowed",
                    )
                )
                continue
        items.append(
            PreparedMessage(
                recipient=number.e164,
                network_id=networks.lookup(number.e164),
                sender=sender,
                text=body,
                encoding=encoding,
                segments=segments,
                cost=segments * prices.per_segment(number.e164),
                client_ref=request.client_ref,
                due_at=when,
                state=State.SCHEDULED if when > now_ms else State.QUEUED,
                want_report=request.want_report,
                flags=request.flags,
                routing_group=request.routing_group,
            )
        )
    return Preparation(items)
