"""Speaking the partnerID/apikey dialect as a client: sendbulk out, pushes in.

One sendbulk request carries up to 1,000 distinct messages, but the provider
uses the first entry's shortcode for all of them, so a request holds messages
of one sender only. Its answer has one entry per message in request order,
each echoing our ``clientsmsid`` (the message id), so every message gets its
own outcome: taken with the provider's ``messageid``, refused for good, or to
be sent again. Codes the provider uses for "not now" (system errors, 4090)
cost the message no attempt.

The provider pushes each delivery report as the dialect's DLR push (and
messages its handsets send to our shortcode as the MO push) to the receiver
URL of the connection; ``read_push`` turns either into what the store takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from smsgate.core.encoding import Encoding
from smsgate.core.pricing import credit_units
from smsgate.core.report_codes import (
    ADVANTA_ABSENT,
    ADVANTA_BLACKLISTED,
    ADVANTA_DELIVERED,
    ADVANTA_IMPOSSIBLE,
    ADVANTA_UNKNOWN,
)
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
    json_object,
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

_FINAL_REPORTS: dict[str, tuple[State, Reason]] = {
    ADVANTA_DELIVERED[1]: (State.DELIVERED, Reason.NONE),
    ADVANTA_ABSENT[1]: (State.UNDELIVERABLE, Reason.ABSENT_SUBSCRIBER),
    ADVANTA_IMPOSSIBLE[1]: (State.UNDELIVERABLE, Reason.NONE),
    ADVANTA_BLACKLISTED[1]: (State.REJECTED, Reason.SENDER_BLOCKED),
    ADVANTA_UNKNOWN[1]: (State.UNKNOWN, Reason.UNKNOWN),
}
"""The provider's final delivery descriptions; the others (SentToNetwork,
Scheduled) say the message is still on its way."""

_REFUSALS: dict[int, tuple[State, Reason]] = {
    1001: (State.REJECTED, Reason.SENDER_BLOCKED),
    1002: (State.REJECTED, Reason.UNROUTABLE),
    1003: (State.REJECTED, Reason.UNKNOWN_SUBSCRIBER),
    1004: (State.FAILED, Reason.UPSTREAM_NO_CREDIT),
}
_NOT_NOW_MS = {1005: 30_000, 1007: 30_000, 4090: 300_000}
"""System errors, and 4090 ("internal error, retry after 5 min")."""


class AdvantaClient(ClientBase):
    dialect = "advanta"

    def __init__(self, settings: HttpSettings) -> None:
        super().__init__(settings)
        self._url = f"{settings.base_url}/sendbulk"

    def group_of(self, message: OutboundMessage) -> str:
        return message.sender

    def request(self, messages: tuple[OutboundMessage, ...], key: str) -> UpstreamRequest:
        entries = [
            {
                "partnerID": self._settings.username,
                "apikey": self._settings.password,
                "pass_type": "plain",
                "clientsmsid": str(m.id),
                "mobile": m.recipient.lstrip("+"),
                "message": m.body,
                "shortcode": m.sender,
            }
            for m in messages
        ]
        body = orjson.dumps({"count": len(entries), "smslist": entries})
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        return UpstreamRequest(messages, "POST", self._url, headers, body)

    def outcomes(
        self, connector: str, request: UpstreamRequest, answer: UpstreamAnswer
    ) -> list[SubmitOutcome]:
        messages = request.messages
        document = json_object(answer.body)
        if answer.status != 200 or document is None:
            return later(messages, f"HTTP {answer.status}: {answer.excerpt}", answer.status)
        entries = document.get("responses")
        if not isinstance(entries, list):
            return _request_refused(messages, document)
        by_ref = {
            str(entry.get("clientsmsid")): entry for entry in entries if isinstance(entry, dict)
        }
        outcomes: list[SubmitOutcome] = []
        for index, message in enumerate(messages):
            entry = by_ref.get(str(message.id))
            if entry is None and index < len(entries) and isinstance(entries[index], dict):
                entry = entries[index]
            outcomes.append(_entry_outcome(connector, message, entry))
        return outcomes

    def read_push(
        self, connector: str, push: Push, now: int
    ) -> list[Receipt] | list[InboundMessage]:
        body = push.body
        document = json_object(body)
        if document is None or not isinstance(document.get("messageid"), str | int):
            raise PushError("expected a JSON object with a messageid")
        if "message" in document and "mobile" in document:
            return [
                InboundMessage(
                    connector,
                    str(document["mobile"]),
                    str(document.get("shortcode", "")),
                    str(document["message"]),
                    Encoding.GSM7 if str(document["message"]).isascii() else Encoding.UCS2,
                    now,
                )
            ]
        description = str(document.get("description", ""))
        final = _FINAL_REPORTS.get(description)
        if final is None:
            return []  # on its way still: nothing to record
        ref, text = str(document["messageid"]), body.decode("utf-8", "replace")
        return [final_report(connector, ref, final, description, now, text)]

    def poll_requests(self, refs: Sequence[str]) -> list[PollRequest]:
        """One ``getdlr`` a message: the dialect asks about one id at a time."""
        url = f"{self._settings.base_url}/getdlr"
        headers = {"Content-Type": "application/json"}
        credentials = {"partnerID": self._settings.username, "apikey": self._settings.password}
        return [
            PollRequest(
                (ref,), "POST", url, headers, orjson.dumps({**credentials, "messageID": ref})
            )
            for ref in refs
        ]

    def read_poll(
        self, connector: str, request: PollRequest, answer: UpstreamAnswer, now: int
    ) -> list[Receipt]:
        document = json_object(answer.body)
        if answer.status != 200 or document is None:
            return []
        description = str(document.get("delivery-description", ""))
        final = _FINAL_REPORTS.get(description)
        if final is None:  # No dlr yet, or on its way
            return []
        [ref] = request.refs
        text = answer.body[:1_000].decode("utf-8", "replace")
        return [final_report(connector, ref, final, description, now, text)]

    def balance_request(self) -> PollRequest | None:
        credentials = {"partnerID": self._settings.username, "apikey": self._settings.password}
        url = f"{self._settings.base_url}/getbalance"
        headers = {"Content-Type": "application/json"}
        return PollRequest((), "POST", url, headers, orjson.dumps(credentials))

    def read_balance(self, answer: UpstreamAnswer) -> int | None:
        document = json_object(answer.body)
        if answer.status != 200 or document is None:
            return None
        return credit_units(document.get("credit"))


def _entry_outcome(
    connector: str, message: OutboundMessage, entry: dict[str, Any] | None
) -> SubmitOutcome:
    if entry is None:
        return later((message,), "the answer had no entry for this message", None)[0]
    code = _code(entry.get("response-code"))
    ref = str(entry.get("messageid", ""))
    if code == 200 and ref:
        return taken(message.id, connector, ref)
    description = str(entry.get("response-description", ""))[:100]
    error = f"upstream {code} {description}".strip()
    if code in _REFUSALS:
        state, reason = _REFUSALS[code]
        return Refused(message.id, state, reason, error)
    if code in _NOT_NOW_MS:
        return later((message,), error, None, delay_ms=_NOT_NOW_MS[code])[0]
    return Refused(message.id, State.REJECTED, Reason.CARRIER_REJECTED, error)


def _request_refused(
    messages: tuple[OutboundMessage, ...], document: dict[str, Any]
) -> list[SubmitOutcome]:
    """A top-level code: the request as a whole was refused."""
    code = _code(document.get("response-code"))
    error = f"upstream {code} {str(document.get('response-description', ''))[:100]}".strip()
    if code in _REFUSALS:
        # The request's shortcode (all its messages have one sender), or low
        # bulk credits: the upstream condition the gateway knows.
        state, reason = _REFUSALS[code]
        return [Refused(m.id, state, reason, error) for m in messages]
    # Credentials, a malformed request, a system error: the connection is at
    # fault, not the messages; they wait for it to be fixed.
    return later(messages, error, None, delay_ms=_NOT_NOW_MS.get(code or 0, 60_000))


def _code(value: object) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 10:
        return int(value)
    return None
