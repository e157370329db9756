"""The HTTP protocol uvicorn runs, answering what its parser refuses in the dialect's envelope.

A request line or header block too long for the parser (about 64 KB), or
bytes that are not HTTP, never reach the application: uvicorn answers a
plain-text 400. An EAPI client retries anything but HTTP 200 forever, and the
other dialects' clients read their own envelopes, so the answer is chosen
here by the path read so far, in the dialect's words.
"""

from __future__ import annotations

import http
from collections.abc import Callable

from starlette.responses import Response
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from smsgate.api.dialects import advanta, eapi, telesign

REFUSED = "the request line or headers are too long, or not HTTP"

_BY_PREFIX: tuple[tuple[bytes, Callable[[str], Response]], ...] = (
    (advanta.BASE.encode() + b"/", advanta.refusal),
    (eapi.BASE.encode() + b"/", eapi.refusal),
    (telesign.PATH.encode(), telesign.refusal),
)


def refusal_for(target: bytes, description: str = REFUSED) -> Response | None:
    """The dialect's refusal of a request to ``target`` (maybe cut short), or
    None outside the dialects' paths."""
    for prefix, refusal in _BY_PREFIX:
        if target.startswith(prefix):
            return refusal(description)
    return None


class DialectHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with the parser's refusals in dialect envelopes."""

    def send_400_response(self, msg: str) -> None:
        response = refusal_for(getattr(self, "url", b""))
        if response is None:
            super().send_400_response(msg)
            return
        status = response.status_code
        lines = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n".encode()]
        for name, value in response.raw_headers:
            if name != b"connection":
                lines.append(name + b": " + value + b"\r\n")
        lines.append(b"connection: close\r\n\r\n")
        self.transport.write(b"".join(lines) + response.body)
        self.transport.close()
