"""The console's connections page (operators): SMPP and upstream HTTP
connections with what each is doing, the routes, and forms to add and remove both.

The same store calls as ``smsgate connectors``/``routes``; URLs are checked
the same way and kept sealed with the installation key, and the page never
shows a password. Like those commands, a change reaches the workers when
they next start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response

from smsgate.config import Settings
from smsgate.console.auth import Viewer
from smsgate.console.forms import FormError, optional_int
from smsgate.console.render import render
from smsgate.core.pricing import to_units
from smsgate.delivery.connectors.http_settings import HttpSettings
from smsgate.delivery.connectors.receiver_paths import receiver_path
from smsgate.delivery.connectors.smpp_settings import SmppSettings, checked_smpp_url
from smsgate.delivery.routing import Route, trial_order
from smsgate.secret_box import SecretBox
from smsgate.store.repo import Store

_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_RESTART = "saved; workers use it from their next start"


@dataclass(frozen=True)
class ConnectionLine:
    """A configured connection as the page lists it (never its password)."""

    name: str
    kind: str
    where: str  # host:port, or the provider's base URL
    who: str  # system id, or partnerID / EAPI username
    mode: str  # SMPP bind mode, or the provider's dialect
    window: int  # SMPP window, or requests in flight
    rate: float  # messages a second at most, 0: no limit
    receiver: str  # where an HTTP provider pushes reports ("" for SMPP)


def describe(name: str, kind: str, url: str, box: SecretBox) -> ConnectionLine:
    """Raises ``ValueError`` for a URL that no longer reads."""
    if kind == "http":
        http = HttpSettings.from_url(url)
        return ConnectionLine(
            name,
            kind,
            http.base_url,
            http.username,
            http.dialect,
            http.in_flight,
            http.max_per_second,
            receiver_path(box, name),
        )
    smpp = SmppSettings.from_url(url)
    where = f"{smpp.host}:{smpp.port}"
    return ConnectionLine(
        name, kind, where, smpp.system_id, smpp.bind_mode, smpp.window, smpp.max_per_second, ""
    )


class ConnectionPages:
    store: Store
    settings: Settings
    secrets: SecretBox

    async def connections(
        self, request: Request, viewer: Viewer, notice: str = "", error: str = ""
    ) -> Response:
        lines: list[ConnectionLine | str] = []  # a name alone: its URL cannot be read
        for row in await self.store.connectors():
            try:
                lines.append(
                    describe(row.name, row.kind, self.secrets.decrypt(row.sealed_url), self.secrets)
                )
            except Exception:  # sealed under another installation key, or unreadable
                lines.append(row.name)
        health = await self.store.connection_health()
        routes = sorted(
            await self.store.routes(),
            key=lambda r: trial_order(
                Route(r.prefix, r.routing_group, r.connector, r.priority, r.price)
            ),
        )
        return render(
            request,
            viewer,
            "connections",
            ZoneInfo("UTC"),
            400 if error else 200,
            title="Connections and routes",
            connections=lines,
            health=health,
            routes=routes,
            notice=notice,
            error=error,
        )

    async def add_connection(self, request: Request, viewer: Viewer) -> Response:
        form: dict[str, str] = request.state.form
        name, url = form.get("name", "").strip(), form.get("url", "").strip()
        if not _NAME.fullmatch(name) or name == "sandbox":
            problem = "a name is 1 to 64 letters, digits and . _ - (and not 'sandbox')"
            return await self.connections(request, viewer, error=problem)
        kind = "smpp" if url.startswith("smpp://") else "http"
        try:
            if kind == "smpp":
                checked_smpp_url(url)
            else:
                HttpSettings.from_url(url)
        except ValueError as exc:
            return await self.connections(request, viewer, error=f"{kind.upper()} URL: {exc}")
        await self.store.add_connector(name, kind, self.secrets.encrypt(url))
        notice = f"connection {name} {_RESTART}"
        if kind == "http":
            path = receiver_path(self.secrets, name)
            notice += f"; have the provider push reports and replies to {path}"
        return await self.connections(request, viewer, notice=notice)

    async def remove_connection(self, request: Request, viewer: Viewer) -> Response:
        name = request.path_params["name"]
        if not await self.store.remove_connector(name):
            return await self.connections(request, viewer, error=f"no connection {name!r}")
        return await self.connections(
            request, viewer, notice=f"connection {name} and its routes removed"
        )

    async def add_route(self, request: Request, viewer: Viewer) -> Response:
        form: dict[str, str] = request.state.form
        prefix, connector = form.get("prefix", "").strip(), form.get("connector", "")
        try:
            group = optional_int(form.get("routing_group"), "routing group")
            priority = optional_int(form.get("priority"), "priority") or 100
        except FormError as exc:
            return await self.connections(request, viewer, error=str(exc))
        if prefix and not (prefix.isdigit() and len(prefix) <= 15):
            return await self.connections(request, viewer, error="a prefix is up to 15 digits")
        if group is not None and not 1 <= group <= 3:
            return await self.connections(request, viewer, error="a routing group is 1, 2 or 3")
        raw_price = form.get("price", "").strip()
        try:
            price = to_units(raw_price) if raw_price else None
        except ValueError as exc:
            return await self.connections(request, viewer, error=f"price: {exc}")
        if price is not None and price < 0:
            return await self.connections(request, viewer, error="a price is 0 or more")
        known = {row.name for row in await self.store.connectors()} | {"sandbox"}
        if connector not in known:
            return await self.connections(request, viewer, error=f"no connection {connector!r}")
        route = await self.store.add_route(
            prefix=prefix, routing_group=group, connector=connector, priority=priority, price=price
        )
        return await self.connections(request, viewer, notice=f"route {route} {_RESTART}")

    async def remove_route(self, request: Request, viewer: Viewer) -> Response:
        route_id = int(request.path_params["id"])
        if route_id >= 2**63 or not await self.store.remove_route(route_id):
            return await self.connections(request, viewer, error=f"no route {route_id}")
        return await self.connections(request, viewer, notice=f"route {route_id} removed")
