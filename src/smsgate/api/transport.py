"""Bounding what a request body may cost, before any dialect reads it.

A body is refused from its ``Content-Length`` alone when that is over the
cap, and otherwise counted while it streams in, so a chunked upload is cut
off the moment it passes the cap rather than once it is all in memory. The
whole body must arrive within ``body_timeout``. Each refusal is the
dialect's own answer (the route's path says whose), sent with
``Connection: close`` so the rest of the upload is never read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import orjson
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smsgate.observe import events

# (HTTP status a status-speaking dialect should use, description) -> the dialect's reply.
Refusal = Callable[[int, str], Response]
TOO_LARGE = 413
TOO_SLOW = 408


def plain_refusal(status: int, description: str) -> Response:
    """For paths that belong to no dialect (health, metrics, unknown)."""
    return Response(
        orjson.dumps({"error": description}), status_code=status, media_type="application/json"
    )


class _TooLarge(Exception):
    pass


class BoundedBodies:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        timeout: float,
        refusals: Sequence[tuple[str, str, Refusal]],
    ) -> None:
        """``refusals``: (path prefix, dialect name, how it refuses), first match wins."""
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.refusals = refusals

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send, TOO_LARGE, self._too_large())
            return
        try:
            async with asyncio.timeout(self.timeout):
                body = await self._read(receive)
        except TimeoutError:
            await self._refuse(
                scope,
                receive,
                send,
                TOO_SLOW,
                f"request body not received within {self.timeout:g} s",
            )
            return
        except _TooLarge:
            await self._refuse(scope, receive, send, TOO_LARGE, self._too_large())
            return
        if body is None:
            return  # the client went away
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # only a disconnect is left to come
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _too_large(self) -> str:
        return f"request body is larger than {self.max_bytes} bytes"

    async def _read(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise _TooLarge()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, status: int, description: str
    ) -> None:
        path = scope.get("path", "")
        dialect, render = next(
            ((name, refusal) for prefix, name, refusal in self.refusals if path.startswith(prefix)),
            ("-", plain_refusal),
        )
        events.request_refused(dialect, status, description, path)
        response = render(status, description)
        response.headers["connection"] = "close"
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None
