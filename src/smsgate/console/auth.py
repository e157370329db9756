"""Who is looking at the console: log-in, sessions and CSRF tokens.

A session is a random token in an HTTP-only, same-site cookie (secure when
the console is reached over HTTPS); the database keeps only its SHA-256, so
every API process knows every session and a copy of the database opens none.
Each session has its own CSRF token that every form carries and every POST
must return. The log-in form, which has no session yet, carries a token that
must equal one set in a cookie (double submit). Password checks (scrypt) run
in a thread so the event loop keeps serving while they compute.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from smsgate.config import Settings
from smsgate.credentials import hash_password, secret_verifies
from smsgate.store.console import ConsoleUser
from smsgate.store.repo import Store

SESSION_COOKIE = "smsgate_console"
LOGIN_CSRF_COOKIE = "smsgate_console_login"
COOKIE_PATH = "/console"

# Checked when the login is unknown, so an unknown login costs as long as a
# wrong password and the timing tells nothing about which logins exist.
_DECOY_HASH = hash_password(secrets.token_hex(16))


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in user of a request and the CSRF token of their session."""

    user: ConsoleUser
    csrf: str
    token_hash: str


class LoginRefused(Exception):
    """Why a log-in did not open a session, as the form says it."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_match(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


async def viewer_of(request: Request, store: Store) -> Viewer | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    digest = token_hash(token)
    found = await store.console_session(digest)
    if found is None:
        return None
    return Viewer(found[0], found[1], digest)


async def log_in(store: Store, settings: Settings, login: str, password: str) -> str:
    """Check the password and open a session; returns the cookie's token.

    Raises ``LoginRefused``: a wrong login or password (the same words for
    both), or a login locked after ``console_login_attempts`` failures in a
    row, for ``console_lockout_seconds``.
    """
    user = await store.console_user(login)
    if user is None:
        await asyncio.to_thread(secret_verifies, password, _DECOY_HASH)
        raise LoginRefused("wrong login or password", 401)
    now = store.clock()
    if user.locked_until is not None and user.locked_until > now:
        wait = -(-(user.locked_until - now) // 1000)
        raise LoginRefused(f"too many failed log-ins for this login; try again in {wait} s", 429)
    if not await asyncio.to_thread(secret_verifies, password, user.password_hash):
        await store.console_login_failed(
            user.id,
            limit=settings.console_login_attempts,
            lockout_ms=int(settings.console_lockout_seconds * 1000),
        )
        raise LoginRefused("wrong login or password", 401)
    await store.console_login_succeeded(user.id)
    token = secrets.token_urlsafe(32)
    await store.open_console_session(
        user.id,
        token_hash(token),
        secrets.token_urlsafe(32),
        int(settings.console_session_hours * 3_600_000),
    )
    return token


def set_cookie(
    request: Request, response: Response, name: str, value: str, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="lax",
    )


def forget_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name,
        path=COOKIE_PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="lax",
    )
