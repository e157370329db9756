"""Turning a page's figures into HTML: the templates, times in the viewer's
zone, credits, and the live parts the page script refreshes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from smsgate.console.auth import Viewer
from smsgate.console.forms import FormError
from smsgate.core.pricing import format_units

PART_HEADER = "x-console-part"
"""Asked by the page script for one live part of a page instead of the page."""
PART_PARAMETER = "live_part"
"""The same, in the query: how a server-sent event stream names its part
(an EventSource cannot send headers)."""

_ENV = Environment(
    loader=PackageLoader("smsgate.console", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters["credits"] = format_units
_PARTS = frozenset(name for name in _ENV.list_templates() if name.startswith("parts/"))


def render(
    request: Request,
    viewer: Viewer | None,
    page: str,
    zone: ZoneInfo,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """The page template, or only its live part ``parts/<name>.html`` when the
    page script asks for it by ``PART_HEADER`` (any other name gets the page)."""
    asked = request.headers.get(PART_HEADER) or request.query_params.get(PART_PARAMETER)
    part = f"parts/{asked}.html"
    name = part if part in _PARTS else f"{page}.html"
    values = {
        "viewer": viewer,
        "user": viewer.user if viewer else None,
        "csrf": viewer.csrf if viewer else "",
        "when": lambda ms: when(ms, zone),
        "zone": zone.key,
        "path": request.url.path,
        **context,
    }
    html = _ENV.get_template(name).render(values)
    return HTMLResponse(html, status_code=status, headers={"cache-control": "no-store"})


def when(ms: int | None, zone: ZoneInfo) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def local_ms(raw: str | None, zone: ZoneInfo) -> int | None:
    """A ``datetime-local`` field ("2026-01-31T14:05") in the viewer's zone, as ms."""
    if raw is None or not raw.strip():
        return None
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise FormError(f"not a date and time: {raw!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return int(moment.timestamp() * 1000)
