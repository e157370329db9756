"""Routing by prefix and routing group, and failover between SMPP connectors."""

from __future__ import annotations

from dataclasses import dataclass

from smsgate.core.encoding import Encoding
from smsgate.core.model import PreparedMessage
from smsgate.core.states import State
from smsgate.delivery.dispatcher import Dispatcher
from smsgate.delivery.routing import Route, Router
from smsgate.smpp.simulator import SimulatorConfig
from smsgate.store.repo import Store
from tests.smpp.test_connector import outbound, running


@dataclass
class FakeConnector:
    name: str
    is_up: bool = True


def router_of(*routes: Route, down: tuple[str, ...] = ()) -> Router:
    names = {route.connector for route in routes} | {"default"}
    connectors = {name: FakeConnector(name, name not in down) for name in names}
    return Router(list(routes), connectors, connectors["default"])  # type: ignore[arg-type]


def chosen(router: Router, recipient: str, group: int | None = None) -> str | None:
    connector = router.choose(outbound(1, recipient, "x", routing_group=group))
    return None if connector is None else connector.name


def test_longest_prefix_then_priority_then_group() -> None:
    router = router_of(
        Route("254", None, "kenya"),
        Route("25471", None, "safaricom-b", priority=20),
        Route("25471", None, "safaricom-a", priority=10),
        Route("254", 1, "cheap"),
    )
    assert chosen(router, "+254712345678") == "safaricom-a"
    assert chosen(router, "+254733345678") == "kenya"
    assert chosen(router, "+254733345678", group=1) == "cheap"
    assert chosen(router, "+447911123456") == "default"


def test_the_cheapest_live_connection_wins_among_equal_routes() -> None:
    routes = (
        Route("254", None, "dear", price=80),
        Route("254", None, "unpriced"),
        Route("254", None, "cheap", price=65),
        Route("25471", None, "specific", priority=50, price=99),
        Route("254", None, "preferred", priority=10, price=90),
    )
    # A longer prefix and a lower priority still come first: they say otherwise.
    assert chosen(router_of(*routes), "+254712345678") == "specific"
    assert chosen(router_of(*routes), "+254733345678") == "preferred"
    assert chosen(router_of(*routes, down=("preferred",)), "+254733345678") == "cheap"
    down = ("preferred", "cheap")
    assert chosen(router_of(*routes, down=down), "+254733345678") == "dear"
    down = ("preferred", "cheap", "dear")
    assert chosen(router_of(*routes, down=down), "+254733345678") == "unpriced"


def test_failover_skips_connectors_that_are_down() -> None:
    routes = (Route("25471", None, "a", 10), Route("25471", None, "b", 20))
    assert chosen(router_of(*routes, down=("a",)), "+254712345678") == "b"
    # Every matching route down: the message waits instead of taking the default.
    assert chosen(router_of(*routes, down=("a", "b")), "+254712345678") is None


async def test_dispatch_fails_over_to_the_second_smsc(store: Store) -> None:
    account = await store.create_account(name="r", region="KE", timezone="Africa/Nairobi")
    await store.add_credit(account.id, 10_000)
    first = await running(SimulatorConfig(port=0, receipt_delay_ms=5), name="first")
    second = await running(SimulatorConfig(port=0, receipt_delay_ms=5), name="second")
    try:
        router = Router(
            [Route("254", None, "first", 10), Route("254", None, "second", 20)],
            {"first": first.connector, "second": second.connector},
            first.connector,
        )
        dispatcher = Dispatcher(store, router, owner="w")

        async def queue(recipient: str) -> None:
            message = PreparedMessage(
                recipient, 1, "SHOP", "hi", Encoding.GSM7, 1, 100, None, 0, State.QUEUED
            )
            await store.accept(account.id, dialect="eapi", messages=[message])

        await queue("+254712000011")
        assert await dispatcher.dispatch_once() == 1
        await first.simulator.stop()  # the first SMSC goes away
        assert not await first.connector.wait_bound(0.5)
        await queue("+254712000012")
        assert await dispatcher.dispatch_once() == 1
        assert [m.destination for m in first.simulator.submitted] == ["254712000011"]
        assert [m.destination for m in second.simulator.submitted] == ["254712000012"]
        assert (await store.count_by_state(account.id)) == {State.SUBMITTED: 2}
    finally:
        for harness in (first, second):
            await harness.connector.stop()
        await second.simulator.stop()


async def test_a_message_waiting_for_a_route_keeps_its_attempts(store: Store) -> None:
    """While every route is down the message waits; waiting is not failing."""
    account = await store.create_account(name="w", region="KE", timezone="Africa/Nairobi")
    await store.add_credit(account.id, 1_000)
    message = PreparedMessage(
        "+254712000013", 1, "SHOP", "hi", Encoding.GSM7, 1, 100, None, 0, State.QUEUED
    )
    await store.accept(account.id, dialect="eapi", messages=[message])
    router = router_of(Route("254", None, "down", 10), down=("down",))
    dispatcher = Dispatcher(store, router, owner="w", max_attempts=1, retry_base_ms=0)
    for _ in range(3):
        assert await dispatcher.dispatch_once() == 1
    assert (await store.count_by_state(account.id)) == {State.QUEUED: 1}
    [claimed] = await store.claim_due("w", 10, lease_ms=1_000)
    assert claimed.attempts == 1
