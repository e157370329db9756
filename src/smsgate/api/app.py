"""ASGI application assembly: dialect routes, health and metrics, the web console,
body limits, timing header, last-resort errors."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smsgate.api.dialects import advanta, eapi, telesign
from smsgate.api.dialects.advanta import AdvantaApi
from smsgate.api.dialects.eapi import EapiApi
from smsgate.api.dialects.telesign import TelesignApi
from smsgate.api.http_protocol import refusal_for
from smsgate.api.transport import BoundedBodies
from smsgate.api.upstream_receiver import UpstreamReceiver
from smsgate.console.pages import ConsolePages
from smsgate.delivery.connectors.sandbox import SandboxConnector
from smsgate.gateway import Gateway
from smsgate.observe.endpoints import observe_routes
from smsgate.secret_box import SecretBox

log = logging.getLogger(__name__)

Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]


class ServerTiming:
    """Adds ``Server-Timing: app;dur=<ms>`` so benchmarks can see how long the
    server worked on a request, apart from the network. Off unless
    ``SMSGATE_SERVER_TIMING`` is set: on the internet it would tell a guesser
    which identifiers exist (an unknown one answers without a lookup)."""

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


def create_app(
    gateway: Gateway,
    secrets: SecretBox,
    lifespan: Lifespan | None = None,
    sandboxes: Sequence[SandboxConnector] = (),
) -> ASGIApp:
    """The dialects, health and metrics, and the web console; ``sandboxes`` are
    the sandbox carriers of this process, whose handsets the console answers as."""
    routes = [
        *ConsolePages(gateway.store, gateway.settings, secrets, sandboxes).routes(),
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
    settings = gateway.settings
    bounded = BoundedBodies(
        app,
        max_bytes=settings.max_body_bytes,
        timeout=settings.body_timeout,
        refusals=[
            (advanta.BASE + "/", advanta.DIALECT, advanta.transport_refusal),
            (eapi.BASE + "/", eapi.DIALECT, eapi.transport_refusal),
            ("/v1/", telesign.DIALECT, telesign.transport_refusal),
        ],
    )
    return ServerTiming(bounded) if settings.server_timing else bounded
