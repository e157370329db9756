"""Speaking EAPI as a client: send_batch out, GET report pushes in.

One send_batch carries up to 30,000 rows (``batch`` option, default 1,000)
with one batch-wide sender and coding, so a request holds messages of one
sender and one encoding. Its answer is one line for the whole batch: every
message is taken under the provider's batch id, or all are refused or
deferred alike. Each row carries our message id as its ``source_id``, which
the provider echoes in every report, so a report names its message by
``batch_id:source_id``. The request's ``stop_dup_id`` is derived from its
Idempotency key: a resend of a lost answer gets the first submission's reply
from a provider that honours it, within the provider's window.

Rows the provider finds invalid are skipped by it without a word (the
dialect's lenient parsing); such a message gets no report and ends
``unknown`` after the connection's receipt timeout.
"""

from __future__ import annotations

import csv
import io
from urllib.parse import urlencode

from smsgate.core.carrier_ids import IdFormat
from smsgate.core.eapi_text import text_to_latin1_gsm
from smsgate.core.encoding import Encoding
from smsgate.core.states import Reason, State
from smsgate.delivery.connectors.http_settings import HttpSettings
from smsgate.delivery.connectors.upstream import (
    Push,
    PushError,
    UpstreamAnswer,
    UpstreamRequest,
    later,
)
from smsgate.store.records import (
    CarrierPart,
    InboundMessage,
    OutboundMessage,
    Receipt,
    Refused,
    SubmitOutcome,
    Submitted,
)

SEND_BATCH = "/submission/send_batch/1/1.0"
_STOP_DUP_RANGE = 2_147_483_647

_FINAL_CODES: dict[int, tuple[State, Reason]] = {
    11: (State.DELIVERED, Reason.NONE),
    22: (State.FAILED, Reason.NONE),
    25: (State.FAILED, Reason.UPSTREAM_NO_CREDIT),
    26: (State.FAILED, Reason.UPSTREAM_NO_CREDIT),
    27: (State.FAILED, Reason.UPSTREAM_QUOTA),
    28: (State.FAILED, Reason.UPSTREAM_QUOTA),
    29: (State.CANCELLED, Reason.NONE),
    31: (State.REJECTED, Reason.UNROUTABLE),
    32: (State.REJECTED, Reason.BLOCKED),
    33: (State.REJECTED, Reason.BLOCKED),
    50: (State.FAILED, Reason.NONE),
    51: (State.UNDELIVERABLE, Reason.NONE),
    52: (State.REJECTED, Reason.CARRIER_REJECTED),
    53: (State.EXPIRED, Reason.VALIDITY_EXPIRED),
    54: (State.UNDELIVERABLE, Reason.NETWORK_ERROR),
    55: (State.UNDELIVERABLE, Reason.BLOCKED),
    56: (State.UNDELIVERABLE, Reason.BLOCKED),
    57: (State.UNDELIVERABLE, Reason.HANDSET_ERROR),
    70: (State.UNKNOWN, Reason.UNKNOWN),
}
"""Report codes that end a message; the others (0, 10, 12, 40, 60, 63) say
it is on its way or being retried by the provider."""

_REFUSED: dict[int, tuple[State, Reason]] = {
    24: (State.REJECTED, Reason.CARRIER_REJECTED),
    25: (State.FAILED, Reason.UPSTREAM_NO_CREDIT),
    26: (State.FAILED, Reason.UPSTREAM_NO_CREDIT),
    27: (State.FAILED, Reason.UPSTREAM_QUOTA),
    28: (State.FAILED, Reason.UPSTREAM_QUOTA),
}
"""Submission codes that refuse the whole batch for good."""


class EapiClient:
    dialect = "eapi"
    id_format = IdFormat.STRING

    def __init__(self, settings: HttpSettings) -> None:
        self._settings = settings
        self._url = settings.base_url + SEND_BATCH

    def cannot_carry(self, message: OutboundMessage) -> str | None:
        if message.encoding == Encoding.BINARY:
            return "binary messages are not sent through EAPI upstreams"
        return None

    def group_of(self, message: OutboundMessage) -> str:
        return f"{message.encoding}:{message.sender}"

    def request(self, messages: tuple[OutboundMessage, ...], key: str) -> UpstreamRequest:
        first = messages[0]
        unicode = first.encoding == Encoding.UCS2
        rows = io.StringIO()
        writer = csv.writer(rows, lineterminator="\n")
        writer.writerow(("msisdn", "message", "source_id"))
        for m in messages:
            text = m.body.encode("utf-16-be").hex() if unicode else text_to_latin1_gsm(m.body)
            writer.writerow((m.recipient.lstrip("+"), text, str(m.id)))
        fields = {
            "username": self._settings.username,
            "password": self._settings.password,
            "batch_data": rows.getvalue(),
            "sender": first.sender,
            "dca": "16bit" if unicode else "7bit",
            "want_report": "1",
            "allow_concat_text_sms": "1",
            "concat_text_sms_max_parts": str(max(m.segments for m in messages)),
            "stop_dup_id": str(int(key, 16) % _STOP_DUP_RANGE + 1),
        }
        body = urlencode(fields, encoding="latin-1", errors="replace").encode("ascii")
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=ISO-8859-1"}
        return UpstreamRequest(messages, "POST", self._url, headers, body)

    def outcomes(
        self, connector: str, request: UpstreamRequest, answer: UpstreamAnswer
    ) -> list[SubmitOutcome]:
        messages = request.messages
        if answer.status != 200:  # EAPI clients treat every other status as "try again"
            return later(messages, f"HTTP {answer.status}: {answer.excerpt}", None)
        code, description, batch_id = _reply_fields(answer.body)
        error = f"upstream {code} {description}".strip()
        if code in (0, 1) and batch_id.isascii() and batch_id.isdigit():
            return [Submitted(m.id, connector, (_part(f"{batch_id}:{m.id}"),)) for m in messages]
        if code in _REFUSED:
            state, reason = _REFUSED[code]
            return [Refused(m.id, state, reason, error) for m in messages]
        # 22 internal, 23 credentials, 40 temporarily unavailable, 201 too
        # large, or an answer we cannot read: the connection, not the messages.
        return later(messages, error or f"unreadable answer {answer.excerpt!r}", None)

    def read_push(
        self, connector: str, push: Push, now: int
    ) -> list[Receipt] | list[InboundMessage]:
        query = push.query
        batch_id, source_id = query.get("batch_id", ""), query.get("source_id", "")
        status = query.get("status", "")
        if not (batch_id and source_id and status.isascii() and status.isdigit()):
            raise PushError("expected batch_id, source_id and a numeric status")
        final = _FINAL_CODES.get(int(status[:4]))
        if final is None:
            return []
        state, reason = final
        ref = f"{batch_id}:{source_id}"[:64]
        return [
            Receipt(
                connector,
                ref,
                state,
                reason,
                status[:32],
                now,
                carrier_ref=ref,
                handset=query.get("msisdn", "").lstrip("+")[:20],
                text=urlencode(query)[:1_000],
            )
        ]


def _part(ref: str) -> CarrierPart:
    return CarrierPart(1, ref, ref)


def _reply_fields(body: bytes) -> tuple[int | None, str, str]:
    """``code|description|batch_id`` of a submission reply's first line."""
    line = body.decode("latin-1").split("\n", 1)[0].strip()
    code, _, rest = line.partition("|")
    description, _, batch_id = rest.partition("|")
    number = int(code) if code.isascii() and code.isdigit() and len(code) < 6 else None
    return number, description[:100], batch_id.strip()
