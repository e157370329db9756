"""Waiting in a test for what another thread or process changes."""

from __future__ import annotations

import time
from collections.abc import Callable

import requests


def wait_until(
    predicate: Callable[[], bool],
    timeout: float = 10.0,
    what: str = "the condition",
    *,
    interval: float = 0.02,
) -> None:
    """Return once ``predicate()`` holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)


def answers_health(base: str) -> bool:
    """Whether the server at ``base`` answers its health check with success."""
    try:
        return requests.get(base + "/healthz", timeout=1).ok
    except requests.RequestException:
        return False
