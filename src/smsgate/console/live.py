"""Live parts of a page as server-sent events.

A page marks each part that changes by itself (``data-live``); its script
opens an EventSource on the page's own address with the part's name in the
query, and this stream renders that part again every couple of seconds,
sending it only when it changed. The part is rendered by the page's own
handler, so it is exactly what a reload would show, and the stream ends
when the browser goes away or its session does (a handler that refuses
ends it too). Without JavaScript the page is complete as served.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from smsgate.console.render import PART_PARAMETER

EVERY_SECONDS = 2.0
MAX_SECONDS = 300.0
"""A stream is closed after this long; the browser's EventSource reconnects,
which checks the session again."""


def wants_events(request: Request) -> bool:
    return "text/event-stream" in request.headers.get("accept", "") and bool(
        request.query_params.get(PART_PARAMETER)
    )


def live_events(request: Request, render: Callable[[], Awaitable[Response]]) -> Response:
    async def stream() -> AsyncIterator[bytes]:
        shown: bytes | None = None
        loop = asyncio.get_running_loop()
        ends = loop.time() + MAX_SECONDS
        # A browser that goes away cancels this stream (StreamingResponse
        # watches for the disconnect).
        while loop.time() < ends:
            response = await render()
            if response.status_code != 200:
                yield b"event: end\ndata: \n\n"
                return
            html = bytes(response.body)
            if html != shown:
                shown = html
                lines = html.decode("utf-8").splitlines() or [""]
                yield ("".join(f"data: {line}\n" for line in lines) + "\n").encode()
            else:
                yield b": still here\n\n"  # keeps proxies from closing an idle stream
            await asyncio.sleep(EVERY_SECONDS)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )
