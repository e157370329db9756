"""ASGI application assembly: dialect routes, health and metrics, timing header,
last-resort errors."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smsgate.api.dialects.advanta import AdvantaApi
from smsgate.api.dialects.eapi import EapiApi
from smsgate.api.dialects.telesign import TelesignApi
from smsgate.api.http_protocol import refusal_for
from smsgate.api.upstream_receiver import UpstreamReceiver
from smsgate.gateway import Gateway
from smsgate.observe.endpoints import observe_routes
from smsgate.secret_box import SecretBox

log = logging.getLogger(__name__)

Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]


class ServerTiming:
    """Adds ``Server-Timing: app;dur=<ms>`` so clients and benchmarks can see
    how long the server worked on a request, apart from the network."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                elapsed = (time.perf_counter() - started) * 1000
                headers = list(message.get("headers", []))
                headers.append((b"server-timing", f"app;dur={elapsed:.3f}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, timed_send)


async def _server_error(request: Request, exc: Exception) -> Response:
    """Nothing should reach here; if it does, answer JSON, never a stack trace."""
    log.exception("unhandled error on %s", request.url.path, exc_info=exc)
    return Response(
        orjson.dumps({"error": "internal error"}), status_code=500, media_type="application/json"
    )


async def _not_found(request: Request, exc: Exception) -> Response:
    """A path no route matches (a line break in it defeats even the catch-all
    routes): inside a dialect's paths, its envelope; JSON elsewhere."""
    refusal = refusal_for(request.url.path.encode(), "unknown endpoint")
    if refusal is not None:
        return refusal
    return Response(
        orjson.dumps({"error": "not found"}), status_code=404, media_type="application/json"
    )


def create_app(gateway: Gateway, secrets: SecretBox, lifespan: Lifespan | None = None) -> ASGIApp:
    routes = [
        *observe_routes(gateway.store, gateway.settings),
        *AdvantaApi(gateway).routes(),
        *EapiApi(gateway).routes(),
        *TelesignApi(gateway, secrets).routes(),
        *UpstreamReceiver(gateway.store, secrets).routes(),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: _not_found, Exception: _server_error},
    )
    return ServerTiming(app)
