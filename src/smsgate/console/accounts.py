"""The console's account pages: the list (operators), one account's balance,
settings and ledger, and what can be changed there: credit (operators, with a
required ledger note), a new key for one dialect (shown once), and the URLs
delivery reports and replies are pushed to (the account's own users too)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import phonenumbers
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from smsgate.config import Settings
from smsgate.console.access import UTC_ZONE, Refused, require_own, zone_of
from smsgate.console.auth import Viewer
from smsgate.console.render import render
from smsgate.core.account_options import BY_KEY, OPTIONS
from smsgate.core.model import AccountStatus
from smsgate.core.pricing import to_units
from smsgate.core.schedule import InvalidSendTime, zone
from smsgate.core.senders import sender_problem
from smsgate.key_issuing import Issued, KeyKind, rotate_key
from smsgate.secret_box import SecretBox
from smsgate.store.records import DuplicateIdentifier
from smsgate.store.repo import Store

_ACCOUNT_NAME = re.compile(r"[A-Za-z0-9._@-]{1,100}")
# What the settings form changes; the MO URL has its own form beside the
# delivery report URL.
FORM_OPTIONS = tuple(o.key for o in OPTIONS if o.key != "mo_callback_url")


class AccountPages:
    store: Store
    settings: Settings
    secrets: SecretBox

    async def accounts(self, request: Request, viewer: Viewer) -> Response:
        if viewer.user.account_id is not None:
            return RedirectResponse(f"/console/accounts/{viewer.user.account_id}", 303)
        return render(
            request,
            viewer,
            "accounts",
            UTC_ZONE,
            title="Accounts",
            accounts=await self.store.accounts(),
        )

    async def account(
        self,
        request: Request,
        viewer: Viewer,
        error: str = "",
        status: int = 200,
        *,
        issued: Issued | None = None,
        notice: str = "",
    ) -> Response:
        """The page; after a change, with its ``notice``, ``error`` or the ``issued``
        secrets (shown on this one answer only, never stored in clear)."""
        account_id = int(request.path_params["id"])
        require_own(viewer, account_id)
        account = await self.store.account(account_id) if account_id < 2**63 else None
        if account is None:
            raise Refused(404, f"no account {account_id}")
        return render(
            request,
            viewer,
            "account",
            await zone_of(self.store, viewer),
            status,
            title=f"Account {account.name}",
            account=account,
            ledger=await self.store.recent_ledger(account_id),
            identifiers=await self.store.identifiers(account_id),
            error=error,
            notice=notice,
            issued=issued,
            options=[BY_KEY[key] for key in FORM_OPTIONS],
        )

    async def create(self, request: Request, viewer: Viewer) -> Response:
        """A new account with the installation's default region and zone; its
        keys are then issued on its page."""
        form: dict[str, str] = request.state.form
        name = form.get("name", "").strip()
        senders = [s for s in form.get("senders", "").replace(",", " ").split() if s]
        problem = _account_problem(name, senders)
        if problem is None and await self.store.account_by_name(name) is not None:
            problem = f"an account named {name!r} exists already"
        if problem:
            return render(
                request,
                viewer,
                "accounts",
                UTC_ZONE,
                400,
                title="Accounts",
                accounts=await self.store.accounts(),
                error=problem,
            )
        account = await self.store.create_account(
            name=name,
            region=self.settings.default_region,
            timezone=self.settings.default_timezone,
            senders=senders,
        )
        return RedirectResponse(f"/console/accounts/{account.id}", 303)

    async def status(self, request: Request, viewer: Viewer) -> Response:
        """Suspend (its requests are refused, within a second) or activate an account."""
        account_id = int(request.path_params["id"])
        wanted = request.state.form.get("status", "")
        if wanted not in {AccountStatus.ACTIVE.value, AccountStatus.SUSPENDED.value}:
            return await self.account(request, viewer, "choose active or suspended", 400)
        if await self.store.account(account_id) is None:
            raise Refused(404, f"no account {account_id}")
        await self.store.update_account(account_id, status=wanted)
        return await self.account(request, viewer, notice=f"account {wanted}")

    async def change(self, request: Request, viewer: Viewer) -> Response:
        """Senders, countries, zone and options, checked as the command line
        checks them; all or nothing."""
        account_id = int(request.path_params["id"])
        form: dict[str, str] = request.state.form
        account = await self.store.account(account_id)
        if account is None:
            raise Refused(404, f"no account {account_id}")
        try:
            changes = _settings_of(form, account.options)
        except ValueError as exc:
            return await self.account(request, viewer, str(exc), 400)
        await self.store.update_account(account_id, **changes)
        return await self.account(request, viewer, notice="settings saved")

    async def credit(self, request: Request, viewer: Viewer) -> Response:
        account_id = int(request.path_params["id"])
        form: dict[str, str] = request.state.form
        note = form.get("note", "").strip()
        try:
            amount = to_units(form.get("amount", "").strip() or "x")
        except ValueError:
            problem = "the amount must be credits, like 12.50"
            return await self.account(request, viewer, problem, 400)
        if amount <= 0:
            return await self.account(request, viewer, "the amount must be above zero", 400)
        if not note:
            return await self.account(request, viewer, "a note is required for the ledger", 400)
        if await self.store.account(account_id) is None:
            raise Refused(404, f"no account {account_id}")
        signed = -amount if form.get("direction") == "debit" else amount
        await self.store.add_credit(account_id, signed, note)
        return RedirectResponse(f"/console/accounts/{account_id}", 303)

    async def rotate(self, request: Request, viewer: Viewer) -> Response:
        account_id = int(request.path_params["id"])
        require_own(viewer, account_id)
        kind = request.state.form.get("kind", "")
        account = await self.store.account(account_id)
        if account is None:
            raise Refused(404, f"no account {account_id}")
        if kind not in KeyKind.ALL:
            return await self.account(request, viewer, "choose partner, eapi or telesign", 400)
        try:
            issued = await rotate_key(self.store, self.secrets, account, kind)
        except DuplicateIdentifier as exc:
            return await self.account(request, viewer, f"{exc}; the old one still works", 400)
        except ValueError as exc:  # an account name no SMPP bind can carry
            return await self.account(request, viewer, str(exc), 400)
        return await self.account(request, viewer, issued=issued)

    async def urls(self, request: Request, viewer: Viewer) -> Response:
        account_id = int(request.path_params["id"])
        require_own(viewer, account_id)
        form: dict[str, str] = request.state.form
        account = await self.store.account(account_id)
        if account is None:
            raise Refused(404, f"no account {account_id}")
        dlr, mo = form.get("dlr_url", "").strip(), form.get("mo_url", "").strip()
        for url in (dlr, mo):
            if url and not _http_url(url):
                problem = f"{url!r} is not an http(s) URL with a host"
                return await self.account(request, viewer, problem, 400)
        options = {k: v for k, v in account.options.items() if k != "mo_callback_url"}
        if mo:
            options["mo_callback_url"] = mo
        await self.store.update_account(account_id, dlr_callback_url=dlr or None, options=options)
        return await self.account(request, viewer, notice="callback URLs saved")


def _settings_of(form: dict[str, str], current: dict[str, object]) -> dict[str, object]:
    """The account columns the settings form sets; ``ValueError`` says what to fix."""
    senders = _words(form.get("senders", ""))
    for sender in senders:
        problem = sender_problem(sender, ())
        if problem:
            raise ValueError(f"sender {sender!r}: {problem}")
    countries = []
    for code in _words(form.get("countries", "")):
        digits = code.lstrip("+")
        if not digits.isdigit() or int(digits) not in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            raise ValueError(f"{code!r} is not a country calling code (254, 256 …)")
        countries.append(int(digits))
    timezone = form.get("timezone", "").strip()
    try:
        zone(timezone)
    except InvalidSendTime as exc:
        raise ValueError(str(exc)) from None
    options = {key: value for key, value in current.items() if key not in FORM_OPTIONS}
    for key in FORM_OPTIONS:
        raw = form.get(f"option_{key}", "").strip()
        if raw:
            try:
                options[key] = BY_KEY[key].parse(raw)
            except ValueError as exc:
                raise ValueError(f"{BY_KEY[key].label}: {raw!r}: {exc}") from None
    return {
        "senders": senders,
        "allowed_country_codes": countries,
        "timezone": timezone,
        "options": options,
    }


def _words(raw: str) -> list[str]:
    return [word for word in raw.replace(",", " ").split() if word]


def _account_problem(name: str, senders: list[str]) -> str | None:
    if not _ACCOUNT_NAME.fullmatch(name):
        return "a name is 1 to 100 letters, digits and . _ - @"
    for sender in senders:
        problem = sender_problem(sender, ())
        if problem:
            return f"sender {sender!r}: {problem}"
    return None


def _http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in {"http", "https"} and bool(parts.hostname)
