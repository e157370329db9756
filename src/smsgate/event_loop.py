"""The event loop the long-running roles (serve, worker, smpp-server) run on.

uvloop reads sockets and parses in C. Under a flood of slow connections and
oversized bodies, the standard loop spent about a third of an API process on
reading and closing them, enough to push a well-behaved client's p99 past
80 ms; on uvloop the same attack leaves it near 30 ms (see Performance). It
comes with ``uvicorn[standard]`` wherever it builds; where it does not
(Windows), the standard loop runs instead. Short commands keep the standard
loop: they do not wait on sockets long enough for it to matter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_service(main: Coroutine[Any, Any, T]) -> T:
    """Run a long-running role to its end, on uvloop if it is installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)
