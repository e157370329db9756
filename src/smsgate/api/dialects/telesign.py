"""The Telesign-style bulk SMS dialect (``/v1/verify/bulk_sms``).

The official SDK posts UTF-8 form fields and signs them (TSA HMAC-SHA256) or
sends Basic credentials; it reads HTTP statuses, so unlike the other dialects
this one answers errors with 400/401/429/503 and a JSON envelope whose
``errors`` carry Telesign's negative codes. Callbacks are signed with the
account's own key, which is why that key is kept sealed, not hashed.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smsgate.account_limits import AccountThrottled
from smsgate.api.endpoint import any_method_route, guarded
from smsgate.api.limits import MAX_ID, field_problem
from smsgate.api.params import client_address, form_fields
from smsgate.auth_guard import AuthThrottled
from smsgate.core.model import Account, MessageRequest, Rejection
from smsgate.core.report_codes import telesign_status
from smsgate.core.states import Reason, State
from smsgate.core.telesign_auth import (
    AuthCode,
    AuthFailure,
    Credentials,
    parse_authorization,
    sign_callback,
    verify_tsa,
)
from smsgate.credentials import CredentialKind, recently_verified
from smsgate.gateway import (
    Gateway,
    Overloaded,
    Submission,
    UpstreamUnavailable,
    idempotency_memo,
)
from smsgate.notify.callbacks import CallbackFormat, HttpCall
from smsgate.request_record import RequestSeen
from smsgate.secret_box import SecretBox
from smsgate.store.records import (
    AlreadyAccepted,
    CallbackJob,
    DailyQuotaExceeded,
    InsufficientCredit,
)
from smsgate.store.repo import Store

DIALECT = "telesign"
PATH = "/v1/verify/bulk_sms"
MAX_RECIPIENTS = 1_000
MAX_SESSION_ID = 64
# Fields only the body cap bounds (api/limits.py): the message and the recipient list.
LONG_FIELDS = frozenset({"template", "recipients"})
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
DATE_TOLERANCE = timedelta(minutes=15)
USE_CASES = frozenset(
    [
        "ATCK",
        "BACF",
        "BACS",
        "CHBK",
        "CLDR",
        "LEAD",
        "OTHR",
        "PWRT",
        "RESV",
        "RXPF",
        "SHIP",
        "THEF",
        "TRVF",
        "UNKN",
    ]
)
ACCEPTED = (293, "Bulk request accepted")
NOT_AUTHORIZED = (501, "Not authorized")
INVALID_REQUEST = (11000, "Invalid request")
INVALID_PARAMETER = -10001
INSUFFICIENT_CREDIT = -60001
TRY_LATER = -90001
INTERNAL_ERROR = -90000


class TelesignError(Exception):
    """A request-level failure: HTTP ``http_status`` with one error in the envelope."""

    def __init__(
        self,
        http_status: int,
        status: tuple[int, str],
        code: int,
        description: str,
        *,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(description)
        self.retry_after = retry_after
        self.http_status = http_status
        self.status = status
        self.code = code
        self.description = description


def _invalid(description: str) -> TelesignError:
    return TelesignError(400, INVALID_REQUEST, INVALID_PARAMETER, f"Invalid Request: {description}")


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def reference_id(batch_id: int) -> str:
    """Telesign reference ids are 32 hex digits; a batch id is one, zero-padded."""
    return f"{batch_id:032X}"


def _json(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def _error_response(exc: TelesignError) -> Response:
    code, description = exc.status
    return _json(
        {
            "status": {"updated_on": _now_iso(), "code": code, "description": description},
            "errors": [{"code": exc.code, "description": exc.description}],
        },
        exc.http_status,
        None if exc.retry_after is None else {"Retry-After": str(exc.retry_after)},
    )


def transport_refusal(status: int, description: str) -> Response:
    """A body over the size or time limit (``api.transport``): 413 or 408."""
    return _error_response(
        TelesignError(status, INVALID_REQUEST, INVALID_PARAMETER, f"Invalid Request: {description}")
    )


def refusal(description: str) -> Response:
    """A request refused before it reached an endpoint (api/http_protocol.py)."""
    return _error_response(_invalid(description))


class TelesignApi:
    def __init__(self, gateway: Gateway, secrets: SecretBox) -> None:
        self.gateway = gateway
        self.secrets = secrets

    def routes(self) -> list[Route]:
        def route(
            path: str, handler: Callable[[Request], Awaitable[Response]], method: str
        ) -> Route:
            async def only_method(request: Request) -> Response:
                if request.method != method:
                    raise TelesignError(
                        405, INVALID_REQUEST, INVALID_PARAMETER, f"Use {method} on this resource"
                    )
                return await handler(request)

            # Every method reaches the endpoint: a wrong one gets the JSON envelope.
            return any_method_route(
                path,
                guarded(
                    only_method,
                    dialect_error=TelesignError,
                    render_error=_error_response,
                    unavailable=lambda: _error_response(
                        TelesignError(503, INVALID_REQUEST, TRY_LATER, "Try again later")
                    ),
                    internal=lambda: _error_response(
                        TelesignError(500, INVALID_REQUEST, INTERNAL_ERROR, "Internal error")
                    ),
                ),
            )

        return [
            route(PATH, self.send, "POST"),
            # ":path": a reference with a slash is an unknown one, answered in the envelope.
            route(PATH + "/{reference_id:path}", self.status, "GET"),
        ]

    # ---------------------------------------------------------- authentication

    async def _authenticate(self, request: Request, body: bytes) -> Account:
        guard = self.gateway.auth_guard
        try:
            credentials = parse_authorization(request.headers.get("authorization"))
            keys = guard.keys(
                CredentialKind.TELESIGN_KEY, credentials.customer_id, client_address(request)
            )
            try:
                account = await self._check(credentials, request, body, keys)
            except AuthFailure:
                await guard.failed(keys)
                raise
        except AuthFailure as exc:
            raise TelesignError(401, NOT_AUTHORIZED, exc.code, exc.description) from None
        except AuthThrottled as exc:
            raise TelesignError(
                429, INVALID_REQUEST, TRY_LATER, str(exc), retry_after=exc.retry_after
            ) from None
        if not account.is_active:
            raise TelesignError(
                401, NOT_AUTHORIZED, AuthCode.ACCOUNT_SUSPENDED, "Customer account is suspended."
            )
        return account

    async def _check(
        self, credentials: Credentials, request: Request, body: bytes, keys: Sequence[str]
    ) -> Account:
        """The account the credentials prove; ``AuthThrottled`` while a key is
        locked, unless they are a Basic secret this process has seen verify."""
        store = self.gateway.store
        guard = self.gateway.auth_guard
        kind = CredentialKind.TELESIGN_KEY
        if credentials.scheme == "Basic":
            hashed = await store.credentials_for(kind, credentials.customer_id)
            for account, stored in hashed:
                if recently_verified(credentials.secret, stored):
                    return account
            await guard.admit(keys)
            found = await guard.verifies(kind, credentials.secret, [h for _, h in hashed], keys)
            if not hashed:
                raise AuthFailure(AuthCode.INVALID_CUSTOMER_ID)
            if found < 0:
                raise AuthFailure(AuthCode.INVALID_API_KEY)
            return hashed[found][0]
        await guard.admit(keys)
        sealed = await store.sealed_secrets(kind, credentials.customer_id)
        if not sealed:
            raise AuthFailure(AuthCode.INVALID_CUSTOMER_ID)
        now = datetime.now(UTC)
        for index, (account, token) in enumerate(sealed):
            try:
                nonce = verify_tsa(
                    credentials,
                    api_key_b64=self.secrets.decrypt(token),
                    method=request.method,
                    path=request.url.path,
                    headers=request.headers,
                    body=body,
                    now=now,
                    tolerance=DATE_TOLERANCE,
                )
            except AuthFailure as exc:
                if exc.code == AuthCode.INVALID_SIGNATURE and index + 1 < len(sealed):
                    continue  # a key being rotated: try the other one
                raise
            forget_before = int((now - 2 * DATE_TOLERANCE).timestamp() * 1000)
            if not await store.first_use_of_nonce(
                credentials.customer_id, nonce, forget_before_ms=forget_before
            ):
                raise AuthFailure(AuthCode.NONCE_REUSED)
            return account
        raise AuthFailure(AuthCode.INVALID_SIGNATURE)

    # ------------------------------------------------------------------ sending

    async def send(self, request: Request) -> Response:
        body = await request.body()
        account = await self._authenticate(request, body)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            raise _invalid("Content-Type must be application/x-www-form-urlencoded")
        try:
            fields = form_fields(body, "utf-8")
        except UnicodeDecodeError:
            raise _invalid("the body is not UTF-8") from None
        problem = field_problem(fields, LONG_FIELDS)
        if problem:
            raise _invalid(problem)
        requests = self._requests(fields, account)
        updated_on = _now_iso()  # one time for the reply and its remembered copy

        def accepted(submission: Submission) -> dict[str, Any]:
            assert submission.batch_id is not None  # a refused request keeps no memo
            code, description = ACCEPTED
            return {
                "reference_id": reference_id(submission.batch_id),
                "sub_resource": "bulk_sms",
                "status": {"updated_on": updated_on, "code": code, "description": description},
                "errors": [],
            }

        memo = idempotency_memo(
            request.headers, DIALECT, lambda sub: orjson.dumps(accepted(sub)).decode()
        )
        try:
            submission = await self.gateway.submit(
                account,
                requests,
                dialect=DIALECT,
                all_or_nothing=True,
                memo=memo,
                request=RequestSeen("sms", client_address(request), fields),
            )
        except AlreadyAccepted as earlier_request:
            return _json(orjson.loads(earlier_request.reply))
        except InsufficientCredit:
            raise TelesignError(
                402, INVALID_REQUEST, INSUFFICIENT_CREDIT, "Insufficient credit"
            ) from None
        except DailyQuotaExceeded as exc:
            raise TelesignError(
                429, INVALID_REQUEST, TRY_LATER, f"Daily quota exceeded: {exc}"
            ) from None
        except Overloaded:
            raise TelesignError(429, INVALID_REQUEST, TRY_LATER, "Too many requests") from None
        except AccountThrottled as exc:
            raise TelesignError(
                429,
                INVALID_REQUEST,
                TRY_LATER,
                f"Too many requests: {exc}",
                retry_after=exc.retry_after,
            ) from None
        except UpstreamUnavailable as exc:
            raise TelesignError(503, INVALID_REQUEST, TRY_LATER, str(exc)) from None
        if submission.batch_id is None:
            number, detail = next(
                (request.recipient, result.detail)
                for request, result in zip(requests, submission.results, strict=True)
                if isinstance(result, Rejection)
            )
            raise _invalid(f"recipients Parameter: {number}: {detail}")
        return _json(accepted(submission))

    def _requests(self, fields: dict[str, str], account: Account) -> list[MessageRequest]:
        raw_recipients = fields.get("recipients", "").strip()
        template = fields.get("template", "")
        if not raw_recipients:
            raise _invalid("recipients Parameter: required")
        if not template.strip():
            raise _invalid("template Parameter: required")
        ucid = fields.get("ucid", "").strip()
        if ucid and ucid.upper() not in USE_CASES:
            raise _invalid(f"ucid Parameter: unknown use case code {ucid!r}")
        default_session = fields.get("session_id", "").strip() or None
        entries = [entry.strip() for entry in raw_recipients.split(",")]
        if len(entries) > MAX_RECIPIENTS:
            raise _invalid(f"recipients Parameter: at most {MAX_RECIPIENTS} recipients")
        sender = fields.get("sender_id", "").strip() or (
            account.senders[0] if account.senders else self.gateway.settings.default_sender
        )
        requests = []
        for entry in entries:
            number, _, session = entry.partition(":")
            session_id = session.strip() or default_session
            if not number.strip():
                raise _invalid("recipients Parameter: empty recipient")
            if session_id is not None and len(session_id) > MAX_SESSION_ID:
                raise _invalid(f"recipients Parameter: session id longer than {MAX_SESSION_ID}")
            requests.append(MessageRequest(number.strip(), template, sender, session_id))
        return requests

    # ------------------------------------------------------------------ status

    async def status(self, request: Request) -> Response:
        """Extension: per-recipient states of one bulk request."""
        account = await self._authenticate(request, b"")
        raw = request.path_params["reference_id"]
        batch_id = _batch_of(raw)
        lines = (
            None
            if batch_id is None
            else await self.gateway.store.batch_report(account.id, batch_id)
        )
        if lines is None:
            raise TelesignError(404, INVALID_REQUEST, INVALID_PARAMETER, "Unknown reference_id")
        recipients = []
        for line in lines:
            code, description = telesign_status(State(line.state), Reason(line.reason))
            recipients.append(
                {
                    "phone_number": line.recipient.lstrip("+"),
                    "session_id": line.client_ref,
                    "status": {
                        "code": code,
                        "description": description,
                        "updated_on": _http_date(line.done_at or line.created_at),
                    },
                }
            )
        code, description = ACCEPTED
        return _json(
            {
                "reference_id": raw.upper(),
                "sub_resource": "bulk_sms",
                "status": {"updated_on": _now_iso(), "code": code, "description": description},
                "recipients": recipients,
                "errors": [],
            }
        )


def _batch_of(raw: str) -> int | None:
    """The batch id a reference id names; None unless 32 ASCII hex digits in
    the store's id range (``int()`` alone also reads Unicode digits)."""
    if len(raw) != 32 or not _HEX_DIGITS.issuperset(raw):
        return None
    batch_id = int(raw, 16)
    return batch_id if batch_id <= MAX_ID else None


def _http_date(epoch_ms: int) -> str:
    return format_datetime(datetime.fromtimestamp(epoch_ms / 1000, UTC), usegmt=True)


# -------------------------------------------------------------------- callbacks

CALLBACK_RETRY_SECONDS: Sequence[float] = (10.0, 60.0, 300.0, 1800.0, 7200.0, 21600.0)


class SignedCallbacks:
    """Renders delivery callbacks signed with the account's own key.

    Keys are unsealed once a minute per account at most: a callback burst after
    a large batch should not decrypt the same key thousands of times.
    """

    KEY_TTL_SECONDS = 60.0

    def __init__(self, store: Store, secrets: SecretBox) -> None:
        self._store = store
        self._secrets = secrets
        self._keys: dict[int, tuple[float, tuple[str, str] | None]] = {}

    async def _key(self, account_id: int) -> tuple[str, str] | None:
        cached = self._keys.get(account_id)
        if cached is not None and time.monotonic() - cached[0] < self.KEY_TTL_SECONDS:
            return cached[1]
        found = await self._store.account_sealed_secret(account_id, CredentialKind.TELESIGN_KEY)
        key = None if found is None else (found[0], self._secrets.decrypt(found[1]))
        self._keys[account_id] = (time.monotonic(), key)
        return key

    async def render(self, job: CallbackJob) -> HttpCall:
        p = job.payload
        code, description = telesign_status(State(p["state"]), Reason(p["reason"]))
        body = orjson.dumps(
            {
                "status": {
                    "updated_on": _http_date(p.get("done_at") or p["created_at"]),
                    "code": code,
                    "description": description,
                },
                "errors": [],
                "sub_resource": "bulk_sms",
                "session_id": p.get("client_ref"),
                "reference_id": reference_id(int(p["batch_id"])),
                "phone_number": str(p["recipient"]).lstrip("+"),
            }
        )
        headers = {"Content-Type": "application/json"}
        key = await self._key(job.account_id)
        if key is not None:
            signature = sign_callback(body, customer_id=key[0], api_key_b64=key[1])
            headers["Authorization"] = headers["X-TS-Authorization"] = signature
        return HttpCall("POST", job.url, headers=headers, content=body)

    def format(self) -> CallbackFormat:
        return CallbackFormat(render=self.render, retry_seconds=CALLBACK_RETRY_SECONDS)
