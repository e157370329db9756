"""What every benchmark needs to run servers on this machine: a free port,
and a wait until a server started in another process answers."""

from __future__ import annotations

import socket
import time

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_serving(base: str, within: float = 60.0) -> None:
    """Return once ``base``/healthz answers; raise after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        try:
            httpx.get(base + "/healthz", timeout=1)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
