"""uvicorn's HTTP protocol with the two guards it lacks: a deadline for a
request's headers and a cap on open connections.

Without them, a client that opens connections and sends half a request
holds a file descriptor each for as long as it likes; at the process's file
limit the server can accept nothing, health probes included. Here a request
must have sent its headers within ``header_timeout`` of the connection (or
of its first byte, on a kept-alive connection), and past
``max_connections`` a new connection closes the oldest one that has not
yet sent a whole request (or, failing that, the oldest idle kept-alive
one), so the slots go to clients that send requests, not to those that
hold sockets. Only when every connection is being served is the new one
refused.
"""

from __future__ import annotations

import asyncio
import logging
import resource

from smsgate.api.http_protocol import DialectHttpProtocol

log = logging.getLogger(__name__)

# Descriptors kept for what is not a client: database pool, SMPP binds, logs.
RESERVED_FILES = 100
# Connections asyncio accepts in one turn of its loop (uvicorn's ``backlog``).
# Their descriptors are open before any of them can be turned away, and one
# turned away closes only some turns later (a task makes the transport, which
# calls connection_made, whose close is itself deferred), while each turn
# accepts another batch; so six batches are kept free on top of the cap. An
# accept that fails for want of a descriptor stops all accepting for a second.
ACCEPT_BATCH = 50
HEADROOM = RESERVED_FILES + 6 * ACCEPT_BATCH


class ConnectionGuard:
    def __init__(self, *, max_connections: int, header_timeout: float) -> None:
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.open: dict[GuardedProtocol, None] = {}  # oldest first
        # Those of ``open`` yet to be answered once, kept apart so that a victim
        # is found at the front instead of behind every busy kept-alive client
        # (under a flood, each new connection looks for one).
        self.unserved: dict[GuardedProtocol, None] = {}

    def protocol(self) -> type[GuardedProtocol]:
        """The protocol class for ``uvicorn.Config(http=...)``, bound to this guard."""
        guard = self

        class Bound(GuardedProtocol):
            def __init__(self, *args: object, **kwargs: object) -> None:
                super().__init__(*args, **kwargs)  # type: ignore[arg-type]
                self.guard = guard

        return Bound

    def admit(self, connection: GuardedProtocol) -> bool:
        """Make room for a new connection; False if it must be refused."""
        if len(self.open) >= self.max_connections:
            victim = next((c for c in self.unserved if c.idle), None)
            if victim is None:
                victim = next((c for c in self.open if c.idle), None)
            if victim is None:
                return False
            self.forget(victim)
            victim.transport.close()
        self.open[connection] = None
        self.unserved[connection] = None
        return True

    def forget(self, connection: GuardedProtocol) -> None:
        self.open.pop(connection, None)
        self.unserved.pop(connection, None)


class GuardedProtocol(DialectHttpProtocol):
    guard: ConnectionGuard
    _deadline: asyncio.TimerHandle | None = None

    @property
    def idle(self) -> bool:
        """Not serving a request: its headers are not in yet, or it waits for another."""
        return (self.cycle is None or self.cycle.response_complete) and not self.pipeline

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if not self.guard.admit(self):
            transport.close()
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.guard.forget(self)
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        self.guard.unserved.pop(self, None)
        super().on_response_complete()

    def _arm(self) -> None:
        self._deadline = self.loop.call_later(self.guard.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def connection_limit(wanted: int) -> int:
    """``wanted``, kept below the open-file limit, which is first raised to
    its hard maximum (the soft default of 1,024 is an accident of history)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    allowed = max(1, soft - HEADROOM)
    if wanted > allowed:
        log.warning(
            "SMSGATE_MAX_CONNECTIONS=%d is above the open-file limit %d less %d; using %d",
            wanted,
            soft,
            HEADROOM,
            allowed,
        )
        return allowed
    return wanted
