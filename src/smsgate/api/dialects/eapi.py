"""The BulkSMS-style EAPI dialect (``/eapi/...``): form fields in ISO-8859-1,
pipe-delimited plain-text replies.

Clients read the numeric status only and treat any HTTP status but 200 as
"retry", so every answer is HTTP 200 and every submission reply has exactly
three ``|`` fields, errors included (``23|invalid credentials|``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smsgate.account_limits import AccountThrottled
from smsgate.api.dialects.eapi_options import (
    AccountDefaults,
    InvalidOption,
    MessageSettings,
    RequestBuilder,
    parse_flag,
    present,
    read_settings,
)
from smsgate.api.endpoint import any_method_route, guarded
from smsgate.api.limits import plain_id
from smsgate.api.params import RequestParams, read_params
from smsgate.auth_guard import AuthThrottled
from smsgate.core.eapi_csv import (
    CHARSET,
    MAX_BATCH_ROWS,
    BatchFormatError,
    BatchTooLarge,
    parse_batch,
)
from smsgate.core.eapi_text import latin1_gsm_to_text, text_to_latin1_gsm
from smsgate.core.model import Account, MessageRequest
from smsgate.core.pricing import format_units
from smsgate.core.report_codes import eapi_report
from smsgate.core.schedule import format_local
from smsgate.core.states import Reason, State, UpstreamCondition
from smsgate.credentials import CredentialKind
from smsgate.gateway import Gateway, Memo, Overloaded, Submission, UpstreamUnavailable
from smsgate.notify.callbacks import CallbackFormat, HttpAnswer, HttpCall
from smsgate.request_record import RequestSeen
from smsgate.store.records import (
    AlreadyAccepted,
    CallbackJob,
    DailyQuotaExceeded,
    InboxEntry,
    InsufficientCredit,
    NoReplyNumber,
    ReportLine,
)

DIALECT = "eapi"
BASE = "/eapi"
MAX_STOP_DUP_ID = 2_147_483_647
# Fields only the body cap bounds (api/limits.py): message bodies, number lists, CSV.
LONG_FIELDS = frozenset({"message", "msisdn", "batch_data"})
MAX_INBOX_RECORDS = 1_000
MAX_DESCRIPTION = 255
REPORT_FIELDS = ("body", "completed_time", "created_time", "credits", "origin_address", "source_id")
TIME_FORMAT = "%y-%m-%d %H:%M:%S"


class EapiError(Exception):
    """A submission-level failure: answered as ``code|description|``."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description.replace("|", "/").replace("\n", " ")


def _text(body: str) -> Response:
    return Response(body.encode(CHARSET, "replace"), media_type=f"text/plain; charset={CHARSET}")


def _line(code: int, description: str, batch_id: int | str = "") -> str:
    return f"{code}|{description}|{batch_id}"


def refusal(description: str) -> Response:
    """A request refused before it reached an endpoint (api/http_protocol.py)."""
    return _text(_line(24, f"data validation failed: {description}"))


_UPSTREAM_CODES = {
    UpstreamCondition.NO_CREDIT: (26, "upstream credits not available"),
    UpstreamCondition.QUOTA_EXCEEDED: (28, "upstream quota exceeded"),
}


def transport_refusal(status: int, description: str) -> Response:
    """A body over the size or time limit (``api.transport``): HTTP 200, or
    clients would retry it forever."""
    return _text(_line(24, f"data validation failed: {description}"))


class TestMode(StrEnum):
    """``test_always_succeed`` / ``test_always_fail``: validate fully, send nothing."""

    OFF = ""
    SUCCEED = "succeed"
    FAIL = "fail"


@dataclass(frozen=True)
class BatchOptions:
    """The request-level parameters, already validated."""

    defaults: MessageSettings
    stop_dup_id: str | None
    description: str | None
    test: TestMode


class EapiApi:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def routes(self) -> list[Route]:
        endpoints: dict[str, Callable[[RequestParams], Awaitable[str]]] = {
            "submission/send_sms/2/2.0": self.send_sms,
            "submission/send_batch/1/1.0": self.send_batch,
            "user/get_credits/1/1.1": self.get_credits,
            "status_reports/get_report/2/2.0": self.get_report,
            "reception/get_inbox/1/1.1": self.get_inbox,
        }
        # Every method and every path under /eapi reaches an endpoint, so a
        # wrong one is answered in the dialect's words with HTTP 200: EAPI
        # clients retry anything else forever.
        return [
            *(
                any_method_route(f"{BASE}/{path}", self._endpoint(handler))
                for path, handler in endpoints.items()
            ),
            any_method_route(BASE + "/{rest:path}", self._endpoint(self._unknown)),
        ]

    def _endpoint(
        self, handler: Callable[[RequestParams], Awaitable[str]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if request.method not in ("GET", "POST"):
                raise EapiError(24, f"data validation failed: {request.method} is not supported")
            params = await read_params(request, charset=CHARSET, long_fields=LONG_FIELDS)
            if params.malformed:
                raise EapiError(24, f"data validation failed: {params.malformed}")
            return _text(await handler(params))

        return guarded(
            endpoint,
            dialect_error=EapiError,
            render_error=lambda exc: _text(_line(exc.code, exc.description)),
            unavailable=lambda: _text(_line(40, "temporarily unavailable")),
            internal=lambda: _text(_line(22, "internal fatal error")),
        )

    async def _unknown(self, params: RequestParams) -> str:
        raise EapiError(24, "data validation failed: unknown endpoint")

    async def _authenticate(self, params: RequestParams) -> Account:
        fields = params.fields
        username, password = str(fields.get("username", "")), str(fields.get("password", ""))
        account = None
        if username and password:
            try:
                account = await self.gateway.authenticate(
                    CredentialKind.EAPI_PASSWORD, username, password, address=params.client
                )
            except AuthThrottled as exc:
                raise EapiError(40, str(exc)) from None
        if account is None:
            raise EapiError(23, "invalid credentials")
        return account

    # ---------------------------------------------------------------- sending

    async def send_sms(self, params: RequestParams) -> str:
        account = await self._authenticate(params)
        options = self._options(params.fields, account)
        numbers = [n.strip() for n in str(params.fields.get("msisdn", "")).split(",") if n.strip()]
        if not numbers:
            raise EapiError(24, "data validation failed: msisdn is required")
        build = RequestBuilder(options.defaults, self._account_defaults(account))
        try:
            requests = [build(number, params.fields.get("message")) for number in numbers]
        except InvalidOption as exc:
            raise EapiError(24, f"data validation failed: {exc}") from None
        return await self._submit(account, requests, options, _seen("send_sms", params))

    async def send_batch(self, params: RequestParams) -> str:
        """CSV rows, each optionally overriding the message parameters; rows that
        cannot be read, or whose message cannot be decoded, are skipped."""
        account = await self._authenticate(params)
        options = self._options(params.fields, account)
        try:
            parsed = parse_batch(str(params.fields.get("batch_data", "")), max_rows=MAX_BATCH_ROWS)
        except BatchTooLarge:
            raise EapiError(201, "maximum batch size exceeded") from None
        except BatchFormatError as exc:
            raise EapiError(24, f"data validation failed: {exc}") from None
        defaults = self._account_defaults(account)
        base = options.defaults
        build_default = RequestBuilder(base, defaults)
        requests = []
        for row in parsed.rows:
            try:
                if row.overrides:
                    settings = read_settings(row.overrides, base, account.timezone, strict=False)
                    build = (
                        RequestBuilder(settings, defaults) if settings != base else build_default
                    )
                else:
                    build = build_default
                requests.append(build(row.msisdn, row.message))
            except InvalidOption:
                continue
        if not requests:
            raise EapiError(24, "data validation failed: no readable rows in batch_data")
        return await self._submit(account, requests, options, _seen("send_batch", params))

    async def _submit(
        self,
        account: Account,
        requests: list[MessageRequest],
        options: BatchOptions,
        seen: RequestSeen,
    ) -> str:
        now = self.gateway.store.clock()
        scheduled = all(r.send_at_ms is not None and r.send_at_ms > now for r in requests)

        def reply(submission: Submission) -> str:
            if scheduled:
                return _line(1, "SCHEDULED", submission.batch_id or "")
            return _line(0, "IN_PROGRESS", submission.batch_id or "")

        memo = None
        if options.stop_dup_id is not None:
            window = int(self.gateway.settings.eapi_stop_dup_hours * 3_600_000)
            memo = Memo(DIALECT, options.stop_dup_id, reply, window)
        try:
            submission = await self.gateway.submit(
                account,
                requests,
                dialect=DIALECT,
                memo=memo,
                description=options.description,
                test_mode=options.test is TestMode.SUCCEED,
                validate_only=options.test is TestMode.FAIL,
                request=seen,
            )
        except InsufficientCredit:
            raise EapiError(25, "insufficient credits") from None
        except DailyQuotaExceeded as exc:
            raise EapiError(27, f"daily quota exceeded: {exc}") from None
        except UpstreamUnavailable as exc:
            raise EapiError(*_UPSTREAM_CODES[exc.condition]) from None
        except Overloaded:
            raise EapiError(40, "temporarily unavailable") from None
        except (AccountThrottled, NoReplyNumber) as exc:
            raise EapiError(40, f"temporarily unavailable: {exc}") from None
        except AlreadyAccepted as earlier_request:
            return earlier_request.reply
        if options.test is TestMode.FAIL and not submission.all_refused:
            raise EapiError(22, "test_always_fail: validated, nothing recorded")
        if submission.batch_id is None:
            detail = submission.first_rejection.detail if submission.first_rejection else ""
            raise EapiError(24, f"data validation failed: {detail}")
        return reply(submission)

    def _options(self, fields: dict[str, Any], account: Account) -> BatchOptions:
        try:
            defaults = read_settings(fields, MessageSettings(), account.timezone, strict=True)
        except InvalidOption as exc:
            raise EapiError(24, f"data validation failed: {exc}") from None
        succeed = _flag(fields, "test_always_succeed", default=False)
        fail = _flag(fields, "test_always_fail", default=False)
        return BatchOptions(
            defaults=defaults,
            stop_dup_id=_stop_dup_id(fields),
            description=(present(fields, "scheduling_description") or "")[:MAX_DESCRIPTION] or None,
            test=TestMode.FAIL if fail else TestMode.SUCCEED if succeed else TestMode.OFF,
        )

    def _account_defaults(self, account: Account) -> AccountDefaults:
        return AccountDefaults(
            sender=account.senders[0] if account.senders else self.gateway.settings.default_sender,
            repliable=account.options.get("repliable") is True,
        )

    # ---------------------------------------------------------------- queries

    async def get_credits(self, params: RequestParams) -> str:
        account = await self._authenticate(params)
        return f"0|{format_units(await self.gateway.balance(account))}"

    async def get_report(self, params: RequestParams) -> str:
        account = await self._authenticate(params)
        batch_id = plain_id(params.fields.get("batch_id", ""))
        if batch_id is None:
            raise EapiError(24, "data validation failed: batch_id must be ASCII digits, below 2^63")
        fields = [
            f.strip() for f in str(params.fields.get("optional_fields", "")).split(",") if f.strip()
        ]
        unknown = [f for f in fields if f not in REPORT_FIELDS]
        if unknown:
            raise EapiError(24, f"data validation failed: unknown optional_fields {unknown}")
        msisdn = str(params.fields.get("msisdn", "")).strip()
        recipient = "+" + msisdn.lstrip("+") if msisdn else None
        lines = await self.gateway.store.batch_report(account.id, batch_id, recipient)
        if lines is None:
            raise EapiError(24, "data validation failed: no such batch_id")
        rendered = [_report_line(line, fields, account) for line in lines]
        return "0|Results to follow\n\n" + "".join(f"{line}\n" for line in rendered)

    async def get_inbox(self, params: RequestParams) -> str:
        """Replies received after ``last_retrieved_id``, oldest first, 1,000 at most."""
        account = await self._authenticate(params)
        after = plain_id(present(params.fields, "last_retrieved_id") or "0")
        if after is None:
            raise EapiError(
                24, "data validation failed: last_retrieved_id must be ASCII digits, below 2^63"
            )
        entries = await self.gateway.store.inbox(account.id, after, MAX_INBOX_RECORDS)
        lines = [_inbox_line(entry, account.timezone) for entry in entries]
        return f"0|records to follow|{len(lines)}\n" + "".join(f"{line}\n" for line in lines)


# ------------------------------------------------------------------ helpers


def _flag(fields: dict[str, Any], name: str, *, default: bool) -> bool:
    value = present(fields, name)
    if value is None:
        return default
    try:
        return parse_flag(value)
    except ValueError as exc:
        raise EapiError(24, f"data validation failed: {name} {exc}") from None


def _stop_dup_id(fields: dict[str, Any]) -> str | None:
    value = present(fields, "stop_dup_id")
    if value is None:
        return None
    number = plain_id(value)
    if number is None or not 1 <= number <= MAX_STOP_DUP_ID:
        raise EapiError(24, "data validation failed: stop_dup_id must be 1..2147483647")
    return str(number)


def _report_line(line: ReportLine, fields: list[str], account: Account) -> str:
    code = eapi_report(State(line.state), Reason(line.reason))
    parts = [line.recipient.lstrip("+"), str(code)]
    for name in fields:
        if name == "body":
            parts.append(_escape(text_to_latin1_gsm(line.body)))
        elif name == "completed_time":
            parts.append(
                format_local(line.done_at, account.timezone, TIME_FORMAT) if line.done_at else ""
            )
        elif name == "created_time":
            parts.append(format_local(line.created_at, account.timezone, TIME_FORMAT))
        elif name == "credits":
            parts.append(format_units(line.cost))
        elif name == "origin_address":
            parts.append(line.sender)
        else:
            parts.append(line.client_ref or "")
    return "|".join(parts)


def _inbox_line(entry: InboxEntry, timezone: str) -> str:
    """``msg_id|sender|message|received_time|msisdn|referring_batch_id|encoding``."""
    return "|".join(_inbox_fields(entry, timezone))


def _inbox_fields(entry: InboxEntry, timezone: str) -> tuple[str, ...]:
    """An inbox entry's fields, as get_inbox lists them and the MO push sends them.

    Text that the 7-bit carriage can hold goes as 7bit (``|`` and line breaks
    escaped); anything else as the hex of UTF-16BE, exactly as a 16bit
    submission would carry it.
    """
    carried = text_to_latin1_gsm(entry.body)
    if latin1_gsm_to_text(carried) == entry.body:
        body, encoding = _escape(carried), "7bit"
    else:
        body, encoding = entry.body.encode("utf-16-be").hex(), "16bit"
    return (
        str(entry.id),
        entry.sender.lstrip("+"),
        body,
        format_local(entry.received_at, timezone),
        entry.recipient.lstrip("+"),
        str(entry.batch_id or ""),
        encoding,
    )


def _escape(text: str) -> str:
    """Keep one report per line: escape the line breaks and pipes a body may hold."""
    return text.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n").replace("|", "\\|")


# EAPI pushes: retried after 60 min, 3 h and 12 h.
CALLBACK_RETRY_SECONDS = (3600.0, 10800.0, 43200.0)


def _seen(operation: str, params: RequestParams) -> RequestSeen:
    """What the batch's request record keeps of an EAPI submission."""
    return RequestSeen(operation, params.client, params.fields)


async def render_callback(job: CallbackJob) -> HttpCall:
    """The status push: an HTTP GET with the report fields as query parameters."""
    p = job.payload
    done = p.get("done_at") or p["created_at"]
    params = {
        "msisdn": str(p["recipient"]).lstrip("+"),
        "batch_id": str(p["batch_id"]),
        "status": str(eapi_report(State(p["state"]), Reason(p["reason"]))),
        "completed_time": format_local(done, p["timezone"], TIME_FORMAT),
        "source_id": p.get("client_ref") or "",
    }
    return HttpCall("GET", job.url, params=params)


def _push_accepted(answer: HttpAnswer) -> bool:
    """Success is HTTP 200 with a non-empty body, as EAPI receivers answer."""
    return answer.status == 200 and bool(answer.body.strip())


async def render_inbound(job: CallbackJob) -> HttpCall:
    """A reply pushed as an HTTP GET with the inbox's fields, plus the
    ``source_id`` of the message it answers."""
    p = job.payload
    entry = InboxEntry(
        p["inbound_id"],
        p["sender"],
        p["recipient"],
        p["body"],
        p["encoding"],
        p["received_at"],
        p["batch_id"],
    )
    msg_id, sender, message, received, msisdn, referring, encoding = _inbox_fields(
        entry, p["timezone"]
    )
    params = {
        "msg_id": msg_id,
        "sender": sender,
        "message": message,
        "received_time": received,
        "msisdn": msisdn,
        "referring_batch_id": referring,
        "encoding": encoding,
        "source_id": p.get("client_ref") or "",
    }
    return HttpCall("GET", job.url, params=params)


CALLBACKS = CallbackFormat(
    render=render_callback,
    retry_seconds=CALLBACK_RETRY_SECONDS,
    accepts=_push_accepted,
    render_inbound=render_inbound,
)
