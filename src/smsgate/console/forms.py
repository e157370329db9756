"""Reading the console's forms: URL-encoded bodies, bounded, and typed fields."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request

MAX_FORM_BYTES = 64 * 1024


class FormError(ValueError):
    """A field the user must correct; the message says how."""


async def form_of(request: Request) -> dict[str, str]:
    """The posted fields (the last value of a repeated one); an oversized body
    reads as empty, which fails the CSRF check like any forged post."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def optional_int(raw: str | None, what: str) -> int | None:
    if raw is None or not raw.strip():
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        raise FormError(f"{what} must be a whole number, not {raw!r}") from None
    if not 0 < value < 2**63:
        raise FormError(f"{what} must be a positive number")
    return value
