"""The partnerID/apikey JSON dialect (``/api/services/...``), as Kenyan
white-label SMS platforms serve it, so their customers' code works unchanged.

Wire rules that shape this module: the transport status is always HTTP 200
with the outcome in ``response-code``; per-recipient failures stay inside
``responses`` so one bad number does not fail the other 999; request-level
failures are a single top-level object.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smsgate.account_limits import AccountThrottled
from smsgate.api.endpoint import any_method_route, guarded
from smsgate.api.limits import plain_id
from smsgate.api.params import RequestParams, read_params
from smsgate.auth_guard import AuthThrottled
from smsgate.core.model import Account, MessageRequest, Priority, RejectCode, Rejection
from smsgate.core.pricing import format_units
from smsgate.core.report_codes import advanta_report
from smsgate.core.schedule import InvalidSendTime, format_local, parse_send_time
from smsgate.core.senders import sender_problem
from smsgate.core.states import Reason, State
from smsgate.credentials import CredentialKind
from smsgate.gateway import (
    AcceptedMessage,
    Gateway,
    Overloaded,
    Submission,
    UpstreamUnavailable,
    idempotency_memo,
)
from smsgate.notify.callbacks import CallbackFormat, HttpCall
from smsgate.request_record import RequestSeen
from smsgate.store.records import (
    AlreadyAccepted,
    CallbackJob,
    DailyQuotaExceeded,
    InsufficientCredit,
)

DIALECT = "advanta"
BASE = "/api/services"
MAX_RECIPIENTS = 1000
MAX_SMSLIST = 1000
# Fields only the body cap bounds (api/limits.py): message bodies, number lists.
LONG_FIELDS = frozenset({"message", "mobile"})

DESCRIPTIONS = {
    200: "Success",
    1001: "Invalid sender id",
    1002: "Network not allowed",
    1003: "Invalid mobile number",
    1004: "Low bulk credits",
    1005: "Failed. System error",
    1006: "Invalid credentials",
    1007: "Failed. System error",
    1008: "No delivery report",
    1009: "Unsupported data type",
    1010: "Unsupported request type",
    1012: "Too many messages in smslist",
    1104: "Too many comma-separated contacts",
    4090: "Internal error. Try again after 5 minutes",
    4091: "No Partner ID is set",
    4092: "No API key provided",
    4093: "Details not found",
}

REJECTION_CODES = {
    RejectCode.INVALID_NUMBER: 1003,
    RejectCode.NETWORK_NOT_ALLOWED: 1002,
    RejectCode.INVALID_SENDER: 1001,
    RejectCode.EMPTY_MESSAGE: 1009,
    RejectCode.INVALID_SEND_TIME: 1009,
    RejectCode.MALFORMED: 1009,
    RejectCode.TOO_LONG: 1009,
}

# Callbacks: a short first retry (receivers restart), then backing off to hours.
CALLBACK_RETRY_SECONDS = (10.0, 60.0, 300.0, 1800.0, 7200.0, 21600.0)


class AdvantaError(Exception):
    """A request-level failure: answered as one top-level code."""

    def __init__(self, code: int, detail: str | None = None) -> None:
        description = DESCRIPTIONS[code] + (f": {detail}" if detail else "")
        super().__init__(description)
        self.code = code
        self.detail = detail
        self.description = description


def _reply(body: dict[str, Any], account: Account | None = None) -> Response:
    if account is not None and account.options.get("advanta_compat"):
        body = _compat(body, account.options)
    return Response(orjson.dumps(body), media_type="application/json")


def _compat(body: dict[str, Any], options: dict[str, object]) -> dict[str, Any]:
    """Per-account imitation of hosts that misspell keys or stringify network ids."""
    key = str(options.get("advanta_response_code_key", "response-code"))
    as_string = bool(options.get("advanta_networkid_as_string"))

    def convert(item: dict[str, Any]) -> dict[str, Any]:
        out = {(key if k == "response-code" else k): v for k, v in item.items()}
        if as_string and "networkid" in out:
            out["networkid"] = str(out["networkid"])
        return out

    converted = convert(body)
    if "responses" in converted:
        converted["responses"] = [convert(item) for item in converted["responses"]]
    return converted


def _error(code: int, detail: str | None = None) -> dict[str, Any]:
    error = AdvantaError(code, detail)
    return {"response-code": error.code, "response-description": error.description}


def transport_refusal(status: int, description: str) -> Response:
    """A body over the size or time limit (``api.transport``): HTTP 200, as always here."""
    return refusal(description)


def refusal(description: str) -> Response:
    """A request refused before it reached an endpoint (api/http_protocol.py)."""
    return _reply(_error(1009, description))


class AdvantaApi:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def routes(self) -> list[Route]:
        endpoints: dict[str, tuple[Callable[[RequestParams], Awaitable[Response]], list[str]]] = {
            "sendsms": (self.sendsms, ["GET", "POST"]),
            "sendotp": (self.sendotp, ["GET", "POST"]),
            "sendbulk": (self.sendbulk, ["POST"]),
            "getdlr": (self.getdlr, ["GET", "POST"]),
            "getbalance": (self.getbalance, ["GET", "POST"]),
        }
        routes = []
        for name, (handler, methods) in endpoints.items():
            endpoint = self._endpoint(handler, methods)
            # Every method reaches the endpoint, which answers a wrong one in
            # the dialect's own words (1010) rather than a plain-text 405.
            for path in (f"{BASE}/{name}", f"{BASE}/{name}/"):
                routes.append(any_method_route(path, endpoint))
        unknown = self._endpoint(self._unknown, ["GET", "POST", "PUT", "DELETE"])
        routes.append(any_method_route(BASE + "/{rest:path}", unknown))
        return routes

    def _endpoint(
        self, handler: Callable[[RequestParams], Awaitable[Response]], methods: list[str]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if request.method not in methods:
                raise AdvantaError(1010, f"{request.method} is not supported here")
            params = await read_params(request, long_fields=LONG_FIELDS)
            if params.malformed:
                raise AdvantaError(1009, params.malformed)
            return await handler(params)

        return guarded(
            endpoint,
            dialect_error=AdvantaError,
            render_error=lambda exc: _reply(_error(exc.code, exc.detail)),
            unavailable=lambda: _reply(_error(4090)),
            internal=lambda: _reply(_error(1007)),
        )

    async def _unknown(self, params: RequestParams) -> Response:
        raise AdvantaError(1010, "unknown endpoint")

    async def _authenticate(self, fields: dict[str, Any], address: str) -> tuple[Account, str]:
        partner_id = _text(fields.get("partnerID"))
        apikey = _text(fields.get("apikey"))
        if not partner_id:
            raise AdvantaError(4091)
        if not apikey:
            raise AdvantaError(4092)
        if _text(fields.get("pass_type")).lower() == "bm5":
            try:
                apikey = base64.b64decode(apikey, validate=True).decode()
            except ValueError:  # not base64 (binascii.Error), not ASCII, not UTF-8
                raise AdvantaError(1006) from None
        try:
            account = await self.gateway.authenticate(
                CredentialKind.PARTNER_APIKEY, partner_id, apikey, address=address
            )
        except AuthThrottled as exc:
            raise AdvantaError(4090, str(exc)) from None
        if account is None:
            raise AdvantaError(1006)
        return account, partner_id

    # ------------------------------------------------------------- sending

    async def sendsms(self, params: RequestParams) -> Response:
        return await self._send_to_list(params, otp=False)

    async def sendotp(self, params: RequestParams) -> Response:
        return await self._send_to_list(params, otp=True)

    async def _send_to_list(self, params: RequestParams, *, otp: bool) -> Response:
        fields = params.fields
        account, _ = await self._authenticate(fields, params.client)
        sender = _checked_sender(fields, account)
        message = _message(fields)
        numbers = _numbers(fields.get("mobile"))
        if not numbers:
            raise AdvantaError(1003, "mobile is required")
        if len(numbers) > (1 if otp else MAX_RECIPIENTS):
            raise AdvantaError(1104, f"at most {1 if otp else MAX_RECIPIENTS} numbers")
        send_at = _send_time(fields, account)
        client_ref = fields.get("clientsmsid")
        requests: list[MessageRequest | Rejection] = [
            MessageRequest(number, message, sender, _ref(client_ref), send_at) for number in numbers
        ]
        priority = Priority.URGENT if otp else Priority.NORMAL
        return await self._submit(
            params,
            account,
            requests,
            [client_ref] * len(numbers),
            priority=priority,
            shape=_OTP_SHAPE if otp else _SENDSMS_SHAPE,
            operation="sendotp" if otp else "sendsms",
        )

    async def sendbulk(self, params: RequestParams) -> Response:
        body = params.fields
        smslist = body.get("smslist")
        if not isinstance(smslist, list) or not smslist:
            raise AdvantaError(1009, "smslist must be a non-empty list of messages")
        count = body.get("count")
        if len(smslist) > MAX_SMSLIST or (isinstance(count, int) and count > MAX_SMSLIST):
            raise AdvantaError(1012, f"at most {MAX_SMSLIST} messages per request")
        first = smslist[0]
        if not isinstance(first, dict):
            raise AdvantaError(1009, "each smslist entry must be an object")
        account, _ = await self._authenticate(first, params.client)
        sender = _checked_sender(first, account)
        requests: list[MessageRequest | Rejection] = []
        client_refs: list[Any] = []
        for entry in smslist:
            client_refs.append(entry.get("clientsmsid") if isinstance(entry, dict) else None)
            requests.append(_bulk_entry(entry, sender, account))
        return await self._submit(
            params,
            account,
            requests,
            client_refs,
            priority=Priority.NORMAL,
            shape=_BULK_SHAPE,
            operation="sendbulk",
        )

    async def _submit(
        self,
        params: RequestParams,
        account: Account,
        requests: Sequence[MessageRequest | Rejection],
        client_refs: Sequence[Any],
        *,
        priority: Priority,
        shape: _IdShape,
        operation: str,
    ) -> Response:
        """Store the messages and answer them. Everything that could make the
        reply fail is checked before the commit: the door bounds the JSON's
        depth (api/limits.py) and the echoed ``clientsmsid`` values are
        serialised here first, so a committed send never answers 1007."""
        valid = [r for r in requests if isinstance(r, MessageRequest)]
        try:
            orjson.dumps(list(client_refs))
        except orjson.JSONEncodeError as exc:
            raise AdvantaError(1009, f"clientsmsid cannot be echoed: {exc}") from None

        def body_of(submission: Submission) -> dict[str, Any]:
            outcomes = _merge(requests, submission.results)
            return {
                "responses": [
                    _recipient_reply(request, outcome, ref, shape)
                    for request, outcome, ref in zip(requests, outcomes, client_refs, strict=True)
                ]
            }

        memo = idempotency_memo(
            params.headers, DIALECT, lambda sub: orjson.dumps(body_of(sub)).decode()
        )
        try:
            submission = await self.gateway.submit(
                account,
                valid,
                dialect=DIALECT,
                priority=priority,
                memo=memo,
                request=RequestSeen(operation, params.client, params.fields),
            )
        except InsufficientCredit:
            raise AdvantaError(1004) from None
        except DailyQuotaExceeded as exc:
            raise AdvantaError(1005, f"daily quota exceeded: {exc}") from None
        except (Overloaded, UpstreamUnavailable, AccountThrottled) as exc:
            raise AdvantaError(4090, str(exc) or "too busy") from None
        except AlreadyAccepted as earlier_request:
            return _reply(orjson.loads(earlier_request.reply), account)
        return _reply(body_of(submission), account)

    # ------------------------------------------------------------- queries

    async def getdlr(self, params: RequestParams) -> Response:
        account, _ = await self._authenticate(params.fields, params.client)
        message_id = plain_id(params.fields.get("messageID") or params.fields.get("messageid"))
        if message_id is None:
            raise AdvantaError(4093, "messageID must be a message id returned by a send")
        view = await self.gateway.message(account, message_id)
        if view is None:
            raise AdvantaError(4093)
        report = advanta_report(view.state, view.reason)
        if report is None:
            return _reply({"response-code": 1009, "response-description": "No dlr"}, account)
        status, description = report
        reported_at = view.done_at or view.submitted_at or view.created_at
        return _reply(
            {
                "response-code": 200,
                "response-description": "Success",
                "message-id": str(view.id),
                "delivery-status": status,
                "delivery-description": description,
                "delivery-tat": _clock_duration(reported_at - view.created_at),
                "delivery-networkid": view.network_id,
                "delivery-time": format_local(reported_at, account.timezone),
            },
            account,
        )

    async def getbalance(self, params: RequestParams) -> Response:
        account, partner_id = await self._authenticate(params.fields, params.client)
        balance = await self.gateway.balance(account)
        return _reply(
            {"response-code": 200, "credit": format_units(balance), "partner-id": partner_id},
            account,
        )


# ------------------------------------------------------------------ helpers


@dataclass(frozen=True)
class _IdShape:
    """How a send's reply writes ``mobile`` and ``messageid``: the dialect's
    samples use numbers for sendsms, a string id for sendotp, strings for both
    in sendbulk."""

    mobile_as_string: bool
    id_as_string: bool


_SENDSMS_SHAPE = _IdShape(mobile_as_string=False, id_as_string=False)
_OTP_SHAPE = _IdShape(mobile_as_string=False, id_as_string=True)
_BULK_SHAPE = _IdShape(mobile_as_string=True, id_as_string=True)


def _text(value: Any) -> str:
    if value is None or isinstance(value, dict | list | bool):
        return ""
    return str(value).strip()


def _ref(value: Any) -> str | None:
    text = _text(value)
    return text[:64] or None


def _checked_sender(fields: dict[str, Any], account: Account) -> str:
    sender = _text(fields.get("shortcode"))
    problem = sender_problem(sender, account.senders)
    if problem:
        raise AdvantaError(1001, problem)
    return sender


def _message(fields: dict[str, Any]) -> str:
    message = fields.get("message")
    if not isinstance(message, str) or not message:
        raise AdvantaError(1009, "message must be a non-empty string")
    return message


def _numbers(value: Any) -> list[str]:
    if isinstance(value, int) and not isinstance(value, bool):
        return [str(value)]
    if isinstance(value, list):
        return [_text(v) for v in value if _text(v)]
    return [part.strip() for part in _text(value).split(",") if part.strip()]


def _send_time(fields: dict[str, Any], account: Account) -> int | None:
    raw = fields.get("timeToSend")
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str | int | float) or isinstance(raw, bool):
        raise AdvantaError(1009, "timeToSend must be a date string or a unix timestamp")
    try:
        return parse_send_time(raw, account.timezone)
    except InvalidSendTime as exc:
        raise AdvantaError(1009, str(exc)) from None


def _bulk_entry(entry: Any, sender: str, account: Account) -> MessageRequest | Rejection:
    """One smslist object; its own problems stay its own (a per-message error)."""
    if not isinstance(entry, dict):
        return Rejection(RejectCode.MALFORMED, "entry is not an object")
    try:
        message = _message(entry)
        numbers = _numbers(entry.get("mobile"))
        if len(numbers) != 1:
            return Rejection(RejectCode.INVALID_NUMBER, "exactly one mobile per message")
        return MessageRequest(
            numbers[0], message, sender, _ref(entry.get("clientsmsid")), _send_time(entry, account)
        )
    except AdvantaError as exc:
        return Rejection(RejectCode.MALFORMED, exc.detail or exc.description)


def _merge(
    requests: Sequence[MessageRequest | Rejection], results: Sequence[AcceptedMessage | Rejection]
) -> Iterator[AcceptedMessage | Rejection]:
    """Put the gateway's results back among the adapter's own rejections, in order."""
    from_gateway = iter(results)
    for request in requests:
        yield request if isinstance(request, Rejection) else next(from_gateway)


def _recipient_reply(
    request: MessageRequest | Rejection,
    outcome: AcceptedMessage | Rejection,
    client_ref: Any,
    shape: _IdShape,
) -> dict[str, Any]:
    if isinstance(outcome, Rejection):
        mobile = request.recipient if isinstance(request, MessageRequest) else ""
        code = REJECTION_CODES[outcome.code]
        reply: dict[str, Any] = {
            "response-code": code,
            "response-description": DESCRIPTIONS[code],
            "mobile": mobile,
        }
        if code == 1009 or outcome.code is RejectCode.NETWORK_NOT_ALLOWED:
            reply["response-description"] += f": {outcome.detail}"
    else:
        mobile = outcome.recipient.lstrip("+")
        reply = {
            "response-code": 200,
            "response-description": "Success",
            "mobile": mobile if shape.mobile_as_string else int(mobile),
            "messageid": str(outcome.id) if shape.id_as_string else outcome.id,
            "networkid": outcome.network_id,
        }
    if client_ref is not None:
        reply["clientsmsid"] = client_ref
    return reply


def _clock_duration(ms: int) -> str:
    seconds = max(ms, 0) // 1000
    hours, rest = divmod(seconds, 3600)
    return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


async def render_callback(job: CallbackJob) -> HttpCall:
    """The platform's DLR push: POST JSON with description, id, turnaround, time."""
    p = job.payload
    report = advanta_report(State(p["state"]), Reason(p["reason"])) or (0, "Unknown")
    done = p.get("done_at") or p["created_at"]
    body = {
        "description": report[1],
        "messageid": str(p["message_id"]),
        "timeTaken": f"{max(done - p['created_at'], 0) // 1000}s",
        "timestamp": format_local(done, p["timezone"]),
    }
    return HttpCall("POST", job.url, {"Content-Type": "application/json"}, orjson.dumps(body))


async def render_inbound(job: CallbackJob) -> HttpCall:
    """A message a handset wrote to the account's shortcode (or in reply to
    one of its messages), forwarded as POST JSON in the DLR push's style."""
    p = job.payload
    body = {
        "messageid": str(p["inbound_id"]),
        "mobile": str(p["sender"]).lstrip("+"),
        "shortcode": p["recipient"],
        "message": p["body"],
        "timestamp": format_local(p["received_at"], p["timezone"]),
    }
    if p.get("client_ref"):
        body["clientsmsid"] = p["client_ref"]
    return HttpCall("POST", job.url, {"Content-Type": "application/json"}, orjson.dumps(body))


CALLBACKS = CallbackFormat(
    render=render_callback, retry_seconds=CALLBACK_RETRY_SECONDS, render_inbound=render_inbound
)
