"""The error discipline every dialect endpoint shares.

A dialect answers its own errors in its own words; what is left are failures
no input explains. A storage failure that a retry can cure (database down,
connection lost, pool exhausted) gets the dialect's "try again" answer, so
clients retry rather than give up; anything else is logged with its trace and
gets the dialect's internal-error answer, never a bare 500 page.

This is also where every refused request is logged and counted, once for
all dialects (``observe.events.request_refused``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, request_response
from starlette.types import Receive, Scope, Send

from smsgate.api.errors import is_transient_storage_error
from smsgate.observe import events

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Exception)
Endpoint = Callable[[Request], Awaitable[Response]]


class _AnyMethod:
    """An endpoint as a plain ASGI app: Starlette then routes every method to
    it instead of answering the ones not listed with a plain-text 405."""

    def __init__(self, endpoint: Endpoint) -> None:
        self._app = request_response(endpoint)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


def any_method_route(path: str, endpoint: Endpoint) -> Route:
    """A route every HTTP method reaches: the dialect's endpoint answers a
    wrong one in its own envelope (EAPI clients retry anything but HTTP 200)."""
    return Route(path, _AnyMethod(endpoint))


def guarded(
    handler: Endpoint,
    *,
    dialect_error: type[E],
    render_error: Callable[[E], Response],
    unavailable: Callable[[], Response],
    internal: Callable[[], Response],
) -> Endpoint:
    # Each dialect's error class lives in its module: api/dialects/<dialect>.py.
    dialect = dialect_error.__module__.rsplit(".", 1)[-1]

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except dialect_error as exc:
            events.request_refused(dialect, getattr(exc, "code", "-"), str(exc), request.url.path)
            return render_error(exc)
        except Exception as exc:
            if is_transient_storage_error(exc):
                log.warning("storage unavailable: %s", exc)
                return unavailable()
            log.exception("unexpected failure in %s", request.url.path)
            return internal()

    return endpoint
