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


async def read_params(request: Request, *, form_charset: str = "utf-8") -> RequestParams:
    fields: dict[str, Any] = dict(request.query_params)
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
            fields.update(parse_qsl(body.decode(form_charset), keep_blank_values=True))
        except UnicodeDecodeError:
            return RequestParams(fields, request.headers, f"body is not {form_charset}", body)
        return RequestParams(fields, request.headers, None, body)
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return RequestParams(fields, request.headers, "request body is not valid JSON", body)
    if not isinstance(parsed, dict):
        return RequestParams(fields, request.headers, "request body must be a JSON object", body)
    fields.update(parsed)
    return RequestParams(fields, request.headers, None, body)
