"""The error discipline every dialect endpoint shares.

A dialect answers its own errors in its own words; what is left are failures
no input explains. A storage failure that a retry can cure (database down,
connection lost, pool exhausted) gets the dialect's "try again" answer, so
clients retry rather than give up; anything else is logged with its trace and
gets the dialect's internal-error answer, never a bare 500 page.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import Response

from smsgate.api.errors import is_transient_storage_error

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Exception)
Endpoint = Callable[[Request], Awaitable[Response]]


def guarded(
    handler: Endpoint,
    *,
    dialect_error: type[E],
    render_error: Callable[[E], Response],
    unavailable: Callable[[], Response],
    internal: Callable[[], Response],
) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except dialect_error as exc:
            return render_error(exc)
        except Exception as exc:
            if is_transient_storage_error(exc):
                log.warning("storage unavailable: %s", exc)
                return unavailable()
            log.exception("unexpected failure in %s", request.url.path)
            return internal()

    return endpoint
