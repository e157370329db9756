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
"""

from __future__ import annotations

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

    @property
    def connectors(self) -> list[Connector]:
        every = {id(c): c for c in (*self._connectors.values(), self.default)}
        return list(every.values())

    @property
    def any_up(self) -> bool:
        """Whether this process can send anything now; a worker that holds no
        connection claims nothing, so it never keeps messages from one that does."""
        return any(connector.is_up for connector in self.connectors)

    def choose(self, message: OutboundMessage) -> Connector | None:
        """The connector for ``message``, or None while all its routes are down."""
        digits = message.recipient.lstrip("+")
        matched = False
        for route in self._routes:
            if not digits.startswith(route.prefix):
                continue
            if route.routing_group is not None and route.routing_group != message.routing_group:
                continue
            matched = True
            connector = self._connectors.get(route.connector)
            if connector is not None and connector.is_up:
                return connector
        if matched:
            return None
        return self.default if self.default.is_up else None
