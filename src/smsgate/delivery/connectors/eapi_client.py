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
from collections.abc import Sequence
from urllib.parse import urlencode

from smsgate.core.eapi_text import text_to_latin1_gsm
from smsgate.core.encoding import Encoding
from smsgate.core.pricing import credit_units
from smsgate.core.states import Reason, State
from smsgate.delivery.connectors.http_settings import HttpSettings
from smsgate.delivery.connectors.upstream import (
    ClientBase,
    PollRequest,
    Push,
    PushError,
    UpstreamAnswer,
    UpstreamRequest,
    final_report,
    later,
    taken,
)
from smsgate.store.records import (
    InboundMessage,
    OutboundMessage,
    Receipt,
    Refused,
    SubmitOutcome,
)

_FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=ISO-8859-1"}
SEND_BATCH = "/submission/send_batch/1/1.0"
GET_REPORT = "/status_reports/get_report/2/2.0"
GET_CREDITS = "/user/get_credits/1/1.1"
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


class EapiClient(ClientBase):
    dialect = "eapi"

    def __init__(self, settings: HttpSettings) -> None:
        super().__init__(settings)
        self._url = settings.base_url + SEND_BATCH
        self._report_url = settings.base_url + GET_REPORT

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
        body = self._form(
            batch_data=rows.getvalue(),
            sender=first.sender,
            dca="16bit" if unicode else "7bit",
            want_report="1",
            allow_concat_text_sms="1",
            concat_text_sms_max_parts=str(max(m.segments for m in messages)),
            stop_dup_id=str(int(key, 16) % _STOP_DUP_RANGE + 1),
        )
        return UpstreamRequest(messages, "POST", self._url, _FORM, body)

    def outcomes(
        self, connector: str, request: UpstreamRequest, answer: UpstreamAnswer
    ) -> list[SubmitOutcome]:
        messages = request.messages
        if answer.status != 200:  # EAPI clients treat every other status as "try again"
            return later(messages, f"HTTP {answer.status}: {answer.excerpt}", None)
        code, description, batch_id = _reply_fields(answer.body)
        error = f"upstream {code} {description}".strip()
        if code in (0, 1) and batch_id.isascii() and batch_id.isdigit():
            return [taken(m.id, connector, f"{batch_id}:{m.id}") for m in messages]
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
        ref = f"{batch_id}:{source_id}"[:64]
        text = urlencode(query)[:1_000]
        return [final_report(connector, ref, final, status, now, text, query.get("msisdn", ""))]

    def poll_requests(self, refs: Sequence[str]) -> list[PollRequest]:
        """One ``get_report`` a batch, with the rows' ``source_id`` (our ids)."""
        batches: dict[str, list[str]] = {}
        for ref in refs:
            batches.setdefault(ref.partition(":")[0], []).append(ref)
        return [
            PollRequest(
                tuple(asked),
                "POST",
                self._report_url,
                _FORM,
                self._form(batch_id=batch_id, optional_fields="source_id"),
            )
            for batch_id, asked in batches.items()
        ]

    def read_poll(
        self, connector: str, request: PollRequest, answer: UpstreamAnswer, now: int
    ) -> list[Receipt]:
        """``0|Results to follow`` then ``msisdn|status|source_id`` lines."""
        lines = answer.body.decode("latin-1").splitlines()
        if answer.status != 200 or not lines or not lines[0].startswith("0|"):
            return []
        batch_id = request.refs[0].partition(":")[0]
        asked = set(request.refs)
        receipts = []
        for line in lines[1:]:
            msisdn, _, rest = line.partition("|")
            status, _, source_id = rest.partition("|")
            ref = f"{batch_id}:{source_id.strip()}"
            final = _FINAL_CODES.get(int(status)) if status.isascii() and status.isdigit() else None
            if ref in asked and final is not None:
                receipts.append(
                    final_report(connector, ref, final, status, now, line, msisdn.strip())
                )
        return receipts

    def balance_request(self) -> PollRequest | None:
        return PollRequest((), "POST", self._settings.base_url + GET_CREDITS, _FORM, self._form())

    def read_balance(self, answer: UpstreamAnswer) -> int | None:
        """``0|2101.15``."""
        code, _, credit = answer.body.decode("latin-1").strip().partition("|")
        return credit_units(credit) if answer.status == 200 and code == "0" else None

    def _form(self, **fields: str) -> bytes:
        """A request's form with the account's credentials, in the dialect's
        ISO-8859-1 (what it cannot carry becomes ``?``)."""
        credentials = {"username": self._settings.username, "password": self._settings.password}
        return urlencode({**credentials, **fields}, encoding="latin-1", errors="replace").encode(
            "ascii"
        )


def _reply_fields(body: bytes) -> tuple[int | None, str, str]:
    """``code|description|batch_id`` of a submission reply's first line."""
    line = body.decode("latin-1").split("\n", 1)[0].strip()
    code, _, rest = line.partition("|")
    description, _, batch_id = rest.partition("|")
    number = int(code) if code.isascii() and code.isdigit() and len(code) < 6 else None
    return number, description[:100], batch_id.strip()
