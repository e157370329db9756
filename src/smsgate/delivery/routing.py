"""Choosing the carrier connection for each message, with failover.

Routes match by destination prefix (longest first), then a route for the
message's routing group before one for any group, then by priority, then by
price: among equally specific routes of equal priority, the cheapest
connection is tried first (least-cost routing; a route without a price comes
after those with one, as its cost is not known). A route
whose connector is down is passed over for the next one, which is the
failover; a destination that matches no route goes to the default connector.
When routes match but every one of their connectors is down, the message
waits rather than leaving by a connection nobody chose for it.

A connection whose upstream said it is out of credit or over quota can be
held for a while (``hold``): it counts as down for routing, so traffic moves
to the next route and comes back once the hold is over.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from smsgate.delivery.connectors.base import Connector
from smsgate.store.records import OutboundMessage


@dataclass(frozen=True, slots=True)
class Route:
    prefix: str
    routing_group: int | None
    connector: str
    priority: int = 100
    price: int | None = None  # credit units per message part at this connection


def trial_order(route: Route) -> tuple[int, bool, int, bool, int]:
    """Where a route comes among those matching a message: the first one up wins."""
    return (
        -len(route.prefix),
        route.routing_group is None,
        route.priority,
        route.price is None,
        route.price or 0,
    )


class Router:
    def __init__(
        self, routes: Sequence[Route], connectors: Mapping[str, Connector], default: Connector
    ) -> None:
        self._routes = sorted(routes, key=trial_order)
        self._connectors = dict(connectors)
        self.default = default
        self._held: dict[str, float] = {}  # connector -> monotonic end of its hold

    @property
    def connectors(self) -> list[Connector]:
        every = {id(c): c for c in (*self._connectors.values(), self.default)}
        return list(every.values())

    @property
    def any_up(self) -> bool:
        """Whether this process can send anything now; a worker that holds no
        connection claims nothing, so it never keeps messages from one that does."""
        return any(connector.is_up for connector in self.connectors)

    def choose(self, message: OutboundMessage, *, besides: str = "") -> Connector | None:
        """The connector for ``message`` (other than ``besides``), or None
        while all its routes are down."""
        digits = message.recipient.lstrip("+")
        matched = False
        for route in self._routes:
            if not digits.startswith(route.prefix):
                continue
            if route.routing_group is not None and route.routing_group != message.routing_group:
                continue
            matched = True
            connector = self._connectors.get(route.connector)
            if connector is not None and connector.name != besides and self._usable(connector):
                return connector
        if matched or self.default.name == besides:
            return None
        return self.default if self._usable(self.default) else None

    def hold(self, connector: str, seconds: float) -> None:
        """Route around ``connector`` for ``seconds``."""
        self._held[connector] = time.monotonic() + seconds

    def _usable(self, connector: Connector) -> bool:
        until = self._held.get(connector.name)
        if until is not None and time.monotonic() >= until:
            del self._held[connector.name]
            until = None
        return until is None and connector.is_up
