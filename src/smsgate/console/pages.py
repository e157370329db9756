"""The console's routes and the pages that are not an account's or a connection's:
log-in, dashboard, messages, batches and the sandbox's phones (accounts.py and
connections.py hold the others).

Every page needs a session; every POST must carry the session's CSRF token.
Operators see everything; an account user sees their own account only, and
anything else (another account's message, a page only operators have)
answers 403 whether or not it exists, so ids reveal nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from smsgate.api.dialects import advanta, eapi, telesign
from smsgate.config import Settings
from smsgate.console import auth
from smsgate.console.access import UTC_ZONE, Refused, require_own, zone_of
from smsgate.console.accounts import AccountPages
from smsgate.console.auth import Viewer
from smsgate.console.chart import DAY_PERIOD_MS, day_chart, traffic_chart
from smsgate.console.connection_stats import connection_figures
from smsgate.console.connections import ConnectionPages
from smsgate.console.forms import FormError, form_of, optional_int
from smsgate.console.live import live_events, wants_events
from smsgate.console.render import local_ms, render
from smsgate.core.encoding import Encoding, is_gsm7
from smsgate.core.pricing import format_units
from smsgate.core.states import State
from smsgate.delivery.connectors.sandbox import SandboxConnector
from smsgate.secret_box import SecretBox
from smsgate.store.console import MessageQuery
from smsgate.store.records import InboundMessage
from smsgate.store.repo import Store
from smsgate.timeline import timeline

PAGE_SIZE = 50
DIALECTS = (advanta.DIALECT, eapi.DIALECT, telesign.DIALECT)

Handler = Callable[[Request, Viewer], Awaitable[Response]]


class ConsolePages(ConnectionPages, AccountPages):
    def __init__(
        self,
        store: Store,
        settings: Settings,
        secrets: SecretBox,
        sandboxes: Sequence[SandboxConnector],
    ) -> None:
        self.store = store
        self.settings = settings
        self.secrets = secrets
        self.sandboxes = list(sandboxes)
        # What the sandbox delivered is found under its connector names,
        # whichever process ran it.
        self.sandbox_names = [s.name for s in self.sandboxes] or ["sandbox"]

    def routes(self) -> list[Route | Mount]:
        static = StaticFiles(packages=[("smsgate.console", "static")])
        return [
            Route("/console", self._to_dashboard),
            Mount(
                "/console",
                routes=[
                    Route("/", self.page(self.dashboard)),
                    Route("/login", self.login_form, methods=["GET"]),
                    Route("/login", self.login, methods=["POST"]),
                    Route("/logout", self.page(self.logout), methods=["POST"]),
                    Route("/messages", self.page(self.messages)),
                    Route("/messages/{id:int}", self.page(self.message)),
                    Route("/batches", self.page(self.batches)),
                    Route("/batches/{id:int}", self.page(self.batch)),
                    Route("/batches/{id:int}/cancel", self.page(self.cancel), methods=["POST"]),
                    Route("/accounts", self.page(self.accounts)),
                    Route(
                        "/accounts",
                        self.page(self.create, operators_only=True),
                        methods=["POST"],
                    ),
                    Route(
                        "/accounts/{id:int}/settings",
                        self.page(self.change, operators_only=True),
                        methods=["POST"],
                    ),
                    Route(
                        "/accounts/{id:int}/status",
                        self.page(self.status, operators_only=True),
                        methods=["POST"],
                    ),
                    Route("/accounts/{id:int}", self.page(self.account)),
                    Route("/accounts/{id:int}/keys", self.page(self.rotate), methods=["POST"]),
                    Route("/accounts/{id:int}/urls", self.page(self.urls), methods=["POST"]),
                    Route(
                        "/accounts/{id:int}/credit",
                        self.page(self.credit, operators_only=True),
                        methods=["POST"],
                    ),
                    Route("/connections", self.page(self.connections, operators_only=True)),
                    Route(
                        "/connections",
                        self.page(self.add_connection, operators_only=True),
                        methods=["POST"],
                    ),
                    Route(
                        "/connections/{name}/remove",
                        self.page(self.remove_connection, operators_only=True),
                        methods=["POST"],
                    ),
                    Route(
                        "/routes",
                        self.page(self.add_route, operators_only=True),
                        methods=["POST"],
                    ),
                    Route(
                        "/routes/{id:int}/remove",
                        self.page(self.remove_route, operators_only=True),
                        methods=["POST"],
                    ),
                    Route("/phones", self.page(self.phones, operators_only=True)),
                    Route("/phones/{number}", self.page(self.phone, operators_only=True)),
                    Route(
                        "/phones/{number}/reply",
                        self.page(self.reply, operators_only=True),
                        methods=["POST"],
                    ),
                    Mount("/static", static, name="console-static"),
                ],
            ),
        ]

    async def _to_dashboard(self, request: Request) -> Response:
        return RedirectResponse("/console/", 308)

    # ------------------------------------------------------------ plumbing

    def page(self, handler: Handler, *, operators_only: bool = False) -> Callable[..., Any]:
        """``handler`` behind the session check (and CSRF check for POSTs)."""

        async def endpoint(request: Request) -> Response:
            viewer = await auth.viewer_of(request, self.store)
            if viewer is None:
                if request.method != "GET":
                    return await self._refusal(request, None, Refused(403, "not signed in"))
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/console/login?{urlencode({'next': target})}", 303)
            try:
                if request.method == "POST":
                    form = await form_of(request)
                    if not auth.tokens_match(form.get("csrf"), viewer.csrf):
                        raise Refused(403, "this form has expired or did not come from the console")
                    request.state.form = form
                if operators_only and not viewer.user.is_operator:
                    raise Refused(403, "only operators may open this page")
                if request.method == "GET" and wants_events(request):
                    return live_events(request, lambda: handler(request, viewer))
                return await handler(request, viewer)
            except Refused as refused:
                return await self._refusal(request, viewer, refused)

        return endpoint

    async def _refusal(self, request: Request, viewer: Viewer | None, refused: Refused) -> Response:
        zone = await self._zone(viewer)
        return render(
            request, viewer, "refused", zone, refused.status, reason=str(refused), title="Refused"
        )

    async def _zone(self, viewer: Viewer | None) -> ZoneInfo:
        return await zone_of(self.store, viewer)

    # ------------------------------------------------------------ log-in

    async def login_form(self, request: Request, error: str = "", status: int = 200) -> Response:
        token = request.cookies.get(auth.LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
        response = render(
            request,
            None,
            "login",
            UTC_ZONE,
            status,
            login_csrf=token,
            error=error,
            next=_safe_next(request.query_params.get("next")),
            title="Log in",
        )
        auth.set_cookie(request, response, auth.LOGIN_CSRF_COOKIE, token, 3600)
        return response

    async def login(self, request: Request) -> Response:
        form = await form_of(request)
        expected = request.cookies.get(auth.LOGIN_CSRF_COOKIE)
        if expected is None or not auth.tokens_match(form.get("csrf"), expected):
            return await self.login_form(request, "the log-in form expired; try again", 403)
        try:
            token = await auth.log_in(
                self.store, self.settings, form.get("login", ""), form.get("password", "")
            )
        except auth.LoginRefused as refused:
            return await self.login_form(request, str(refused), refused.status)
        response = RedirectResponse(_safe_next(form.get("next")), 303)
        lifetime = int(self.settings.console_session_hours * 3600)
        auth.set_cookie(request, response, auth.SESSION_COOKIE, token, lifetime)
        auth.forget_cookie(request, response, auth.LOGIN_CSRF_COOKIE)
        return response

    async def logout(self, request: Request, viewer: Viewer) -> Response:
        await self.store.close_console_session(viewer.token_hash)
        response = RedirectResponse("/console/login", 303)
        auth.forget_cookie(request, response, auth.SESSION_COOKIE)
        return response

    # ------------------------------------------------------------ dashboard

    async def dashboard(self, request: Request, viewer: Viewer) -> Response:
        now = self.store.clock()
        account_id = viewer.user.account_id
        counts = await self.store.recent_traffic(now - 3_600_000, account_id)
        day = await self.store.accepted_per_period(now - 86_400_000, DAY_PERIOD_MS, account_id)
        context: dict[str, Any] = {
            "chart": traffic_chart(counts, now),
            "day": day_chart(day, now),
            "now": now,
        }
        if account_id is None:
            snapshot = await self.store.cluster_snapshot(account_limit=0)
            context.update(
                queued=sum(snapshot.waiting.values()),
                due=snapshot.due,
                oldest_due=snapshot.oldest_due_ms,
                callbacks_pending=snapshot.callbacks_pending,
                callbacks_due=snapshot.callbacks_due,
                health=sorted(snapshot.health.values(), key=lambda h: h.connector),
                connections=connection_figures(counts),
            )
        else:
            states = await self.store.count_by_state(account_id)
            waiting = (State.ACCEPTED, State.SCHEDULED, State.QUEUED)
            context.update(
                queued=sum(count for state, count in states.items() if state in waiting),
                account=await self.store.account(account_id),
                callback_states=await self.store.callback_states(account_id),
            )
        zone = await self._zone(viewer)
        return render(request, viewer, "dashboard", zone, title="Dashboard", **context)

    # ------------------------------------------------------------ messages

    async def messages(self, request: Request, viewer: Viewer) -> Response:
        params = request.query_params
        zone = await self._zone(viewer)
        error = ""
        try:
            query = MessageQuery(
                account_id=viewer.user.account_id or optional_int(params.get("account"), "account"),
                recipient=_number(params.get("number")),
                batch_id=optional_int(params.get("batch"), "batch"),
                state=params.get("state") or None,
                dialect=params.get("dialect") or None,
                since_ms=local_ms(params.get("since"), zone),
                until_ms=local_ms(params.get("until"), zone),
                before=optional_int(params.get("before"), "before"),
                limit=PAGE_SIZE,
            )
            found = await self.store.search_messages(query)
        except FormError as exc:
            error, found = str(exc), []
        older = None
        if len(found) == PAGE_SIZE:
            kept = {k: v for k, v in params.items() if k != "before" and v}
            older = "?" + urlencode({**kept, "before": found[-1].id})
        accounts = await self.store.accounts() if viewer.user.is_operator else []
        return render(
            request,
            viewer,
            "messages",
            zone,
            400 if error else 200,
            title="Messages",
            messages=found,
            older=older,
            first_page=not params.get("before"),
            params=params,
            error=error,
            states=[s.value for s in State],
            dialects=DIALECTS,
            accounts=accounts,
        )

    async def message(self, request: Request, viewer: Viewer) -> Response:
        message_id = int(request.path_params["id"])
        found = await self.store.console_message(message_id) if message_id < 2**63 else None
        if viewer.user.account_id is not None and (
            found is None or found.account_id != viewer.user.account_id
        ):
            raise Refused(403, "this message belongs to another account")
        if found is None:
            raise Refused(404, f"no message {message_id}")
        zone = await self._zone(viewer)
        return render(
            request,
            viewer,
            "message",
            zone,
            title=f"Message {message_id}",
            message=found,
            account=await self.store.account(found.account_id),
            timeline=timeline(found, await self.store.message_history(message_id)),
        )

    # ------------------------------------------------------------ batches

    async def batches(self, request: Request, viewer: Viewer) -> Response:
        try:
            before = optional_int(request.query_params.get("before"), "before")
        except FormError as exc:
            raise Refused(400, str(exc)) from None
        found = await self.store.recent_batches(viewer.user.account_id, before, PAGE_SIZE)
        older = f"?before={found[-1].id}" if len(found) == PAGE_SIZE else None
        zone = await self._zone(viewer)
        return render(request, viewer, "batches", zone, title="Batches", batches=found, older=older)

    async def batch(self, request: Request, viewer: Viewer, notice: str = "") -> Response:
        batch_id = int(request.path_params["id"])
        found = await self.store.batch(batch_id) if batch_id < 2**63 else None
        if viewer.user.account_id is not None and (
            found is None or found.account_id != viewer.user.account_id
        ):
            raise Refused(403, "this batch belongs to another account")
        if found is None:
            raise Refused(404, f"no batch {batch_id}")
        progress = await self.store.batch_progress(batch_id)
        waiting = sum(progress.get(s, 0) for s in (State.SCHEDULED, State.QUEUED))
        zone = await self._zone(viewer)
        return render(
            request,
            viewer,
            "batch",
            zone,
            title=f"Batch {batch_id}",
            batch=found,
            progress=sorted(progress.items()),
            waiting=waiting,
            notice=notice,
        )

    async def cancel(self, request: Request, viewer: Viewer) -> Response:
        batch_id = int(request.path_params["id"])
        found = await self.store.batch(batch_id) if batch_id < 2**63 else None
        require_own(viewer, found.account_id if found else None)
        if found is None:
            raise Refused(404, f"no batch {batch_id}")
        taken = await self.store.cancel_batch(batch_id)
        notice = (
            f"cancelled {taken.messages} messages, refunded {format_units(taken.refunded)} credits"
            if taken.messages
            else "nothing left to cancel: every message has left or is leaving"
        )
        return await self.batch(request, viewer, notice)

    # ------------------------------------------------------------ sandbox phones

    async def phones(self, request: Request, viewer: Viewer) -> Response:
        handsets = await self.store.sandbox_handsets(self.sandbox_names)
        return render(
            request, viewer, "phones", UTC_ZONE, title="Sandbox phones", handsets=handsets
        )

    async def phone(self, request: Request, viewer: Viewer, error: str = "") -> Response:
        number = request.path_params["number"]
        lines = await self.store.conversation(self.sandbox_names, number)
        addresses = [line.peer for line in lines if line.outbound]
        return render(
            request,
            viewer,
            "phone",
            UTC_ZONE,
            400 if error else 200,
            title=f"Phone {number}",
            number=number,
            lines=lines,
            reply_to=addresses[-1] if addresses else self.settings.reply_numbers[0],
            error=error,
        )

    async def reply(self, request: Request, viewer: Viewer) -> Response:
        """The handset answers: in through the sandbox connector of this process,
        the way a carrier's inbound message comes in; stored directly when this
        process runs no workers."""
        number = request.path_params["number"]
        form: dict[str, str] = request.state.form
        body, to = form.get("text", "").strip(), form.get("to", "").strip()
        if not body or not to:
            return await self.phone(request, viewer, "a reply needs a text and an address")
        taken = bool(self.sandboxes) and await self.sandboxes[0].handset_sends(number, to, body)
        if not taken:
            encoding = Encoding.GSM7 if is_gsm7(body) else Encoding.UCS2
            await self.store.record_inbound(
                [
                    InboundMessage(
                        self.sandbox_names[0],
                        number.lstrip("+"),
                        to,
                        body,
                        encoding,
                        self.store.clock(),
                    )
                ]
            )
        return RedirectResponse(f"/console/phones/{number}", 303)


def _safe_next(raw: str | None) -> str:
    """Only console addresses: a log-in link cannot send anyone elsewhere."""
    if raw and raw.startswith("/console/") and not raw.startswith("//"):
        return raw
    return "/console/"


def _number(raw: str | None) -> str | None:
    """A number as typed, as messages store recipients (E.164 with "+")."""
    if raw is None or not raw.strip():
        return None
    digits = raw.strip().replace(" ", "").lstrip("+")
    if not digits.isdigit():
        raise FormError(f"a number has digits only, not {raw!r}")
    return f"+{digits}"
