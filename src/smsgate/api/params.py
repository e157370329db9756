"""Reading request parameters the way these providers' clients send them.

Clients put parameters in the query string, a JSON body or a form body, often
with a Content-Type that does not match; the merged view (body over query) is
what every dialect reads. A body that cannot be read is reported, not raised,
so each dialect can answer it with its own error code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.datastructures import Headers
from starlette.requests import Request

MAX_BODY_BYTES = 32 * 1024 * 1024


@dataclass
class RequestParams:
    fields: dict[str, Any]
    headers: Headers
    malformed: str | None = None
    raw_body: bytes = field(default=b"", repr=False)


def _form_fields(raw: bytes, charset: str) -> dict[str, str]:
    """URL-encoded fields in ``charset`` (the EAPI dialect speaks ISO-8859-1)."""
    return dict(
        parse_qsl(raw.decode(charset), keep_blank_values=True, encoding=charset, errors="strict")
    )


async def read_params(request: Request, *, charset: str = "utf-8") -> RequestParams:
    try:
        fields: dict[str, Any] = _form_fields(request.scope["query_string"], charset)
    except UnicodeDecodeError:
        return RequestParams({}, request.headers, f"query string is not {charset}", b"")
    body = b""
    if request.method in ("POST", "PUT"):
        body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return RequestParams(fields, request.headers, "request body is too large", b"")
    if not body.strip():
        return RequestParams(fields, request.headers, None, body)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded":
        try:
            fields.update(_form_fields(body, charset))
        except UnicodeDecodeError:
            return RequestParams(fields, request.headers, f"body is not {charset}", body)
        return RequestParams(fields, request.headers, None, body)
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return RequestParams(fields, request.headers, "request body is not valid JSON", body)
    if not isinstance(parsed, dict):
        return RequestParams(fields, request.headers, "request body must be a JSON object", body)
    fields.update(parsed)
    return RequestParams(fields, request.headers, None, body)
