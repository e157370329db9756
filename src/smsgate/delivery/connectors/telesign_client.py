"""Speaking the Telesign-style bulk SMS API as a client: bulk_sms out, signed
callbacks in.

One ``bulk_sms`` request sends one text (``template``) from one sender to up
to 1,000 recipients, so a request holds messages of the same text and
sender. Each recipient carries our message id as its session id, which the
provider returns in that recipient's callback together with the request's
``reference_id``: a report names its message as ``reference_id:session_id``.
The answer is one envelope for the whole request. Requests authenticate
with Basic auth; each callback must carry the provider's TSA signature of
its body under the same API key, or it is refused.
"""

from __future__ import annotations

import base64
import hmac
from urllib.parse import urlencode

from smsgate.core.states import Reason, State
from smsgate.core.telesign_auth import sign_callback
from smsgate.delivery.connectors.http_settings import HttpSettings
from smsgate.delivery.connectors.upstream import (
    ClientBase,
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

BULK_SMS = "/v1/verify/bulk_sms"

_FINAL_CODES: dict[int, tuple[State, Reason]] = {
    200: (State.DELIVERED, Reason.NONE),
    207: (State.UNDELIVERABLE, Reason.NONE),
    210: (State.UNDELIVERABLE, Reason.ABSENT_SUBSCRIBER),
    211: (State.UNDELIVERABLE, Reason.UNKNOWN_SUBSCRIBER),
    220: (State.REJECTED, Reason.UNROUTABLE),
    221: (State.EXPIRED, Reason.VALIDITY_EXPIRED),
    222: (State.UNDELIVERABLE, Reason.HANDSET_ERROR),
    230: (State.REJECTED, Reason.BLOCKED),
    231: (State.REJECTED, Reason.CARRIER_REJECTED),
    237: (State.REJECTED, Reason.BLOCKED),
    238: (State.REJECTED, Reason.BLOCKED),
    250: (State.UNKNOWN, Reason.UNKNOWN),
    251: (State.UNKNOWN, Reason.NO_RECEIPT),
}
"""Callback codes that end a message; 203 (delivered to gateway), 290 and
293 say it is on its way."""


class TelesignClient(ClientBase):
    """No status or balance query: the public API has neither, so reports
    come by callback only."""

    dialect = "telesign"

    def __init__(self, settings: HttpSettings) -> None:
        super().__init__(settings)
        self._url = settings.base_url + BULK_SMS

    def group_of(self, message: OutboundMessage) -> str:
        return f"{message.sender}\0{message.body}"

    def request(self, messages: tuple[OutboundMessage, ...], key: str) -> UpstreamRequest:
        first = messages[0]
        fields = {
            "recipients": ",".join(f"{m.recipient.lstrip('+')}:{m.id}" for m in messages),
            "template": first.body,
            "sender_id": first.sender,
        }
        credentials = f"{self._settings.username}:{self._settings.password}".encode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": "Basic " + base64.b64encode(credentials).decode("ascii"),
            "Idempotency-Key": key,
        }
        return UpstreamRequest(messages, "POST", self._url, headers, urlencode(fields).encode())

    def outcomes(
        self, connector: str, request: UpstreamRequest, answer: UpstreamAnswer
    ) -> list[SubmitOutcome]:
        messages = request.messages
        document = json_object(answer.body) or {}
        errors = document.get("errors")
        error = f"HTTP {answer.status}: {answer.excerpt}"
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            error = f"HTTP {answer.status}: {errors[0].get('code')} {errors[0].get('description')}"
        reference = document.get("reference_id")
        if answer.status == 200 and isinstance(reference, str) and reference:
            return [taken(m.id, connector, f"{reference}:{m.id}") for m in messages]
        if answer.status == 400:  # validation: the request's content, for good
            return [
                Refused(m.id, State.REJECTED, Reason.CARRIER_REJECTED, error[:200])
                for m in messages
            ]
        # 401 (credentials), 429, 5xx, or an envelope we cannot read: wait.
        return later(messages, error[:200], answer.status if answer.status != 401 else None)

    def read_push(
        self, connector: str, push: Push, now: int
    ) -> list[Receipt] | list[InboundMessage]:
        expected = sign_callback(
            push.body, customer_id=self._settings.username, api_key_b64=self._settings.password
        )
        given = push.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise PushError("the callback's signature does not verify")
        document = json_object(push.body) or {}
        status = document.get("status")
        reference, session = document.get("reference_id"), document.get("session_id")
        if not (isinstance(status, dict) and isinstance(reference, str) and session):
            raise PushError("expected status, reference_id and session_id")
        code = status.get("code")
        final = _FINAL_CODES.get(code) if isinstance(code, int) else None
        if final is None:
            return []
        ref = f"{reference}:{session}"[:64]
        text = push.body[:1_000].decode("utf-8", "replace")
        handset = str(document.get("phone_number", ""))
        return [final_report(connector, ref, final, code, now, text, handset)]
